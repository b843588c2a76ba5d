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

import benchmark
from benchmark import sha256_text
from benchmark.distill import runtime
from benchmark.distill.config import DistillConfig, DistillError, checkpoint_path
from benchmark.distill.export import check_out_folder, check_unregistered_out
from benchmark.distill.finish import finish
from benchmark.distill.history import write_history
from benchmark.distill.provenance_runs import read_records
from benchmark.distill.records import write_records
from benchmark.distill.teacher import Data, prepare_data, share_threads, teacher_for
from benchmark.distill.train import train


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
        benchmark.distill.checkpoint.CheckpointMismatch: if the checkpoint is another run's

    """
    started = time.perf_counter()
    env = runtime.start(config)
    if env.rank == 0:
        check_out_folder(config.out_path)
        check_out_folder(config.int8_path)
        if not config.register:
            check_unregistered_out(config)
    teacher, teacher_source = teacher_for(config, teacher)
    share_threads(teacher, config.teacher_workers or env.threads)
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
        return (build_student or benchmark.build_student)(config.student)
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
