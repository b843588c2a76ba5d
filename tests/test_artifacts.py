"""The committed artefacts: distilled students in ``weights/``, their records in ``results/distill/``.

Each distilled student is loaded from the committed ONNX folders through
the registry, as ``python -m benchmark run`` loads it, and must give the
per-file predictions committed in ``results/predictions/`` for its sha256;
its int8 twin must follow it. Every ``targets.json`` must name the models
that ``models.yaml`` registers now and judge itself as
:func:`benchmark.distill.targets.checks` does, and the figures quoted in
``docs/distillation.md`` must be that record's.
"""

from __future__ import annotations

import json
import os
import re

import audiofile
import numpy as np
import pytest

from benchmark import DIMENSIONS, results
from benchmark.analyses.perturbations.voice import VOICE_SHIFTS
from benchmark.distill.targets import TARGETS, checks
from benchmark.paths import PROJECT_ROOT
from benchmark.registry import Registry, load_model
from benchmark.results import ATOL, RTOL

RECORDS = PROJECT_ROOT / "results" / "distill"
FILES = 12
"""Demo test-1 files each student is run on (spread over the split)."""


def registry() -> Registry:
    return Registry.from_file(PROJECT_ROOT / "models.yaml")  # verifies each committed folder's sha256


def students() -> list[str]:
    return [e.name for e in registry().values() if e.distilled and not e.name.endswith("-int8")]


def ccc(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.mean((a - a.mean()) * (b - b.mean())) / (a.var() + b.var() + (a.mean() - b.mean()) ** 2))


def test_every_distilled_model_has_its_committed_weights():
    reg = registry()
    distilled = [e for e in reg.values() if e.distilled]
    assert {"wav2small", "wav2small-int8"} <= {e.name for e in distilled}
    for entry in distilled:
        folder = entry.resolve(entry.source["path"])
        assert (folder / "model.onnx").is_file(), f"{entry.name}: {folder} is missing; restore it from git"
        assert load_model(entry.name, reg).artifact_hash == entry.source["sha256"], entry.name


@pytest.fixture(scope="module")
def test1(demo_cache):
    r"""``FILES`` files of the demo msppodcast test-1 (a subset of the full build, byte for byte)."""
    from benchmark.data.datasets import load_split

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_BENCHMARK_CACHE", str(demo_cache))
        evalset = load_split("msppodcast", "test-1", data="demo")
    files = list(evalset.files[:: len(evalset.files) // FILES][:FILES])
    return evalset, files, [audiofile.read(f)[0] for f in files]


@pytest.fixture(scope="module")
def outputs(test1) -> dict[str, np.ndarray]:
    r"""Every distilled model's outputs on the ``test1`` files."""
    reg = registry()
    _, _, signals = test1
    out = {}
    for name in students():
        for variant in (name, f"{name}-int8"):
            model = load_model(variant, reg)
            out[variant] = np.stack([np.asarray(model(x, 16000), dtype=float).ravel() for x in signals])
    return out


@pytest.mark.parametrize("name", students())
def test_committed_students_give_the_committed_predictions(name, test1, outputs):
    evalset, files, _ = test1
    reg = registry()
    for variant in (name, f"{name}-int8"):
        committed = results.read_predictions(
            variant,
            reg[variant].source["sha256"],
            "demo-msppodcast",
            "1.0.0",
            "test-1",
            results.read_table("correctness", RECORDS.parent),
            RECORDS.parent,
        ).set_index("file")
        rows = committed.loc[[os.path.relpath(f, evalset.root) for f in files], [f"pred_{d}" for d in DIMENSIONS]]
        # the tolerance of results/: other CPUs move the 6th significant digit
        assert np.allclose(outputs[variant], rows.to_numpy(), rtol=RTOL, atol=ATOL), variant


TWIN_AGREEMENT = 0.98
r"""Least CCC(fp32, int8) per dimension on the 12 files of :func:`outputs`."""


@pytest.mark.parametrize("name", students())
def test_int8_twin_follows_its_fp32_model(name, outputs):
    # The int8 target bounds the CCC lost against the teacher (0.01, on 600 test-1 files), not the
    # agreement with the fp32 model on these 12 files, which a small sample moves further. Measured:
    # 0.988 (wav2small of 0.13.0, arousal), 0.9974 (mobilenetv3-small, dominance) and higher.
    fp32, int8 = outputs[name], outputs[f"{name}-int8"]
    agreement = [ccc(fp32[:, i], int8[:, i]) for i in range(len(DIMENSIONS))]
    assert min(agreement) >= TWIN_AGREEMENT, (name, agreement)
    # the check tells models apart: another student's int8 twin does not pass it
    other = next(s for s in students() if s != name)
    assert min(ccc(fp32[:, i], outputs[f"{other}-int8"][:, i]) for i in range(len(DIMENSIONS))) < TWIN_AGREEMENT


def test_targets_records_name_the_registered_models_and_pass_their_checks():
    reg = registry()
    records = sorted(RECORDS.glob("*/targets.json"))
    assert {p.parent.name for p in records} == set(students())
    for path in records:
        name = path.parent.name
        report = json.loads(path.read_text())
        for label, variant in (("fp32", name), ("int8", f"{name}-int8")):
            model = report["models"][label]
            assert model["sha256"] == reg[variant].source["sha256"], f"{path}: {label} is not the registered {variant}"
            # a path inside the project, as models.yaml names it: valid on every machine and checkout
            assert model["path"] == reg[variant].source["path"], f"{path}: {model['path']}"
        command = (report.get("timing") or {}).get("command", "")
        assert not re.search(r"--out /", command), f"{path}: absolute --out in {command!r}"
        assert report["targets"] == checks(report), path
        assert report["targets"]["int8 loses <= 0.01 CCC (every dimension)"], path
        assert all(v <= TARGETS["int8_loss"] for v in report["int8_loss"].values())
        assert report["files"] == 600 and report["skipped"] == 0
        assert report["split"]["dataset"] == "demo-msppodcast" and report["split"]["split"] == "test-1"
    for path in sorted(RECORDS.glob("*/provenance.json")):
        record = json.loads(path.read_text())
        named = [record["student"]["path"], record["student"]["int8_path"], *record.get("cache", {}).values()]
        assert not any(p.startswith("/") for p in named), f"{path}: machine paths {named}"
    wav2small = json.loads((RECORDS / "wav2small" / "targets.json").read_text())
    # the paper's model meets the original targets, on agreement, int8 loss and wall time (the wall time
    # one where the report timed a run: a report made with --skip-run has none); the voice-shift one,
    # added later, is recorded as measured
    original = {k: v for k, v in wav2small["targets"].items() if "voice shifts" not in k}
    assert all(original.values()) and len(original) == (4 if wav2small.get("timing") else 3)
    assert "voice_shift" in wav2small and "sex_agreement" in wav2small
    assert set(wav2small["voice_shift"]["conditions"]) == set(VOICE_SHIFTS)
    assert wav2small["voice_shift"]["files"] == 600 and set(wav2small["sex_agreement"]) == {"test-1", "test-2"}


def _committed_section() -> str:
    text = (PROJECT_ROOT / "docs" / "distillation.md").read_text()
    start = text.index("**The committed model")
    return text[start : text.index("\n\n**", start + 1)]


def test_distillation_doc_quotes_the_committed_targets():
    r"""The hand-written *committed model* table of docs/distillation.md is the record, to its printed digits."""
    report = json.loads((RECORDS / "wav2small" / "targets.json").read_text())
    fp32 = report["models"]["fp32"]
    figures, ci = fp32["ccc_vs_teacher"], fp32["ccc_vs_teacher_ci95"]
    loss = report["int8_loss"]

    def signed(value: float) -> str:
        return f"{value:.4f}".replace("-", "−")

    section = _committed_section()
    expected = [
        f"| CCC(student, teacher), arousal, test-1 | ≥ 0.90 | {figures['arousal']:.3f} "
        f"[{ci['arousal'][0]:.3f}, {ci['arousal'][1]:.3f}] |",
        f"| CCC(student, teacher), mean A/D/V, test-1 | ≥ 0.80 | {figures['mean']:.3f} "
        f"[{ci['mean'][0]:.3f}, {ci['mean'][1]:.3f}] (A {figures['arousal']:.3f}, "
        f"D {figures['dominance']:.3f}, V {figures['valence']:.3f}) |",
        f"(A {signed(loss['arousal'])}, D {signed(loss['dominance'])}, V {signed(loss['valence'])})",
    ]
    if report.get("timing"):
        expected.append(f"**{report['timing']['wall_seconds'] / 60:.1f} min** wall, the median of three runs")
    for line in expected:
        assert line in section, f"docs/distillation.md, committed model: expected {line!r}"
