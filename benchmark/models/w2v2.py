"""Loader for kind ``w2v2-hf``: audEERING's wav2vec 2.0 dimensional model.

The checkpoint ``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim``
(Wagner et al., IEEE TPAMI 2023) is a transformers wav2vec 2.0 model
whose last hidden states are mean-pooled over time and fed to a
regression head; it predicts arousal, dominance and valence (in that
order, roughly 0..1) from a per-utterance z-normalised signal. The
classes below reproduce its model card's ``EmotionModel`` so that the
published weights load by name.

This module also holds what the torch teachers share (checkpoint
resolution from a path or the Hugging Face hub, device choice, padded
batching), used by :mod:`benchmark.models.wavlm`.
"""

from __future__ import annotations

import functools
import json
import os
import typing
import warnings
from pathlib import Path

import numpy as np

from benchmark import DIMENSIONS
from benchmark.hashing import WEIGHT_FILES, checkpoint_files, checkpoint_hash, sha256_text
from benchmark.models import download
from benchmark.models.base import Predictor, outputs_to_adv
from benchmark.registry import OutputsError

HUB_PATTERNS = (["*.json", "*.safetensors"], ["*.json", "*.bin"])
"""Files fetched from the hub, in turn until weights came: configs and one weight format only."""


# --- shared by the torch teachers -------------------------------------------------------


def hub_offline() -> bool:
    r"""Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, read now.

    huggingface_hub reads it once at import; tests and users set it later.
    """
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.HF_HUB_OFFLINE or value.upper() in {"1", "ON", "YES", "TRUE"}


def resolve_checkpoint(entry) -> Path:
    r"""Local folder of the checkpoint in ``entry.source``.

    ``{path}`` is used as is. ``{hub, revision}`` is served from the
    Hugging Face cache if there; else downloaded, unless offline
    (``HF_HUB_OFFLINE``) or the hub is unreachable, which fails at once
    with :class:`benchmark.models.download.WeightsUnavailableError`.
    ``revision: unpinned`` follows the default branch and warns with the
    commit it resolved to (:func:`benchmark.models.download.warn_unpinned`).
    """
    if "path" in entry.source:
        return entry.resolve(entry.source["path"])
    revision = download.hub_revision(entry.source)
    folder = _hub_checkpoint(entry, entry.source["hub"], revision)
    if revision is None:
        download.warn_unpinned(entry.name, entry.source["hub"], folder)
    return folder


def _hub_checkpoint(entry, repo: str, revision: str | None) -> Path:
    r"""The snapshot folder of ``repo`` at ``revision`` (``None``: the default branch), cached or downloaded."""
    from huggingface_hub import constants, snapshot_download

    try:
        folder = Path(snapshot_download(repo, revision=revision, local_files_only=True))
        checkpoint_files(folder)
        return folder
    except (OSError, ValueError):  # not cached, or cached without weights
        pass
    url = f"{constants.ENDPOINT}/{repo}/tree/{revision or 'main'}"
    command = f"hf download {repo}" + (f" --revision {revision}" if revision else "")
    target = f"the Hugging Face cache {constants.HF_HUB_CACHE} (`{command}`)"
    if hub_offline():
        raise download.WeightsUnavailableError(
            download.unavailable_message(entry.name, url, target, reason="HF_HUB_OFFLINE is set and it is not cached")
        )
    if not download.reachable(constants.ENDPOINT):
        raise download.WeightsUnavailableError(
            download.unavailable_message(entry.name, url, target, reason="hub unreachable")
        )
    try:
        for patterns in HUB_PATTERNS:
            folder = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns))
            if any((folder / name).is_file() or (folder / f"{name}.index.json").is_file() for name in WEIGHT_FILES):
                return folder
        raise FileNotFoundError(f"no weights ({' or '.join(WEIGHT_FILES)}) in {repo} at {revision}")
    except Exception as ex:  # hub errors come in many types; all mean the same here
        raise download.WeightsUnavailableError(
            download.unavailable_message(entry.name, url, target, reason=f"download failed: {ex}")
        ) from ex


def torch_device(requested: str | None, name: str = "model"):
    r"""``torch.device`` for ``params.device``: ``'cpu'`` (default), ``'cuda[:N]'`` or ``'auto'``.

    CUDA that is not available falls back to the CPU with a warning, so
    one ``models.yaml`` serves machines with and without a GPU.
    """
    import torch

    requested = (requested or "cpu").lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"Model '{name}': CUDA requested but not available; using the CPU.", stacklevel=2)
        requested = "cpu"
    return torch.device(requested)


def output_labels(id2label: typing.Mapping | None, n: int) -> list[str]:
    r"""Names of a model's ``n`` outputs from its ``id2label``.

    transformers' placeholders (``LABEL_0`` ...) mean unnamed outputs;
    those are taken to be :data:`benchmark.DIMENSIONS` in order.

    Examples:
        >>> output_labels({"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}, 3)
        ['arousal', 'dominance', 'valence']
        >>> output_labels({0: "valence"}, 1)
        ['valence']

    """
    id2label = {int(k): v for k, v in (id2label or {}).items()}
    labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(n)]
    if all(label == f"LABEL_{i}" for i, label in enumerate(labels)) and n == len(DIMENSIONS):
        return list(DIMENSIONS)
    return labels


class TorchPredictor(Predictor):
    r"""A torch regressor over raw audio, with length-sorted padded batches.

    Subclasses implement :meth:`forward`, which maps a padded batch and
    its sample mask to raw outputs (one row per signal, columns named by
    :attr:`labels`), and may override :meth:`normalize`.

    Args:
        name: registry name
        artifact_hash: checkpoint hash
        model: the ``torch.nn.Module`` (put in eval mode here)
        labels: names of the model's output columns
        outputs: dimension → label (the registry's ``outputs``)
        device: where to run
        batch_size: most signals per forward pass
        use_mask: whether the model takes an attention mask; if not,
            only signals of equal length share a batch, so padding
            never changes a result
        sampling_rate: rate the model expects

    """

    def __init__(
        self,
        name: str,
        artifact_hash: str,
        model,
        labels: typing.Sequence[str],
        outputs: dict[str, str],
        *,
        device=None,
        batch_size: int = 8,
        use_mask: bool = True,
        sampling_rate: int = 16000,
    ):
        super().__init__(name, artifact_hash, sampling_rate)
        import torch

        self.device = device or torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.labels = list(labels)
        missing = [o for o in outputs.values() if o not in self.labels]
        if missing:
            raise OutputsError(
                f"Model '{name}': outputs {missing} are not among the model's outputs {self.labels}; "
                "fix 'outputs' in models.yaml."
            )
        self.outputs = dict(outputs)
        self.batch_size = max(1, int(batch_size))
        self.use_mask = use_mask

    def normalize(self, signal: np.ndarray) -> np.ndarray:
        r"""Input normalisation of one signal (default: none)."""
        return signal

    def forward(self, x, mask):
        r"""Raw outputs for a padded batch ``x`` ``[B, T]`` and mask ``[B, T]`` (1 = sample)."""
        raise NotImplementedError

    def predict(self, signal: np.ndarray) -> np.ndarray:
        return self._adv(self._run([signal])[0])

    def predict_batch(self, signals: typing.Sequence[np.ndarray]) -> np.ndarray:
        r"""Predict for several signals; shape ``(len(signals), 3)``.

        Signals are sorted by length so a batch pads little; with a mask
        the result matches :meth:`predict` up to float rounding.
        """
        signals = [_mono(s, self.name) for s in signals]
        if not signals:
            return np.empty((0, len(DIMENSIONS)))
        raw = self._run(signals)
        return np.stack([self._adv(row) for row in raw])

    def _adv(self, row: np.ndarray) -> np.ndarray:
        return outputs_to_adv(dict(zip(self.labels, row)), self.outputs)

    def _run(self, signals: list[np.ndarray]) -> np.ndarray:
        import torch

        order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
        result = [None] * len(signals)
        for batch in self._batches(order, signals):
            lengths = [len(signals[i]) for i in batch]
            x = np.zeros((len(batch), max(lengths)), dtype=np.float32)
            mask = np.zeros_like(x, dtype=np.int64)
            for row, (i, n) in enumerate(zip(batch, lengths)):
                x[row, :n] = self.normalize(np.asarray(signals[i], dtype=np.float32))
                mask[row, :n] = 1
            with torch.inference_mode():
                y = self.forward(torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device))
            y = y.detach().float().cpu().numpy()
            for row, i in enumerate(batch):
                result[i] = y[row]
        return np.stack(result).astype(np.float64)

    def _batches(self, order: list[int], signals: list[np.ndarray]) -> typing.Iterator[list[int]]:
        batch: list[int] = []
        for i in order:
            full = len(batch) >= self.batch_size
            ragged = batch and not self.use_mask and len(signals[i]) != len(signals[batch[0]])
            if full or ragged:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch


def _mono(signal: np.ndarray, name: str) -> np.ndarray:
    r"""Same input rules as :meth:`Predictor.__call__`, for batches."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim == 2:
        signal = signal[0] if signal.shape[0] == 1 else signal.mean(axis=0)
    if signal.ndim != 1:
        raise ValueError(f"Model '{name}': expected a mono signal, got shape {signal.shape}.")
    return signal


def z_normalize(signal: np.ndarray) -> np.ndarray:
    r"""Per-utterance zero mean, unit variance, as ``Wav2Vec2FeatureExtractor(do_normalize=True)``.

    Examples:
        >>> y = z_normalize(np.array([1.0, 2.0, 3.0], dtype=np.float32))
        >>> [round(float(v), 3) for v in y]
        [-1.225, 0.0, 1.225]

    """
    signal = np.asarray(signal, dtype=np.float64)
    return ((signal - signal.mean()) / np.sqrt(signal.var() + 1e-7)).astype(np.float32)


# --- the wav2vec 2.0 emotion model ------------------------------------------------------


@functools.cache
def _model_classes():
    r"""The model card's classes, built lazily so importing this module needs no torch."""
    import torch
    from torch import nn
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2Model, Wav2Vec2PreTrainedModel

    class RegressionHead(nn.Module):
        r"""Dropout → dense → tanh → dropout → projection, as in the published model."""

        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, features):
            x = self.dropout(features)
            x = torch.tanh(self.dense(x))
            return self.out_proj(self.dropout(x))

    class EmotionModel(Wav2Vec2PreTrainedModel):
        r"""wav2vec 2.0 → mean over time → :class:`RegressionHead`."""

        def __init__(self, config):
            super().__init__(config)
            self.wav2vec2 = Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()  # transformers 5: init_weights() no longer does the job

        def forward(self, input_values, attention_mask=None):
            hidden = self.wav2vec2(input_values, attention_mask=attention_mask)[0]
            if attention_mask is None:
                pooled = hidden.mean(dim=1)
            else:
                # mean over the frames of each signal only, so padding does not dilute it
                frames = self.wav2vec2._get_feature_vector_attention_mask(hidden.shape[1], attention_mask)
                frames = frames.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * frames).sum(dim=1) / frames.sum(dim=1).clamp(min=1.0)
            return pooled, self.classifier(pooled)

    return RegressionHead, EmotionModel


def emotion_model_class():
    r"""The ``EmotionModel`` class (a ``Wav2Vec2PreTrainedModel``)."""
    return _model_classes()[1]


class W2v2Predictor(TorchPredictor):
    r"""audEERING's wav2vec 2.0 emotion model as a :class:`Predictor`."""

    def __init__(self, *args, do_normalize: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.do_normalize = do_normalize

    def normalize(self, signal: np.ndarray) -> np.ndarray:
        return z_normalize(signal) if self.do_normalize else signal

    def forward(self, x, mask):
        return self.model(x, attention_mask=mask if self.use_mask else None)[1]


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``w2v2-hf``.

    ``params``: ``device`` (``'cpu'`` default, ``'cuda'``, ``'auto'``),
    ``batch_size`` (default 8).
    """
    folder = resolve_checkpoint(entry)
    digest = checkpoint_hash(folder)
    device = torch_device(entry.params.get("device"), entry.name)
    model, info = emotion_model_class().from_pretrained(os.fspath(folder), output_loading_info=True)
    # transformers initialises missing weights at random with a mere warning: a silently wrong teacher
    missing = sorted(k for k in info["missing_keys"] if not k.endswith("masked_spec_embed"))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys") or [])
    if missing or mismatched:
        raise ValueError(
            f"Model '{entry.name}': {folder} is not a wav2vec 2.0 emotion checkpoint of this "
            f"architecture (missing weights: {missing[:5]}; mismatched: {mismatched[:5]}). "
            "Expected audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim or a model saved the same way."
        )
    preprocessor = _preprocessor_config(folder)
    # transformers' rule: only layer-norm feature encoders were trained with attention masks
    use_mask = preprocessor.get("return_attention_mask", model.config.feat_extract_norm == "layer")
    return W2v2Predictor(
        entry.name,
        digest,
        model,
        output_labels(model.config.id2label, model.config.num_labels),
        entry.outputs,
        device=device,
        batch_size=entry.params.get("batch_size", 8),
        use_mask=bool(use_mask),
        sampling_rate=entry.sampling_rate,
        do_normalize=bool(preprocessor.get("do_normalize", True)),
    )


def _preprocessor_config(folder: Path) -> dict:
    path = folder / "preprocessor_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def from_config(entry) -> W2v2Predictor:
    r"""The architecture of ``entry`` built from its registry ``config``, with seeded random weights.

    For timing only: speed does not depend on the weight values, and the
    predictions are meaningless. The artefact hash covers the kind and
    the configuration, marked ``architecture``, so it never equals a
    trained model's.
    """
    import torch
    from transformers import Wav2Vec2Config

    if not entry.config:
        raise ValueError(f"Model '{entry.name}': no 'config' in its registry entry to build the architecture from.")
    config = Wav2Vec2Config(**entry.config)
    torch.manual_seed(0)
    model = emotion_model_class()(config).eval()
    digest = sha256_text(json.dumps({"architecture": entry.kind, "config": entry.config}, sort_keys=True))
    return W2v2Predictor(
        entry.name,
        digest,
        model,
        output_labels(config.id2label, config.num_labels),
        entry.outputs,
        device="cpu",
        batch_size=1,
        use_mask=config.feat_extract_norm == "layer",
        sampling_rate=entry.sampling_rate,
    )
