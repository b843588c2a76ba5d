"""A distillation reproduces its bytes, and a re-distillation is judged against the committed model.

The subprocess test runs ``python -m benchmark distill`` twice, each in a
fresh process pinned to another CPU, with the portable numerics profile
(the default): the exported ONNX bytes must be the same. It is the check
that fails when thread scheduling or a CPU-dependent kernel choice starts
to move the weights on one machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import audiofile
import numpy as np
import pytest

from benchmark.hashing import sha256_file

ROOT = Path(__file__).resolve().parent.parent
SR = 16000

MODELS_YAML = """\
models:
  - name: random-gaussian
    kind: random
    role: baseline
    source: {}
    params: {seed: 0}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: seeded Gaussian draws
"""

TINY = [
    "--student",
    "wav2small-2.0",
    "--teacher",
    "random-gaussian",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--crop-seconds",
    "0.5",
    "--variants",
    "1",
    "--threads",
    "2",
    "--gold",
    "none",
    "--refit-data",
    "none",
    "--no-register",
    "--no-progress",
]
r"""A distillation of a few seconds: a small Wav2Small, one epoch of half-second crops, a seeded stand-in teacher."""


def write_pool(folder: Path, count: int = 8) -> Path:
    r"""``count`` tones with noise, each of its own pitch, level and length."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        t = np.arange(int(SR * (0.6 + 0.1 * i))) / SR
        x = 0.05 * (i + 1) * np.sin(2 * np.pi * (140 + 50 * i) * t) + 0.01 * rng.normal(size=t.size)
        audiofile.write(str(folder / f"f{i}.wav"), x.astype(np.float32), SR)
    return folder


def distill_pinned(tmp: Path, name: str, cpu: int, pool: Path, models: Path) -> subprocess.CompletedProcess:
    r"""``python -m benchmark distill TINY`` in a fresh process bound to ``cpu``, with its own cache."""
    env = {k: v for k, v in os.environ.items() if k != "SER_BENCHMARK_NUMERICS"}
    env.update(SER_BENCHMARK_CACHE=str(tmp / f"cache-{name}"), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "benchmark", "distill", *TINY]
    argv += ["--data", str(pool), "--models", str(models), "--out", str(tmp / name)]
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, preexec_fn=lambda: pin(cpu)
    )


def pin(cpu: int) -> None:
    r"""Bind the calling process (and what it starts) to one CPU."""
    os.sched_setaffinity(0, {cpu})


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to"
)
def test_two_processes_on_different_cpus_export_the_same_bytes(tmp_path):
    pool = write_pool(tmp_path / "pool")
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    first, second = sorted(os.sched_getaffinity(0))[:2]
    runs = {name: distill_pinned(tmp_path, name, cpu, pool, models) for name, cpu in (("a", first), ("b", second))}
    for name, run in runs.items():
        assert run.returncode == 0, f"run {name}: {run.stderr[-2000:]}"
    records = {name: (tmp_path / f"{name}-records" / "provenance.json").read_text() for name in runs}
    assert all('"profile": "portable"' in text for text in records.values())
    a, b = (sha256_file(tmp_path / name / "model.onnx") for name in runs)
    assert a == b
    assert sha256_file(tmp_path / "a-int8" / "model.onnx") == sha256_file(tmp_path / "b-int8" / "model.onnx")
