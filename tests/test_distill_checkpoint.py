"""The distillation's resume checkpoint holds only tensors and plain values and loads with ``weights_only=True``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from test_distill import FeatureTeacher, TinyStudent, config, models_yaml, pool  # noqa: F401 (fixtures)

from benchmark.distill.checkpoint import CHECKPOINT_FORMAT, CheckpointMismatch, load_checkpoint
from benchmark.distill.config import checkpoint_path
from benchmark.distill.pipeline import distill
from benchmark.distill.train import Interrupted


def _leave_mark(path: str) -> dict:
    Path(path).write_text("code ran while the checkpoint was read")
    return {}


class _Payload:
    r"""Unpickling this calls :func:`_leave_mark`, as a crafted checkpoint could call anything."""

    def __init__(self, mark: Path):
        self.mark = str(mark)

    def __reduce__(self):
        return _leave_mark, (self.mark,)


def test_interrupted_run_checkpoint_loads_with_weights_only(tmp_path, pool, models_yaml):  # noqa: F811
    cfg = config(tmp_path, pool, models_yaml, out="safe", epochs=2, batch_size=2)
    with pytest.raises(Interrupted):
        distill(
            dataclasses.replace(cfg, stop_after_steps=3),
            teacher=FeatureTeacher(),
            build_student=lambda arch: TinyStudent(),
        )
    saved = torch.load(checkpoint_path(cfg.out_path), map_location="cpu", weights_only=True)
    assert saved["format"] == CHECKPOINT_FORMAT and saved["global_step"] == 2  # checkpoint_every=2
    resumed = distill(cfg, teacher=FeatureTeacher(), build_student=lambda arch: TinyStudent())
    assert resumed.provenance["resumed_from_step"] == 2


def test_a_checkpoint_that_runs_code_when_read_is_refused(tmp_path):
    mark, path = tmp_path / "mark", tmp_path / "checkpoint.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "fingerprint": {}, "payload": _Payload(mark)}, path)
    with pytest.raises(CheckpointMismatch, match="--no-resume"):
        load_checkpoint(path, {})
    assert not mark.exists()
