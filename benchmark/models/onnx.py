"""Loader for kind ``audonnx``: models exported with audEERING's audonnx.

Source is either a local model (``{path: folder | model.yaml | archive.zip}``)
or a published archive (``{url: ..., sha256: ...}``), e.g. audEERING's
``w2v2-L-robust-12.6bc4a7fd-1.1.0.zip`` (doi 10.5281/zenodo.6221127),
which unpacks to ``model.yaml`` + ``model.onnx`` with input ``signal``
(float32 ``[1, samples]``, 16 kHz) and outputs ``logits``
(labelled arousal, dominance, valence) and ``hidden_states``.

``outputs`` in the registry maps each dimension to an output *label*
as named by the audonnx model (``model.labels(node)``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from benchmark.hashing import artifact_sha256, sha256_file
from benchmark.models import download, onnx_files
from benchmark.models.base import Predictor, outputs_to_adv
from benchmark.registry import ModelFileError, OutputsError


class AudonnxPredictor(Predictor):
    r"""An :class:`audonnx.Model` behind the :class:`Predictor` interface.

    Args:
        name: registry name
        artifact_hash: SHA-256 of the weights
        model: loaded audonnx model
        outputs: dimension → output label of ``model``
        node: output node holding the labels (default: the one that
            has all labels in ``outputs``, ``logits`` preferred)
        sampling_rate: rate the model expects

    """

    def __init__(
        self,
        name: str,
        artifact_hash: str,
        model,
        outputs: dict[str, str],
        *,
        node: str | None = None,
        sampling_rate: int = 16000,
    ):
        super().__init__(name, artifact_hash, sampling_rate)
        self.model = model
        self.outputs = dict(outputs)
        self.node = node or find_node(model, self.outputs.values(), name)
        labels = model.labels(self.node)
        missing = [o for o in self.outputs.values() if o not in labels]
        if missing:
            raise OutputsError(
                f"Model '{name}': output node '{self.node}' has labels {labels}, "
                f"not {missing}; fix 'outputs' in models.yaml."
            )
        self.index = {label: i for i, label in enumerate(labels)}

    def predict(self, signal: np.ndarray) -> np.ndarray:
        y = self.model(signal[np.newaxis, :], self.sampling_rate, outputs=self.node)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        return outputs_to_adv({label: y[i] for label, i in self.index.items()}, self.outputs)


def find_node(model, labels, name: str = "model") -> str:
    r"""Name of the output node whose labels include all of ``labels``.

    ``logits`` wins a tie, as in audEERING's published models.
    """
    labels = list(labels)
    nodes = [n for n in model.outputs if all(label in model.labels(n) for label in labels)]
    if not nodes:
        available = {n: model.labels(n) for n in model.outputs}
        raise OutputsError(
            f"Model '{name}': no output node has all labels {labels}; the model's output labels "
            f"are {available}. Map each dimension to one of them in 'outputs' "
            "(or set params.node)."
        )
    return "logits" if "logits" in nodes else nodes[0]


def resolve(entry) -> tuple[Path, str]:
    r"""Folder holding the audonnx model, and the artifact hash.

    URL sources are downloaded and unpacked once (hash: the archive's
    SHA-256); local paths are used in place (hash:
    :func:`benchmark.hashing.artifact_sha256`, the files that predict,
    or the archive file for a local ``.zip``).
    """
    source = entry.source
    if "url" in source:
        archive = download.fetch(source["url"], source["sha256"], md5=source.get("md5"), model=entry.name)
        # fetch verified the bytes: against the pin, or against the digest recorded at an unpinned download
        digest = (
            download.recorded_sha256(archive) if source["sha256"] == download.UNPINNED else source["sha256"].lower()
        )
        folder = download.unpack(archive, sha256=digest)
        return download.model_root(folder), digest
    path = entry.resolve(source["path"])
    if path.is_file() and path.suffix == ".zip":
        digest = sha256_file(path)
        return download.model_root(download.unpack(path, sha256=digest)), digest
    if path.is_file():  # a model.yaml (or legacy model.onnx) inside its folder
        return path.parent, artifact_sha256(path, "audonnx")
    return download.model_root(path), artifact_sha256(path, "audonnx")


def _device(requested: str, name: str) -> str:
    r"""The requested onnxruntime device, or ``'cpu'`` with a warning if CUDA is missing."""
    import onnxruntime

    if requested.startswith("cuda") and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        warnings.warn(
            f"Model '{name}': CUDA requested but onnxruntime has no CUDA provider; using the CPU.", stacklevel=2
        )
        return "cpu"
    return requested


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``audonnx``.

    ``params``: ``device`` (``'cpu'`` default, ``'cuda'``, ``'cuda:<id>'``),
    ``num_workers`` (onnxruntime threads, default 1: the runner
    parallelises over files), ``node`` (output node, default: inferred).
    """
    import audonnx

    folder, digest = resolve(entry)
    params = dict(entry.params)
    model_file = "model.yaml" if (folder / "model.yaml").exists() else "model.onnx"
    found = onnx_files.problems(folder)
    if found:
        raise ModelFileError(f"Model '{entry.name}': " + "; ".join(found))
    try:
        model = audonnx.load(
            os.fspath(folder),
            model_file=model_file,
            device=_device(str(params.get("device", "cpu")), entry.name),
            num_workers=params.get("num_workers", 1),
        )
    except Exception as ex:  # onnxruntime and audonnx raise many types for a file they cannot use
        raise ModelFileError(
            f"Model '{entry.name}': {folder / model_file} cannot be loaded ({type(ex).__name__}: "
            f"{str(ex).splitlines()[0][:200] if str(ex) else ''}); {onnx_files.FIX}"
        ) from ex
    return AudonnxPredictor(
        entry.name,
        digest,
        model,
        entry.outputs,
        node=params.get("node"),
        sampling_rate=entry.sampling_rate,
    )
