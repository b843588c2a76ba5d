"""The records of a distillation: the provenance record and the student's ``models.yaml`` entries."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import typing
from pathlib import Path

from benchmark import DIMENSIONS
from benchmark.distill.annotate import Pool, Recipe
from benchmark.distill.config import DistillConfig, Hyper, checkpoint_path, student_recipe
from benchmark.distill.export import _file_sha, _num, _score_onnx
from benchmark.distill.history import write_history
from benchmark.distill.provenance_runs import with_runs
from benchmark.distill.registry_update import update_registry
from benchmark.distill.validation import ValidationSet
from benchmark.hashing import artifact_sha256, sha256_arrays
from benchmark.paths import cache_root, project_relative
from benchmark.results import atomic_write_text, provenance

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark.distill.finish import Finished
    from benchmark.distill.runtime import Environment
    from benchmark.distill.teacher import Data


def provenance_record(
    config: DistillConfig,
    teacher,
    student,
    out: Path,
    out_int8: Path,
    *,
    source: str,
    listed: int,
    pool: Pool,
    train_pool: Pool,
    held: Pool,
    shards,
    offscale: list[str],
    val_info: dict,
    validation: typing.Sequence[ValidationSet],
    result,
    recipe: Recipe,
    hyper: Hyper,
    world_size: int,
    target_range: tuple[float, float],
    train_offscale: typing.Sequence[str] = (),
    whole_file_tuning: dict | None = None,
    head_refit: dict | None = None,
    refit_info: dict | None = None,
    scored: dict | None = None,
) -> dict:
    r"""What the exported weights depend on: teacher, data, recipe, settings, code, scores.

    Nothing machine- or time-specific: the same configuration re-run
    writes the same record. ``scored``: figures of exports
    already scored (:func:`_score_onnx`).
    """
    best_row = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0].to_dict()
    onnx_metrics = {
        "fp32": _score_onnx(out, validation, "fp32", scored),
        "int8": _score_onnx(out_int8, validation, "int8", scored),
    }
    loss = {
        key: _num(onnx_metrics["fp32"][key] - onnx_metrics["int8"][key])
        for key in onnx_metrics["fp32"]
        if onnx_metrics["fp32"][key] is not None and onnx_metrics["int8"][key] is not None
    }
    return {
        "student": {
            "name": config.student,
            "architecture": config.student,
            "parameters": int(sum(p.numel() for p in student.parameters() if p.requires_grad)),
            "onnx_sha256": _file_sha(out / "model.onnx"),
            "int8_onnx_sha256": _file_sha(out_int8 / "model.onnx"),
        },
        "teacher": {"name": teacher.name, "sha256": teacher.artifact_hash},
        "data": {
            "source": source,
            "listed_files": listed,
            "files_sha256": pool.sha256,
            "train_files": len(shards.files),
            "train_files_sha256": train_pool.sha256,
            "heldout_files": len(held.files),
            "heldout_files_sha256": held.sha256,
            "duplicates_dropped": pool.duplicates,
            "skipped_count": len(pool.missing) + len(shards.skipped) + len(val_info["skipped"]),
            "skipped": _relative_skips(pool.missing + shards.skipped + val_info["skipped"], pool.files),
            "crops": len(shards),
            # where two machines' runs part: already in the crops (augmentation), in the teacher, or later
            "crops_audio_sha256": sha256_arrays(shards.audio),
            "teacher_targets_sha256": sha256_arrays([shards.targets]),
            "offscale_targets": {
                "range": list(target_range),
                "crops_left_out": len(offscale),
                "heldout_files_left_out": len(val_info["offscale"]),
                "train_files_left_out": len(train_offscale),
                "examples": (offscale + val_info["offscale"] + list(train_offscale))[:20],
            },
            "refit_files": refit_info or {"source": "none"},
        },
        "gold": val_info["gold"],
        "seed": config.seed,
        "recipe": json.loads(json.dumps(recipe.record())),
        "hyperparameters": dataclasses.asdict(hyper),
        "code": {k: v for k, v in provenance().items() if k != "date"},
        "training": {"steps": result.steps, "best_epoch": result.best_epoch, "world_size": world_size},
        "whole_file_tuning": whole_file_tuning,
        "head_refit": head_refit,
        "validation": {
            "selection": "best epoch by mean CCC vs the teacher on held-out pool files (whole, clean)",
            "torch_best_epoch": {
                k: _num(v) for k, v in best_row.items() if "_" in k and k.split("_")[0] in ("teacher", "gold")
            },
            "onnx": onnx_metrics,
            "int8_ccc_loss": loss,
            "teacher_vs_gold": val_info["teacher_vs_gold"],
        },
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


def _relative_skips(skips: typing.Sequence[tuple[str, str]], files: typing.Sequence[str]) -> list[dict]:
    r"""Skipped files relative to the pool's common folder (no machine-specific prefix)."""
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:
        base = ""
    return [{"file": os.path.relpath(f, base) if base else f, "reason": r} for f, r in skips]


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
    source, files, pool, train_pool, held = data.source, data.files, data.pool, data.train_pool, data.held
    shards, offscale, val_info, validation = data.shards, data.offscale, data.val_info, data.validation
    recipe, hyper, world_size, target_range = config.recipe(), config.hyper(), env.world_size, data.target_range
    train_offscale, tuning, head_refit = finished.train_offscale, finished.tuning, finished.head_refit
    refit_info, scored, tuning_seconds = finished.refit_info, finished.scored, finished.tuning_seconds
    device, threads, teacher_calls = env.device, env.threads, data.teacher_calls + finished.teacher_calls
    record = provenance_record(
        config,
        teacher,
        student,
        out,
        out_int8,
        source=source,
        listed=len(files),
        pool=pool,
        train_pool=train_pool,
        held=held,
        shards=shards,
        offscale=offscale,
        val_info=val_info,
        validation=validation,
        result=result,
        recipe=recipe,
        hyper=hyper,
        world_size=world_size,
        target_range=target_range,
        train_offscale=train_offscale,
        whole_file_tuning=tuning,
        head_refit=head_refit,
        refit_info=refit_info,
        scored=scored,
    )
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
        "device": device,
        "threads": threads,
        "teacher_calls": teacher_calls,
        "resumed_from_step": result.resumed_from,
        "whole_file_tuning_seconds": round(tuning_seconds, 1),
        "epoch_seconds": [round(float(x), 1) for x in result.history.get("train_seconds", [])],
        # relative to the cache root ($SER_BENCHMARK_CACHE): records name no machine's folders
        "cache": {
            "teacher_shards": project_relative(shards.folder, cache_root()),
            "checkpoint": project_relative(checkpoint_path(out), cache_root()),
        },
    }
    write_history(result.history, results_dir)
    _write_json(results_dir / "provenance.json", with_runs(full, earlier[2]))
    if config.register:
        update_registry(config.models_path, registry_entries(config, teacher, sha, sha_int8, record))
    return full
