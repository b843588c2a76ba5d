"""A distillation reproduces its bytes, and a re-distillation is judged against the committed model.

The subprocess test runs ``python -m benchmark distill`` twice, each in a
fresh process pinned to another CPU, with the portable numerics profile
(the default): the exported ONNX bytes must be the same. It is the check
that fails when thread scheduling or a CPU-dependent kernel choice starts
to move the weights on one machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import audiofile
import audmetric
import numpy as np
import pytest

from benchmark import DIMENSIONS
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
    "wav2small-17k",
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


def distill_pinned(tmp: Path, name: str, cpu: int, pool: Path, models: Path) -> subprocess.Popen:
    r"""Start ``python -m benchmark distill TINY`` in a fresh process bound to ``cpu``, with its own cache."""
    env = {k: v for k, v in os.environ.items() if k != "SER_BENCHMARK_NUMERICS"}
    env.update(SER_BENCHMARK_CACHE=str(tmp / f"cache-{name}"), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "benchmark", "distill", *TINY]
    argv += ["--data", str(pool), "--models", str(models), "--out", str(tmp / name)]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: pin(cpu),
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
    # at the same time, each on its own CPU
    runs = {name: distill_pinned(tmp_path, name, cpu, pool, models) for name, cpu in (("a", first), ("b", second))}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, f"run {name}: {output[-2000:]}"
    records = {name: (tmp_path / f"{name}-records" / "provenance.json").read_text() for name in runs}
    assert all('"profile": "portable"' in text for text in records.values())
    data = [json.loads(text)["data"] for text in records.values()]
    assert len(data[0]["teacher_targets_sha256"]) == 64 and len(data[0]["crops_audio_sha256"]) == 64
    assert [d["teacher_targets_sha256"] for d in data] == [data[0]["teacher_targets_sha256"]] * 2
    assert [d["crops_audio_sha256"] for d in data] == [data[0]["crops_audio_sha256"]] * 2
    a, b = (sha256_file(tmp_path / name / "model.onnx") for name in runs)
    assert a == b
    assert sha256_file(tmp_path / "a-int8" / "model.onnx") == sha256_file(tmp_path / "b-int8" / "model.onnx")


def comparison(**kwargs):
    from benchmark.distill.compare import Comparison

    base = dict(
        new={},
        committed={},
        differences={"test-1": {"arousal": 0.01, "mean": -0.02}, "test-2": {"arousal": 0.0, "mean": 0.03}},
        agreement={},
        new_targets={"arousal >= 0.90": True, "mean >= 0.80": True},
        committed_targets={"arousal >= 0.90": True, "mean >= 0.80": True},
    )
    return Comparison(**{**base, **kwargs})


def test_behaviour_within_the_tolerance_keeps_the_committed_model():
    from benchmark.distill.compare import TOLERANCE, verdict

    near = comparison()
    assert near.within_tolerance and near.missed_targets == []
    said = verdict(near, Path("/cache/new"), Path("/project/weights/w"), same_bytes=False)
    assert said.startswith("behaviourally identical") and "kept the committed model /project/weights/w" in said
    assert verdict(near, Path("/n"), Path("/c"), same_bytes=True).startswith("the same bytes")

    far = comparison(differences={"test-1": {"valence": -0.11}, "test-2": {"valence": 0.02}})
    assert not far.within_tolerance and TOLERANCE < 0.11
    said = verdict(far, Path("/n"), Path("/c"), same_bytes=False)
    assert "valence on test-1: -0.110" in said and "--replace" in said and "kept the committed model /c" in said

    # a target the committed model meets and the new one misses decides, whatever the tolerance says
    worse = comparison(new_targets={"arousal >= 0.90": False, "mean >= 0.80": True})
    assert worse.within_tolerance and worse.missed_targets == ["arousal >= 0.90"]
    assert verdict(worse, Path("/n"), Path("/c"), same_bytes=False).startswith("the new model misses arousal >= 0.90")
    # a target neither meets is no reason to prefer either
    both = comparison(new_targets={"mean >= 0.80": False}, committed_targets={"mean >= 0.80": False})
    assert both.missed_targets == []


def test_the_comparison_scores_both_models_against_the_teacher(tmp_path, use_demo):
    import torch

    from benchmark.distill.compare import SPLITS, ccc_table, compare, predict, split_signals
    from benchmark.distill.teacher import load_teacher
    from benchmark.students.export import export_onnx, quantize_int8
    from benchmark.students.wav2small import Wav2Small, Wav2SmallConfig

    folders = {}
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        module = Wav2Small(Wav2SmallConfig(channels=8, layers=2, pool_after=1)).eval()
        folders[name] = tmp_path / name
        export_onnx(module, folders[name])
        quantize_int8(folders[name], tmp_path / f"{name}-int8")
    teacher, _ = load_teacher("random-gaussian", ROOT / "models.yaml")
    result = compare(folders["b"], folders["a"], teacher, max_files=6)
    outputs, signals = split_signals(teacher, "test-2", 6)
    prediction = predict(folders["b"], signals)
    expected = {d: audmetric.concordance_cc(outputs[:, i], prediction[:, i]) for i, d in enumerate(DIMENSIONS)}
    assert result.new["test-2"]["valence"] == pytest.approx(expected["valence"], abs=1e-6)
    assert result.new["test-2"] == ccc_table(outputs, prediction) and set(result.differences) == set(SPLITS)
    assert result.differences["test-2"]["valence"] == pytest.approx(
        expected["valence"] - result.committed["test-2"]["valence"], abs=1e-5
    )
    same = compare(folders["a"], folders["a"], teacher, max_files=6)
    assert same.agreement["test-1"]["arousal"] == pytest.approx(1.0) and same.within_tolerance


def test_a_re_distillation_keeps_the_committed_model_unless_told_to_replace(tmp_path, use_demo, capsys):
    import yaml

    from benchmark.distill.cli import main
    from benchmark.distill.compare import candidate_folder
    from benchmark.hashing import artifact_sha256

    pool = write_pool(tmp_path / "pool")
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    out = tmp_path / "weights" / "w2s"
    argv = [a for a in TINY if a != "--no-register"] + ["--data", str(pool), "--models", str(models)]
    argv += ["--out", str(out), "--threads", "1", "--compare-files", "6"]

    def registered() -> str:
        entries = yaml.safe_load(models.read_text())["models"]
        return next(e for e in entries if e["name"] == "wav2small-17k")["source"]["sha256"]

    assert main(argv) == 0  # nothing committed yet: registered as before
    committed = artifact_sha256(out)
    assert registered() == committed
    text = models.read_text()

    assert main(argv + ["--seed", "1"]) == 0  # other weights: a candidate, compared, the committed one kept
    said = capsys.readouterr().out
    candidate = candidate_folder("wav2small-17k")
    assert "kept the committed model" in said and f"the new one is in {candidate}" in said
    assert models.read_text() == text and artifact_sha256(out) == committed
    assert artifact_sha256(candidate) != committed
    record = json.loads((candidate.with_name("wav2small-17k-records") / "comparison.json").read_text())
    assert record["committed"] == str(out) and record["same_bytes"] is False and record["verdict"] in said
    assert set(record["differences"]) == {"test-1", "test-2"}

    assert main(argv + ["--seed", "1", "--replace"]) == 0  # told to: the new model is registered
    assert registered() == artifact_sha256(out) == artifact_sha256(candidate) != committed


def test_only_a_registering_run_over_present_committed_weights_becomes_a_candidate(tmp_path):
    import dataclasses

    import torch

    from benchmark.distill.compare import candidate_folder, plan
    from benchmark.distill.config import DistillConfig
    from benchmark.hashing import artifact_sha256
    from benchmark.students.export import export_onnx
    from benchmark.students.wav2small import Wav2Small, Wav2SmallConfig

    torch.manual_seed(0)
    committed = tmp_path / "weights" / "w"
    export_onnx(Wav2Small(Wav2SmallConfig(channels=8, layers=2, pool_after=1)).eval(), committed)
    models = tmp_path / "models.yaml"
    entry = "  - name: s\n    kind: audonnx\n    source: {path: weights/w, sha256: %s}\n"
    models.write_text("models:\n" + entry % artifact_sha256(committed))
    config = DistillConfig(student="s", models=str(models), out=str(committed))

    run, against = plan(config)
    assert against == committed and run.out_path == candidate_folder("s") and not run.register
    elsewhere = tmp_path / "try"
    run, against = plan(dataclasses.replace(config, out=str(elsewhere)))
    assert against == committed and run.out_path == elsewhere and not run.register
    for unchanged in (dataclasses.replace(config, replace=True), dataclasses.replace(config, register=False)):
        assert plan(unchanged) == (unchanged, None)
    models.write_text("models:\n" + entry % ("0" * 64))  # weights that are not the registered ones
    assert plan(config) == (config, None)
    models.write_text("models:\n  - name: other\n    source: {path: weights/w}\n")  # no entry for the student
    assert plan(config) == (config, None)
