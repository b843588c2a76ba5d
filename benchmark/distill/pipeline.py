"""The distillation stage end to end: data → teacher targets → training → export → records.

:func:`distill` is what ``python -m benchmark distill`` runs. Under
``torchrun`` (``WORLD_SIZE > 1``) it initialises ``torch.distributed``,
every process trains on its share of each epoch (DistributedSampler),
and only rank 0 annotates, validates and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS
from benchmark.distill import annotate
from benchmark.distill.annotate import Pool
from benchmark.distill.config import (
    PRECISIONS,
    DistillConfig,
    DistillError,
    checkpoint_path,
    default_out,
    int8_folder,
    records_folder,
    student_recipe,
)
from benchmark.distill.export import (
    OUTPUT_FILES,
    _ccc,
    _check_out,
    _check_unregistered_out,
    _default_exporter,
    _num,
    _replace_folder,
    _score_onnx,
    load_export,
)
from benchmark.distill.finish import INT8_LOSS_LIMIT, _int8_guard, _refit_head, _tune_on_whole_files
from benchmark.distill.records import _write_json, provenance_record, registry_entries
from benchmark.distill.runtime import (
    _barrier,
    _deterministic,
    _device,
    _init_distributed,
    _shutdown_distributed,
    check_precision,
    keep_freed_memory,
    native_bf16,
)
from benchmark.distill.teacher import (
    DEFAULT_GOLD,
    FORBIDDEN_SPLITS,
    REFIT_MAX_FILES,
    _check_gold,
    _gold_spec,
    _refit_files,
    _refit_pool,
    _share_threads,
    _training_files,
    _validation_sets,
    fitted_on,
    load_teacher,
)
from benchmark.hashing import sha256_text, sha256_tree
from benchmark.results import provenance

__all__ = [  # the stages' names, where callers found them before the stages had modules of their own
    "DEFAULT_GOLD", "FORBIDDEN_SPLITS", "INT8_LOSS_LIMIT", "OUTPUT_FILES", "PRECISIONS", "REFIT_MAX_FILES",
    "DistillConfig", "DistillError", "DistillOutcome", "check_precision", "checkpoint_path", "default_out",
    "distill", "fitted_on", "int8_folder", "keep_freed_memory", "load_export", "load_teacher", "native_bf16",
    "provenance_record", "records_folder", "registry_entries", "student_recipe",
    # tested directly
    "_ccc", "_check_gold", "_num", "_refit_head", "_score_onnx", "_tune_on_whole_files",
]


@dataclasses.dataclass
class DistillOutcome:
    r"""What a distillation produced (on rank 0; other ranks get ``None`` paths)."""

    out: Path | None
    out_int8: Path | None
    provenance: dict
    history: pd.DataFrame
    teacher_calls: int


def distill(
    config: DistillConfig,
    *,
    teacher=None,
    build_student: typing.Callable[[str], typing.Any] | None = None,
    gold_set=None,
    exporter: tuple[typing.Callable, typing.Callable] | None = None,
) -> DistillOutcome:
    r"""Distil ``config.student`` from ``config.teacher``.

    Keyword arguments replace components (for tests and experiments):
    ``teacher`` a :class:`~benchmark.models.base.Predictor`,
    ``build_student`` an architecture → ``nn.Module`` function,
    ``gold_set`` an :class:`~benchmark.data.datasets.EvalSet` with labels,
    ``exporter`` the pair ``(export_onnx, quantize_int8)``.

    Raises:
        DistillError: on a configuration that cannot work
        benchmark.distill.annotate.TeacherError: if the teacher returns NaN
        benchmark.distill.train.CheckpointMismatch: if the checkpoint is another run's

    """
    import torch

    from benchmark.distill import refit, train as training

    started = time.perf_counter()
    rank, world_size, local_rank = _init_distributed()
    device = _device(config.device, local_rank)
    _deterministic(device)
    keep_freed_memory()
    threads = config.threads or max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(threads)

    out, out_int8 = config.out_path, config.int8_path
    if rank == 0:
        _check_out(out)
        _check_out(out_int8)
        if not config.register:
            _check_unregistered_out(config)
    if teacher is None:
        teacher, teacher_source = load_teacher(config.teacher, config.models_path)
    else:
        teacher_source = dict(getattr(teacher, "source", None) or {})
    _share_threads(teacher, config.teacher_workers or threads)
    dims = [DIMENSIONS.index(d) for d in annotate.teacher_dimensions(teacher)]
    gold_spec = _gold_spec(config)
    _check_gold(gold_spec, teacher, teacher_source)

    files, source = annotate.resolve_files(config.data)
    pool = annotate.scan_pool(files)
    if config.max_files and len(pool.files) > config.max_files:
        pool = Pool(pool.files[: config.max_files], pool.hashes[: config.max_files], pool.missing, pool.duplicates)
    if len(pool.files) < 2:
        raise DistillError(f"Need at least 2 distinct audio files to distil, found {len(pool.files)} in {source}.")
    train_pool, held = pool.split(config.val_fraction)
    refit_pool, refit_source = _refit_pool(config, pool, train_pool)
    recipe = config.recipe()
    hyper = config.hyper()
    check_precision(hyper.precision, device)

    # rank 0 runs the teacher; the others wait and then read its cache
    shards = annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch,
                                    progress=config.progress) if rank == 0 else None
    _barrier(world_size)
    if shards is None:
        shards = annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch, progress=False)
    teacher_calls = shards.teacher_calls
    target_range = tuple(float(x) for x in config.target_range)
    usable = annotate.in_range(shards.targets, target_range)
    offscale = [
        f"{os.path.basename(shards.files[shards.file_index[i]])} (variant {shards.variant[i]})"
        for i in np.flatnonzero(~usable)
    ]

    validation, val_info, calls = _validation_sets(teacher, held, gold_spec, gold_set, dims, rank, config,
                                                   target_range)
    teacher_calls += calls

    build_student = build_student or _default_builder
    torch.manual_seed(config.seed)  # the student's initial weights follow from the seed
    try:
        student = build_student(config.student)
    except ValueError as ex:  # unknown architecture
        raise DistillError(str(ex)) from None
    fingerprint = {
        "student": config.student,
        # the layout, not only the name: a layout changed in the code can keep every
        # parameter shape, and its weights would then resume without complaint
        "architecture": sha256_text(repr(student))[:16],
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "train_files_sha256": train_pool.sha256,
        "heldout_files_sha256": held.sha256,
        "gold": gold_spec,
        "target_range": list(target_range),
        "recipe": json.loads(json.dumps(dataclasses.asdict(recipe))),
        "hyper": dataclasses.asdict(hyper),
        "world_size": world_size,
    }
    results_dir = config.records_path
    result = training.train(
        student, shards, validation, hyper,
        checkpoint=checkpoint_path(out), fingerprint=fingerprint, dims=dims, usable=usable, resume=config.resume,
        device=device, checkpoint_every=config.checkpoint_every, progress=config.progress,
        stop_after_steps=config.stop_after_steps, rank=rank, world_size=world_size,
        on_epoch=lambda history: training.write_history(history, results_dir),
    )
    if rank != 0:
        _barrier(world_size)
        _shutdown_distributed(world_size)
        return DistillOutcome(None, None, {}, result.history, teacher_calls)

    student.load_state_dict(result.best_state)
    train_files, train_offscale, refit_files, refit_info = None, [], None, {"source": "none"}
    refitting = config.head_refit and refit.has_linear_head(student)
    if config.whole_file_epochs or refitting:
        train_files, train_offscale, calls = _training_files(teacher, train_pool, dims, config, target_range)
        teacher_calls += calls
    if refitting:
        refit_files, refit_info, calls = _refit_files(teacher, refit_pool, refit_source, dims, config, target_range)
        teacher_calls += calls
    tuning_started = time.perf_counter()
    tuning, baseline = _tune_on_whole_files(config, student, train_files, dims, validation, result, device)
    tuning_seconds = time.perf_counter() - tuning_started
    before_refit = {k: v.clone() for k, v in student.state_dict().items()}
    head_refit, head_data = _refit_head(config, student, train_files, refit_files, dims, validation, baseline,
                                        device)
    student.to("cpu").eval()
    export_onnx, quantize_int8 = exporter or _default_exporter()

    def export() -> None:
        _replace_folder(out, lambda tmp: export_onnx(student, tmp))
        _replace_folder(out_int8, lambda tmp: quantize_int8(out, tmp))

    export()
    scored: dict = {}  # ONNX figures by model file: each export is scored once
    if head_refit.get("applied") and "validation" in head_refit:
        head_refit = _int8_guard(config, student, head_data, validation, baseline, before_refit, head_refit, export,
                                 scored)

    record = provenance_record(
        config, teacher, student, out, out_int8, source=source, listed=len(files), pool=pool,
        train_pool=train_pool, held=held, shards=shards, offscale=offscale, val_info=val_info,
        validation=validation, result=result, recipe=recipe, hyper=hyper, world_size=world_size,
        target_range=target_range, train_offscale=train_offscale, whole_file_tuning=tuning, head_refit=head_refit,
        refit_info=refit_info, scored=scored,
    )
    # The copy inside the model folder is part of its sha256: keep only what the
    # weights depend on, so the same configuration re-run gives the same hash.
    _write_json(out / "provenance.json", record)
    quantized_from = {"path": out.name, "onnx_sha256": record["student"]["onnx_sha256"]}
    _write_json(out_int8 / "provenance.json", {**record, "quantized_from": quantized_from})
    sha, sha_int8 = sha256_tree(out), sha256_tree(out_int8)
    full = {
        **record,
        "student": {
            **record["student"], "path": str(out), "sha256": sha, "int8_path": str(out_int8), "int8_sha256": sha_int8,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": provenance()["date"],
        "device": device,
        "threads": threads,
        "teacher_calls": teacher_calls,
        "resumed_from_step": result.resumed_from,
        "whole_file_tuning_seconds": round(tuning_seconds, 1),
        "cache": {"teacher_shards": str(shards.folder), "checkpoint": str(checkpoint_path(out))},
    }
    training.write_history(result.history, results_dir)
    _write_json(results_dir / "provenance.json", full)
    if config.register:
        from benchmark.distill.registry_update import update_registry

        update_registry(config.models_path, registry_entries(config, teacher, sha, sha_int8, record))
    _barrier(world_size)
    _shutdown_distributed(world_size)
    return DistillOutcome(out, out_int8, full, result.history, teacher_calls)



def _default_builder(architecture: str):
    from benchmark.students import build

    return build(architecture)


