"""The distillation stage end to end: data → teacher targets → training → export → records.

:func:`distill` is what ``python -m benchmark distill`` runs. Under
``torchrun`` (``WORLD_SIZE > 1``) it initialises ``torch.distributed``,
every process trains on its share of each epoch (DistributedSampler),
and only rank 0 annotates, validates and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing
from pathlib import Path

import pandas as pd
import torch

from benchmark.distill import runtime
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
    _check_out,
    _check_unregistered_out,
    _num,
    _score_onnx,
    load_export,
)
from benchmark.distill.finish import INT8_LOSS_LIMIT, _refit_head, _tune_on_whole_files, finish
from benchmark.distill.history import write_history
from benchmark.distill.provenance_runs import read_records
from benchmark.distill.records import provenance_record, registry_entries, write_records
from benchmark.distill.runtime import check_precision, keep_freed_memory, native_bf16
from benchmark.distill.teacher import (
    DEFAULT_GOLD,
    FORBIDDEN_SPLITS,
    REFIT_MAX_FILES,
    Data,
    _check_gold,
    _share_threads,
    fitted_on,
    load_teacher,
    prepare_data,
    teacher_for,
)
from benchmark.distill.train import train
from benchmark.hashing import sha256_text
from benchmark.students import build

__all__ = [  # the stages' names, where callers found them before the stages had modules of their own
    "DEFAULT_GOLD",
    "FORBIDDEN_SPLITS",
    "INT8_LOSS_LIMIT",
    "OUTPUT_FILES",
    "PRECISIONS",
    "REFIT_MAX_FILES",
    "DistillConfig",
    "DistillError",
    "DistillOutcome",
    "check_precision",
    "checkpoint_path",
    "default_out",
    "distill",
    "fingerprint",
    "fitted_on",
    "int8_folder",
    "keep_freed_memory",
    "load_export",
    "load_teacher",
    "native_bf16",
    "provenance_record",
    "records_folder",
    "registry_entries",
    "student_recipe",
    # tested directly
    "_check_gold",
    "_num",
    "_refit_head",
    "_score_onnx",
    "_tune_on_whole_files",
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
    started = time.perf_counter()
    env = runtime.start(config)
    if env.rank == 0:
        _check_out(config.out_path)
        _check_out(config.int8_path)
        if not config.register:
            _check_unregistered_out(config)
    teacher, teacher_source = teacher_for(config, teacher)
    _share_threads(teacher, config.teacher_workers or env.threads)
    data = prepare_data(config, teacher, teacher_source, gold_set, env)
    student = _build_student(config, build_student)
    result = train(
        student,
        data.shards,
        data.validation,
        config.hyper(),
        checkpoint=checkpoint_path(config.out_path),
        fingerprint=fingerprint(config, student, teacher, data, env),
        dims=data.dims,
        usable=data.usable,
        resume=config.resume,
        device=env.device,
        checkpoint_every=config.checkpoint_every,
        progress=config.progress,
        stop_after_steps=config.stop_after_steps,
        rank=env.rank,
        world_size=env.world_size,
        on_epoch=lambda history: write_history(history, config.records_path),
    )
    if env.rank != 0:
        runtime.stop(env)
        return DistillOutcome(None, None, {}, result.history, data.teacher_calls)
    # the export replaces the model folders: read what the earlier runs recorded first
    earlier = read_records(*(p / "provenance.json" for p in (config.out_path, config.int8_path, config.records_path)))
    finished = finish(config, student, teacher, data, result, env.device, exporter)
    full = write_records(config, teacher, student, data, result, finished, env, started, earlier)
    runtime.stop(env)
    return DistillOutcome(
        config.out_path, config.int8_path, full, result.history, data.teacher_calls + finished.teacher_calls
    )


def _build_student(config: DistillConfig, build_student: typing.Callable[[str], typing.Any] | None):
    r"""The student network, initialised from the seed."""
    torch.manual_seed(config.seed)  # the student's initial weights follow from the seed
    try:
        return (build_student or build)(config.student)
    except ValueError as ex:  # unknown architecture
        raise DistillError(str(ex)) from None


def fingerprint(config: DistillConfig, student, teacher, data: Data, env: runtime.Environment) -> dict:
    r"""What defines a training run: a checkpoint with another fingerprint is not resumed."""
    return {
        "student": config.student,
        # the layout, not only the name: a layout changed in the code can keep every
        # parameter shape, and its weights would then resume without complaint
        "architecture": sha256_text(repr(student))[:16],
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "train_files_sha256": data.train_pool.sha256,
        "heldout_files_sha256": data.held.sha256,
        "gold": data.gold_spec,
        "target_range": list(data.target_range),
        "recipe": json.loads(json.dumps(config.recipe().record())),
        "hyper": dataclasses.asdict(config.hyper()),
        "world_size": env.world_size,
        "numerics": env.numerics["profile"],
    }
