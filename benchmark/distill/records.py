"""The records of a distillation: the provenance record and the student's ``models.yaml`` entries."""

from __future__ import annotations

import dataclasses
import json
import time
import typing
from pathlib import Path

from benchmark import (
    DIMENSIONS,
    artifact_sha256,
    atomic_write_text,
    cache_root,
    project_relative,
    provenance,
    sha256_arrays,
    sha256_file,
)
from benchmark.distill.audio import relative_skips
from benchmark.distill.config import DistillConfig, checkpoint_path
from benchmark.distill.export import score_export
from benchmark.distill.history import write_history
from benchmark.distill.provenance_runs import with_runs
from benchmark.distill.registry_update import student_recipe, update_registry
from benchmark.distill.validation import json_number

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark.distill.finish import Finished
    from benchmark.distill.runtime import Environment
    from benchmark.distill.teacher import Data


def provenance_record(
    config: DistillConfig, teacher, student, data: Data, result, finished: Finished, env: Environment
) -> dict:
    r"""What the exported weights depend on: teacher, data, recipe, settings, code, scores.

    Nothing machine- or time-specific: the same configuration re-run
    writes the same record. The exports are scored through
    :func:`~benchmark.distill.export.score_export`, reusing the figures
    in ``finished.scored``.
    """
    onnx = {
        label: score_export(folder, data.validation, label, finished.scored)
        for label, folder in (("fp32", config.out_path), ("int8", config.int8_path))
    }
    return {
        "student": {
            "name": config.student,
            "architecture": config.student,
            "parameters": int(sum(p.numel() for p in student.parameters() if p.requires_grad)),
            "onnx_sha256": sha256_file(config.out_path / "model.onnx"),
            "int8_onnx_sha256": sha256_file(config.int8_path / "model.onnx"),
        },
        "teacher": {"name": teacher.name, "sha256": teacher.artifact_hash},
        "data": _data_record(data, finished),
        "gold": data.val_info["gold"],
        "seed": config.seed,
        "recipe": json.loads(json.dumps(config.recipe().record())),
        "hyperparameters": dataclasses.asdict(config.hyper()),
        "code": {k: v for k, v in provenance().items() if k != "date"},
        "training": {"steps": result.steps, "best_epoch": result.best_epoch, "world_size": env.world_size},
        "head_refit": finished.head_refit,
        "validation": _validation_record(result, data.val_info, onnx),
    }


def _data_record(data: Data, finished: Finished) -> dict:
    r"""The ``data`` part of :func:`provenance_record`: files, crops, what was skipped or left out."""
    pool, shards, val_info = data.pool, data.shards, data.val_info
    skipped = pool.missing + shards.skipped + val_info["skipped"]
    return {
        "source": data.source,
        "listed_files": len(data.files),
        "files_sha256": pool.sha256,
        "train_files": len(shards.files),
        "train_files_sha256": data.train_pool.sha256,
        "heldout_files": len(data.held.files),
        "heldout_files_sha256": data.held.sha256,
        "duplicates_dropped": pool.duplicates,
        "skipped_count": len(skipped),
        "skipped": relative_skips(skipped, pool.files),
        "crops": len(shards),
        # where two machines' runs part: already in the crops (augmentation), in the teacher, or later
        "crops_audio_sha256": sha256_arrays(shards.audio),
        "teacher_targets_sha256": sha256_arrays([shards.targets]),
        "offscale_targets": {
            "range": list(data.target_range),
            "crops_left_out": len(data.offscale),
            "heldout_files_left_out": len(val_info["offscale"]),
            "train_files_left_out": len(finished.train_offscale),
            "examples": (data.offscale + val_info["offscale"] + list(finished.train_offscale))[:20],
        },
        "refit_files": finished.refit_info or {"source": "none"},
    }


def _validation_record(result, val_info: dict, onnx: dict[str, dict]) -> dict:
    r"""The ``validation`` part of :func:`provenance_record`: the best epoch in torch, the exports, the int8 loss."""
    best_row = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0].to_dict()
    loss = {
        key: json_number(onnx["fp32"][key] - onnx["int8"][key])
        for key in onnx["fp32"]
        if onnx["fp32"][key] is not None and onnx["int8"][key] is not None
    }
    return {
        "selection": "best epoch by mean CCC vs the teacher on held-out pool files (whole, clean)",
        "torch_best_epoch": {
            k: json_number(v) for k, v in best_row.items() if "_" in k and k.split("_")[0] in ("teacher", "gold")
        },
        "onnx": onnx,
        "int8_ccc_loss": loss,
        "teacher_vs_gold": val_info["teacher_vs_gold"],
    }


def registry_entries(config: DistillConfig, teacher, sha: str, sha_int8: str, record: dict) -> list[dict]:
    r"""The ``models.yaml`` entries of the fp32 and int8 student."""
    root = config.models_path.parent
    distilled = {
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "data": record["data"]["source"],
        "data_sha256": record["data"]["files_sha256"],
        "seed": config.seed,
        "provenance": _relative(config.out_path / "provenance.json", root),
    }
    recipe = student_recipe(config.student, config.models_path)
    if recipe:  # the student's recipe stays with its entry
        distilled["recipe"] = recipe
    entries = []
    for name, path, digest, what in (
        (config.student, config.out_path, sha, "fp32"),
        (config.student + "-int8", config.int8_path, sha_int8, "dynamic int8 (QUInt8) quantisation of the fp32 model"),
    ):
        entries.append(
            {
                "name": name,
                "kind": "audonnx",
                "role": "student",
                "source": {"path": _relative(path, root), "sha256": digest},
                "sampling_rate": 16000,
                "outputs": {d: d for d in DIMENSIONS},
                "architecture": config.student,
                "description": (
                    f"{config.student} distilled from {teacher.name} (teacher outputs only, no human labels); {what}."
                ),
                "distilled": distilled,
            }
        )
    return entries


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_records(
    config: DistillConfig,
    teacher,
    student,
    data: Data,
    result,
    finished: Finished,
    env: Environment,
    started: float,
    earlier: typing.Sequence[dict | None] = (None, None, None),
) -> dict:
    r"""Write the provenance records and the history, and register the student; the full record.

    ``provenance.json`` goes into both model folders (what the weights
    depend on: :func:`provenance_record`) and, with the machine- and
    time-specific rest, into the records folder
    (:attr:`~benchmark.distill.config.DistillConfig.records_path`).
    ``started``: :func:`time.perf_counter` at the start of the run.
    ``earlier``: the records of the model folder, its int8 twin and the
    records folder before this run (:func:`~benchmark.distill.provenance_runs.read_records`),
    kept under ``earlier_runs``.
    """
    out, out_int8, results_dir = config.out_path, config.int8_path, config.records_path
    record = provenance_record(config, teacher, student, data, result, finished, env)
    record["numerics"] = env.numerics  # the kernels set the last bits of the weights
    # The copy inside the model folder keeps only what the weights depend on; no
    # record enters the artefact hash (benchmark.hashing.artifact_sha256).
    _write_json(out / "provenance.json", with_runs(record, earlier[0]))
    quantized_from = {"path": out.name, "onnx_sha256": record["student"]["onnx_sha256"]}
    _write_json(out_int8 / "provenance.json", with_runs({**record, "quantized_from": quantized_from}, earlier[1]))
    sha, sha_int8 = artifact_sha256(out), artifact_sha256(out_int8)
    full = {
        **record,
        "student": {
            **record["student"],
            "path": project_relative(out),
            "sha256": sha,
            "int8_path": project_relative(out_int8),
            "int8_sha256": sha_int8,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": provenance()["date"],
        "device": env.device,
        "threads": env.threads,
        "teacher_calls": data.teacher_calls + finished.teacher_calls,
        "resumed_from_step": result.resumed_from,
        "epoch_seconds": [round(float(x), 1) for x in result.history.get("train_seconds", [])],
        # relative to the cache root ($SER_BENCHMARK_CACHE): records name no machine's folders
        "cache": {
            "teacher_shards": project_relative(data.shards.folder, cache_root()),
            "checkpoint": project_relative(checkpoint_path(out), cache_root()),
        },
    }
    write_history(result.history, results_dir)
    _write_json(results_dir / "provenance.json", with_runs(full, earlier[2]))
    if config.register:
        update_registry(config.models_path, registry_entries(config, teacher, sha, sha_int8, record))
    return full
