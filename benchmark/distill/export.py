"""Export and scoring: model folders written whole, scored through the benchmark's own loader."""

from __future__ import annotations

import os
import shutil
import typing
from pathlib import Path

import numpy as np

from benchmark import DIMENSIONS, ccc_finite, registry, sha256_file
from benchmark.distill.config import DistillConfig, DistillError
from benchmark.distill.registry_update import read_model_entries
from benchmark.distill.validation import ValidationSet, json_number, per_file

OUTPUT_FILES = ("model.onnx", "model.yaml", "provenance.json")


def load_export(folder: Path, name: str):
    r"""An exported audonnx model folder as the benchmark loads it (:func:`benchmark.registry.load_model`).

    Args:
        folder: the folder :func:`distill` exports (fp32 or int8)
        name: what the model is called in messages

    """
    entry = registry.ModelEntry(
        name=name,
        kind="audonnx",
        role="student",
        source={"path": str(folder)},
        sampling_rate=16000,
        outputs={d: d for d in DIMENSIONS},
        description="",
        root=Path(folder).parent,
    )
    return registry.load_model(entry, registry={})


def score_export(
    folder: Path, validation: typing.Sequence[ValidationSet], label: str, scored: dict | None = None
) -> dict[str, float]:
    r"""CCC of an exported model folder on the validation sets, through the benchmark's own loader.

    Files run a thread each (the loader's onnxruntime session has one; its
    outputs do not depend on the order). ``scored`` keeps every set's figures
    by the model file's hash: the int8 check and the provenance record score
    the same export once.
    """
    scored = {} if scored is None else scored
    onnx_sha = sha256_file(folder / "model.onnx")
    model = None
    metrics = {}
    for vs in validation:
        if not len(vs):
            continue
        key = (onnx_sha, vs.name, len(vs))
        if key not in scored:
            model = model or load_export(folder, f"distilled-{label}")
            pred = np.stack(per_file(lambda s, m=model: m(s, 16000), vs.signals))
            figures, values = {}, []
            for d in vs.reference.columns:
                figures[f"{vs.name}_{d}"] = json_number(
                    ccc_finite(vs.reference[d].to_numpy(), pred[:, DIMENSIONS.index(d)])
                )
                values.append(figures[f"{vs.name}_{d}"])
            figures[f"{vs.name}_mean"] = json_number(float(np.mean(values)))
            scored[key] = figures
        metrics.update(scored[key])
    return metrics


def check_out_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(p.name not in OUTPUT_FILES for p in folder.iterdir())):
        raise DistillError(
            f"Output folder {folder} exists and holds other files than {', '.join(OUTPUT_FILES)}; "
            "choose another --out (the model folder is replaced as a whole)."
        )


def check_unregistered_out(config: DistillConfig) -> None:
    r"""Refuse a ``--no-register`` run into a folder that ``models.yaml`` registers.

    It would replace the registered weights without updating the entry's
    ``sha256``, and the benchmark would then refuse the model.
    """
    out = config.out_path
    if not out.exists() or not config.models_path.exists():
        return
    for entry in read_model_entries(config.models_path):
        path = (entry.get("source") or {}).get("path") if isinstance(entry.get("source"), dict) else None
        if path and (config.models_path.parent / path).resolve() in (out, config.int8_path):
            raise DistillError(
                f"--no-register would overwrite {out}, the weights of '{entry.get('name')}' in "
                f"{config.models_path}, and leave its sha256 stale. Give --out DIR for a scratch run, "
                "or drop --no-register to replace the registered model."
            )


def replace_folder(folder: Path, write: typing.Callable[[Path], typing.Any]) -> None:
    r"""Write a folder next to ``folder`` and swap it in: a crash never leaves half a model."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
