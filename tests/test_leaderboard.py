"""Leaderboard docs: generated from a small fixture results folder."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.docs import build as build_docs
from benchmark.docs import inputs as docs_inputs
from benchmark.docs.distillation import distillation_targets
from benchmark.docs.formatting import DEMO_NOTE, MARKER, fmt3, slug
from benchmark.docs.generate import regenerate
from benchmark.results import predictions_path

SHA_OLD = "a" * 64
SHA_NEW = "b" * 64
SHA_BETA = "c" * 64
SHA_INT8 = "d" * 64
SHA_GHOST = "e" * 64
PROV = {"benchmark_version": "0.1.0", "code_commit": "abc123def456"}
MSP = ("demo-msppodcast", "1.0.0", "test-1")
MOSI = ("demo-mosi", "1.0.0", "test")
FINGERPRINT = {"demo-msppodcast": "1b5d86382609", "demo-mosi": "5e0c1a2b3c4d"}

REGISTRY = f"""
models:
  - name: alpha
    kind: audonnx
    role: teacher
    source: {{url: https://example.org/alpha.zip, sha256: {SHA_NEW}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: Big teacher.
    citation: Someone et al. 2024
  - name: beta
    kind: audonnx
    role: student
    source: {{path: weights/beta}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: Small student.
    distilled: {{teacher: alpha, data: demo-msppodcast train}}
  - name: beta-int8
    kind: audonnx
    role: student
    source: {{path: weights/beta-int8}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: Small student, int8.
"""

REPORTED = """
sources:
  paper: {citation: "Someone et al. 2024", url: "https://example.org/paper"}
entries:
  - label: Alpha (paper)
    models: [alpha]
    dataset: msppodcast
    corpus: MSP-Podcast v1.7
    split: test-1
    ccc: {arousal: 0.911, dominance: 0.822, valence: 0.733}
    source: paper
    verified: true
"""

# (model, sha, section) -> CCC per dimension; old alpha artefact is worse and older.
CCC = {
    ("alpha", SHA_OLD, MSP): {"arousal": 0.5012, "dominance": 0.4011, "valence": 0.3013},
    ("alpha", SHA_NEW, MSP): {"arousal": 0.7046, "dominance": 0.6021, "valence": 0.5538},
    ("beta", SHA_BETA, MSP): {"arousal": 0.6573, "dominance": 0.6342, "valence": 0.2481},
    ("beta-int8", SHA_INT8, MSP): {"arousal": 0.6519, "dominance": 0.6207, "valence": 0.2419},
    ("ghost", SHA_GHOST, MSP): {"arousal": 0.1234, "dominance": 0.1111, "valence": -0.0004},
    ("alpha", SHA_NEW, MOSI): {"valence": 0.4321},
    ("beta", SHA_BETA, MOSI): {"valence": 0.3456},
}
DATES = {
    SHA_OLD: "2025-01-01",
    SHA_NEW: "2025-02-01",
    SHA_BETA: "2025-01-15",
    SHA_INT8: "2025-01-16",
    SHA_GHOST: "2025-01-02",
}


def _base(model, sha, section):
    dataset, version, split = section
    return {
        "model": model,
        "model_sha256": sha,
        "dataset": dataset,
        "dataset_version": version,
        "data_fingerprint": FINGERPRINT[dataset],
        "split": split,
    }


def _prov(sha):
    return {**PROV, "date": DATES[sha]}


def _write(root: Path, name: str, rows: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / f"{name}.csv", index=False, lineterminator="\n")


def write_correctness(root: Path, skip_models=()) -> None:
    rows = []
    for (model, sha, section), values in CCC.items():
        if model in skip_models:
            continue
        for dim, ccc in values.items():
            rows.append(
                {
                    **_base(model, sha, section),
                    "dimension": dim,
                    "table": "x",
                    "role": "student",
                    "n": 40,
                    "n_skipped": 0,
                    "ccc": ccc,
                    "ccc_ci_low": ccc - 0.05,
                    "ccc_ci_high": ccc + 0.04,
                    "pearson": ccc + 0.01,
                    "mae": 0.2,
                    **_prov(sha),
                }
            )
    _write(root, "correctness", rows)


def write_predictions(root: Path) -> None:
    rng = np.random.default_rng(0)
    files = [f"wav/{i:03d}.wav" for i in range(40)]
    truth = {d: rng.uniform(0, 1, len(files)) for d in ("arousal", "dominance", "valence")}
    for model, sha, noise in (("alpha", SHA_NEW, 0.1), ("beta", SHA_BETA, 0.3)):
        df = pd.DataFrame({"file": files})
        for dim, t in truth.items():
            df[f"truth_{dim}"] = t
            df[f"pred_{dim}"] = np.clip(t + rng.normal(0, noise, len(files)), 0, 1)
        df["speaker"] = [f"s{i % 4}" for i in range(len(files))]
        df["sex"] = ["female" if i % 2 else "male" for i in range(len(files))]
        path = predictions_path(model, sha, *MSP, FINGERPRINT[MSP[0]], root)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, lineterminator="\n")


def write_optional(root: Path) -> None:
    rob, sex, spk, speakers = [], [], [], []
    for model, sha in (("alpha", SHA_NEW), ("beta", SHA_BETA), ("alpha", SHA_OLD)):
        for dim in ("arousal", "dominance", "valence"):
            clean = CCC[(model, sha, MSP)][dim]
            for k, condition in enumerate(("lowpass-4k", "mp3-32k")):
                delta = -0.01 * (k + 1) - (0.05 if model == "beta" else 0.0)
                rob.append(
                    {
                        **_base(model, sha, MSP),
                        "condition": condition,
                        "dimension": dim,
                        "condition_group": "codec",
                        "sweep": np.nan,
                        "snr_db": np.nan,
                        "n": 40,
                        "ccc_clean": clean,
                        "ccc": clean + delta,
                        "delta_ccc": delta,
                        "unchanged_share": 0.9 - 0.1 * k,
                        "mean_shift": 0.01,
                        **_prov(sha),
                    }
                )
            for snr in (0, 10, 20):
                # As the runner writes them: the 20 dB point doubles as a fixed background-noise condition.
                group = "background-noise" if snr == 20 else "snr-sweep"
                rob.append(
                    {
                        **_base(model, sha, MSP),
                        "condition": f"white-noise-{snr}db",
                        "dimension": dim,
                        "condition_group": group,
                        "sweep": "white-noise",
                        "snr_db": snr,
                        "n": 40,
                        "ccc_clean": clean,
                        "ccc": clean - 0.3 + 0.01 * snr,
                        "delta_ccc": -0.3 + 0.01 * snr,
                        "unchanged_share": 0.5,
                        "mean_shift": 0.02,
                        **_prov(sha),
                    }
                )
            for group, delta in (("female", 0.02), ("male", -0.03 if model == "beta" else -0.01)):
                sex.append(
                    {
                        **_base(model, sha, MSP),
                        "dimension": dim,
                        "group": group,
                        "n": 20,
                        "ccc_group": clean + delta,
                        "ccc_all": clean,
                        "delta_ccc": delta,
                        "ci_low": delta - 0.05,
                        "ci_high": delta + 0.05,
                        "threshold": 0.075,
                        "passed": True,
                        **_prov(sha),
                    }
                )
            spk.append(
                {
                    **_base(model, sha, MSP),
                    "dimension": dim,
                    "n_speakers": 4,
                    "min_samples": 5,
                    "ccc_median": clean - 0.1,
                    "ccc_q25": clean - 0.2,
                    "ccc_q75": clean,
                    "mae_median": 0.2,
                    "mae_q25": 0.15,
                    "mae_q75": 0.25,
                    "spearman_rho": 0.4,
                    "spearman_p": 0.6,
                    **_prov(sha),
                }
            )
            for s in range(4):
                speakers.append(
                    {
                        **_base(model, sha, MSP),
                        "dimension": dim,
                        "speaker": f"s{s}",
                        "sex": "female" if s % 2 else "male",
                        "n": 10,
                        "ccc": clean - 0.05 * s,
                        "mae": 0.2,
                        "true_mean": 0.5,
                        "pred_mean": 0.5,
                        **_prov(sha),
                    }
                )
    _write(root, "robustness", rob)
    _write(root, "fairness_sex", sex)
    _write(root, "fairness_speaker", spk)
    _write(root, "speakers", speakers)
    eff = [
        {
            "model": "alpha",
            "model_sha256": SHA_NEW,
            "parameters": 164_000_000,
            "onnx_bytes": 657_000_000,
            "ms_per_5s": 330.2,
            "ms_per_5s_iqr": 5.1,
            "xrt": 15.1,
            "peak_rss_mb": 1400,
            "threads": 1,
            "repeats": 10,
            "runtime": "onnxruntime 1.31.1",
            "cpu": "x86_64",
            **_prov(SHA_NEW),
        },
        {
            "model": "beta",
            "model_sha256": SHA_BETA,
            "parameters": 72_300,
            "onnx_bytes": 290_000,
            "ms_per_5s": 1.48,
            "ms_per_5s_iqr": 0.02,
            "xrt": 3378,
            "peak_rss_mb": 90,
            "threads": 1,
            "repeats": 10,
            "runtime": "onnxruntime 1.31.1",
            "cpu": "x86_64",
            **_prov(SHA_BETA),
        },
        {
            "model": "beta-int8",
            "model_sha256": SHA_INT8,
            "parameters": 72_300,
            "onnx_bytes": 120_000,
            "ms_per_5s": 1.01,
            "ms_per_5s_iqr": 0.02,
            "xrt": 4950,
            "peak_rss_mb": 88,
            "threads": 1,
            "repeats": 10,
            "runtime": "onnxruntime 1.31.1",
            "cpu": "x86_64",
            **_prov(SHA_INT8),
        },
    ]
    _write(root, "efficiency", eff)
    _write(
        root,
        "runs",
        [
            {
                **_base("alpha", SHA_NEW, MSP),
                "tests": "correctness",
                "wall_seconds": 12.5,
                "n_files": 40,
                **_prov(SHA_NEW),
            },
            {
                **_base("alpha", SHA_OLD, MSP),
                "tests": "correctness",
                "wall_seconds": 13.0,
                "n_files": 40,
                **_prov(SHA_OLD),
            },
        ],
    )
    distill = root / "distill" / "beta"
    distill.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [0.3, 0.2, 0.15],
            "lr": [1e-3, 5e-4, 1e-4],
            **{f"val_ccc_teacher_{d}": [0.3, 0.5, 0.6] for d in ("arousal", "dominance", "valence")},
            **{f"val_ccc_gold_{d}": [0.2, 0.4, 0.5] for d in ("arousal", "dominance", "valence")},
            "seconds": [10.0, 10.0, 10.0],
        }
    ).to_csv(distill / "history.csv", index=False, lineterminator="\n")
    (distill / "provenance.json").write_text(
        json.dumps(
            {
                "teacher": "alpha",
                "teacher_sha256": SHA_NEW,
                "data": "demo-msppodcast 1.0.0 train",
                "seed": 0,
                "hyperparameters": {"epochs": 3, "lr": 0.001},
                "metrics": {"val_ccc_teacher_arousal": 0.6},
                "wall_seconds": 30.0,
            },
            indent=1,
        )
    )
    (distill / "targets.json").write_text(
        json.dumps(
            {
                "split": {"dataset": "demo-msppodcast", "dataset_version": "1.0.0", "split": "test-1"},
                "files": 40,
                "models": {
                    "fp32": {
                        "ccc_vs_teacher": {"arousal": 0.9123, "dominance": 0.8, "valence": 0.5, "mean": 2.2123 / 3},
                        "ccc_vs_teacher_ci95": {
                            "arousal": [0.8971, 0.9262],
                            "dominance": [0.75, 0.84],
                            "valence": [0.41, 0.58],
                            "mean": [0.70, 0.76],
                        },
                    },
                    "int8": {
                        "ccc_vs_teacher": {"arousal": 0.9051, "dominance": 0.8, "valence": 0.5, "mean": 2.2051 / 3}
                    },
                },
                "int8_loss": {"arousal": 0.0072, "dominance": -0.0002, "valence": 0.0, "mean": 0.0024},
                "int8_loss_ci95": {
                    "arousal": [0.0031, 0.0118],
                    "dominance": [-0.002, 0.0015],
                    "valence": [-0.001, 0.001],
                },
                "bootstrap": {"resamples": 1000, "level": 0.95, "seed": 0},
                "timing": {
                    "command": "-m benchmark distill --student beta",
                    "cache": "cold",
                    "wall_seconds": 600.0,
                    "cpu_seconds": 1150.0,
                    "cpu_count": 2,
                    "cpu": "AMD EPYC",
                },
                "targets": {
                    "CCC(student, teacher) arousal >= 0.90": True,
                    "CCC(student, teacher) mean A/D/V >= 0.80": False,
                },
            },
            indent=1,
        )
    )


def make_fixture(tmp_path: Path, full: bool = True) -> tuple[Path, Path, Path, Path]:
    r"""Results (all tables, or correctness only), registry, published numbers, docs folder."""
    results = tmp_path / "results"
    write_correctness(results)
    if full:
        write_predictions(results)
        write_optional(results)
    registry = tmp_path / "models.yaml"
    registry.write_text(REGISTRY)
    reported = tmp_path / "reported.yaml"
    reported.write_text(REPORTED)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "adding-a-model.md").write_text(
        "# Adding a model\n\n1. Register it.\n2. Run it.\n\n```\nnox -s docs\n```\n"
    )
    return results, docs, registry, reported


def build(fixture, docs=None, **kwargs):
    results, default_docs, registry, reported = fixture
    return build_docs(results, docs or default_docs, registry, reported=reported, resamples=200, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    r"""The full fixture, built once (plots make a build take seconds); read-only for tests."""
    fixture = make_fixture(tmp_path_factory.mktemp("built"))
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test cache is not set up yet
        mp.setenv("SER_BENCHMARK_CACHE", str(tmp_path_factory.mktemp("built-cache")))
        return fixture, build(fixture)


@pytest.fixture
def fixture(built):
    return built[0]


@pytest.fixture
def small(tmp_path):
    r"""Correctness only: cheap to build, for tests that rebuild."""
    return make_fixture(tmp_path, full=False)


def section(text: str, heading: str) -> str:
    r"""Text of the ``## heading`` section."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def first_table(text: str, heading: str) -> list[list[str]]:
    r"""Body cells of the first table after ``### heading``."""
    lines = text[text.index(f"### {heading}") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[start + 2 : end]]


CCC_CELL = re.compile(r"(\*\*)?(-?\d+\.\d{3})(\*\*)? \[(-?\d+\.\d{3}), (-?\d+\.\d{3})\]")


def read(fixture, rel: str) -> str:
    r"""A generated page, by its path in the generated folder (``docs/results/``)."""
    return (fixture[1] / "results" / rel).read_text()


def test_pages_written(built):
    fixture, paths = built
    docs = fixture[1]
    rel = {p.relative_to(docs / "results").as_posix() for p in paths}
    for expected in (
        "leaderboard.md",
        "models/alpha.md",
        "models/beta.md",
        "models/beta-int8.md",
        "models/ghost.md",
    ):
        assert expected in rel
    assert any(r.startswith("figures/") and r.endswith(".png") for r in rel)
    assert all(p.exists() for p in paths)
    assert "adding-a-model.md" not in rel  # hand-written, only read
    for page in ("leaderboard.md", "models/alpha.md"):
        assert MARKER in read(fixture, page)


def test_every_ccc_traces_to_a_row(fixture):
    results = fixture[0]
    text = section(read(fixture, "leaderboard.md"), "Correctness")
    rows = pd.read_csv(results / "correctness.csv", dtype={"model_sha256": str})
    current = rows[rows["model_sha256"] != SHA_OLD]
    known = {(r.model_sha256[:8], fmt3(r.ccc), fmt3(r.ccc_ci_low), fmt3(r.ccc_ci_high)) for r in current.itertuples()}
    shown = []
    for line in text.splitlines():
        sha = re.search(r"`([0-9a-f]{8})`", line)
        for _, point, _, low, high in CCC_CELL.findall(line):
            shown.append((sha[1], point, low, high))
    assert sorted(shown) == sorted(known)  # every current row shown once, with its artefact
    # The older artefact of alpha is not on the leaderboard, but on its page.
    assert SHA_OLD[:8] not in text
    page = read(fixture, "models/alpha.md")
    # the page names each artefact by its short hash (the full digest is in results/)
    assert f"`{SHA_OLD[:8]}`" in page and f"`{SHA_NEW[:8]}`" in page
    assert SHA_OLD not in page and SHA_NEW not in page
    assert fmt3(CCC[("alpha", SHA_OLD, MSP)]["arousal"]) in page


def test_best_per_column_bold_and_sorted(fixture):
    text = read(fixture, "leaderboard.md")
    table = first_table(text, MSP[0])
    assert [row[1].split("]")[0].strip("[") for row in table] == ["alpha", "beta", "beta-int8", "ghost"]
    for column in range(3, 6):
        cells = [row[column] for row in table]
        bold = [c for c in cells if c.startswith("**")]
        assert len(bold) == 1
        values = [float(CCC_CELL.match(c)[2]) for c in cells]
        assert float(CCC_CELL.match(bold[0])[2]) == max(values)
    assert table[1][4].startswith("**0.634**")  # beta's dominance beats alpha's


def test_demo_labelled(fixture):
    text = read(fixture, "leaderboard.md")
    headings = [line for line in text.splitlines() if line.startswith("### demo-")]
    # each replica's heading says so in one word; what that means is said once, in the section intro
    assert headings and all(h.endswith("(synthetic)") and DEMO_NOTE not in h for h in headings)
    synthetic = section(text, "Synthetic replicas")
    assert DEMO_NOTE in synthetic and text.count(DEMO_NOTE) == 1


def test_significance(fixture):
    text = section(read(fixture, "leaderboard.md"), "Correctness")
    assert "paired bootstrap" in text
    lines = [line for line in text.splitlines() if line.startswith("| arousal") and "alpha" in line and "beta" in line]
    assert lines, text
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    assert cells[1:3] == ["alpha", "beta"]
    assert re.fullmatch(r"-?\d\.\d{3}", cells[3]) and cells[6] == "40"
    assert cells[7] in ("speakers", "files")  # the resampled unit is named
    assert "Holm" in text and re.search(r"\|\s+rank \| model\s+\|", text)  # tie-aware ranks replace the position
    # No predictions stored for demo-mosi: said so, not silently skipped.
    assert "predictions not stored" in text


def test_efficiency_pairs_int8(fixture):
    text = section(read(fixture, "leaderboard.md"), "Efficiency")
    beta = next(line for line in text.splitlines() if line.startswith("| [beta]"))
    assert "290 kB" in beta and "120 kB" in beta and "72.3 K" in beta
    assert beta.rstrip(" |").endswith("x86_64")  # where it was timed: times from other CPUs do not compare
    assert not any(line.startswith("| [beta-int8]") for line in text.splitlines())
    assert "657 MB" in text and "164 M" in text


def test_robustness_fairness_summaries(fixture):
    text = read(fixture, "leaderboard.md")
    rob = section(text, "Robustness")
    beta = next(line for line in rob.splitlines() if line.startswith("| [beta]"))
    # Mean over the three fixed conditions (sweep-only rows left out): (-0.06 - 0.07 - 0.1) / 3.
    cells = [c.strip() for c in beta.strip("|").split("|")]
    assert cells[2:] == ["3", "-0.077", "-0.077", "-0.077", "0.733"]
    fair = section(text, "Fairness")
    beta = next(line for line in fair.splitlines() if line.startswith("| [beta]"))
    assert "0.030" in beta and "6/6" in beta and "0.400 / 0.400 / 0.400" in beta


def test_teacher_named_with_its_hash(tmp_path):
    # the distillation record holds {name, sha256}; an int8 variant has only its models.yaml entry
    sha = "ab" * 32
    (tmp_path / "distill" / "s").mkdir(parents=True)
    (tmp_path / "distill" / "s" / "provenance.json").write_text(json.dumps({"teacher": {"name": "t", "sha256": sha}}))
    models = {
        "s": {"distilled": {"teacher": "t"}},
        "s-int8": {"distilled": {"teacher": "t", "teacher_sha256": sha}},
        "old": {"distilled": {"teacher": "t"}},
        "base": {},
    }
    inputs = docs_inputs.Inputs(tmp_path, {}, models, [], {})
    assert docs_inputs.teacher_label(inputs, "s") == docs_inputs.teacher_label(inputs, "s-int8") == "t `abababab`"
    assert docs_inputs.teacher_label(inputs, "old") == "t"
    assert docs_inputs.teacher_label(inputs, "base") == ""


def test_model_pages(fixture):
    docs = fixture[1]
    beta = read(fixture, "models/beta.md")
    for heading in (
        "Provenance",
        "Artefact history",
        "Correctness",
        "Robustness",
        "Fairness",
        "Efficiency",
        "Distillation",
    ):
        assert f"## {heading}" in beta
    assert "| teacher " in beta and "alpha" in beta  # from provenance.json / models.yaml
    targets = beta.split("### Targets")[1]
    assert "demo-msppodcast 1.0.0 · test-1 (40 whole, clean files)" in targets
    assert re.search(r"\| fp32 +\| +0\.912 \|", targets) and re.search(
        r"\| int8 loss \(fp32 − int8\) +\| +0\.007 \| +0\.000 \|", targets
    )
    # intervals where the record has them, a dash where one is missing, no row where a model has none
    assert re.search(
        r"\| fp32, 95 % interval +\| +\[0\.897, 0\.926\] \| +\[0\.750, 0\.840\] \| +\[0\.410, 0\.580\] \| +\[0\.700, 0\.760\] \|",
        targets,
    )
    assert re.search(
        r"\| int8 loss, 95 % interval +\| +\[0\.003, 0\.012\] \| +\[-0\.002, 0\.002\] \| +\[-0\.001, 0\.001\] \| +— +\|",
        targets,
    )
    assert "int8, 95 % interval" not in targets and "(1000 resamples;" in targets
    assert "`python -m benchmark distill --student beta`: 10.0 min (cold teacher cache, 2 × AMD EPYC" in targets
    assert re.search(r"mean A/D/V >= 0\.80 +\| \*\*no\*\*", targets)
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", beta)
    names = {Path(f).name.split("__")[0] for f in figures}
    assert {"scatter", "robustness", "snr", "sex", "speakers", "distillation.png"} <= names
    for f in figures:
        assert (docs / "results" / "models" / f).resolve().exists()
    assert "not in models.yaml" in read(fixture, "models/ghost.md")
    alpha = read(fixture, "models/alpha.md")
    # the first screen: scores per replica split of the current artefact (not the old one) and their figure
    glance = section(alpha, "Synthetic replicas at a glance")
    assert alpha.index("## Synthetic replicas at a glance") < alpha.index("## Tests") < alpha.index("## Provenance")
    assert re.search(
        r"\| 0\.705 \[0\.655, 0\.745\] \| 0\.602 \[0\.552, 0\.642\] \| 0\.554 \[0\.504, 0\.594\] \| +0\.620 \|", glance
    )
    assert "0.501" not in glance and re.search(r"— +\| +— +\| 0\.432 \[0\.382, 0\.472\] \| +0\.432 \|", glance)
    assert "![CCC per synthetic replica split and dimension](../figures/models/alpha/glance.png)" in glance
    assert (docs / "results" / "figures" / "models" / "alpha" / "glance.png").exists()
    assert "## Runs" in alpha and "12.5" in alpha


def test_deterministic(built, tmp_path):
    fixture, first = built
    docs = fixture[1]
    snapshot = {p.relative_to(docs): p.read_bytes() for p in first}
    assert any(str(k).endswith(".png") for k in snapshot)
    other = tmp_path / "other"
    other.mkdir()
    (other / "adding-a-model.md").write_bytes((docs / "adding-a-model.md").read_bytes())
    second = build(fixture, docs=other)
    assert {p.relative_to(other): p.read_bytes() for p in second} == snapshot
    mtimes = {p: p.stat().st_mtime_ns for p in second}
    build(fixture, docs=other)
    assert {p: p.stat().st_mtime_ns for p in second} == mtimes  # unchanged files are not rewritten


def test_missing_optional_tables(small):
    results, docs = small[0], small[1]
    paths = build_docs(results, docs, results / "absent.yaml", reported=results / "absent.yaml", resamples=50)
    text = read(small, "leaderboard.md")
    assert "No robustness results yet" in text and "No efficiency results yet" in text
    assert "No fairness results yet" in text
    assert "predictions not stored" in text
    assert "No published numbers" in text
    assert docs / "results" / "leaderboard.md" in paths
    assert "not in models.yaml" in read(small, "models/alpha.md")


def test_rows_from_several_data_builds_are_flagged(small):
    results = small[0]
    build(small)
    msp = next(b for b in section(read(small, "leaderboard.md"), "Correctness").split("### ") if b.startswith(MSP[0]))
    assert "Data fingerprint `1b5d8638`" in msp and "Warning" not in msp
    table = pd.read_csv(results / "correctness.csv", dtype=str)
    table.loc[table["model"].eq("beta") & table["dataset"].eq(MSP[0]), "data_fingerprint"] = "77aa00000000"
    table.to_csv(results / "correctness.csv", index=False, lineterminator="\n")
    build(small)
    msp = next(b for b in section(read(small, "leaderboard.md"), "Correctness").split("### ") if b.startswith(MSP[0]))
    assert "**Warning:** 2 builds of this split" in msp
    assert "`1b5d8638`: alpha, beta-int8" in msp and "`77aa0000`: beta" in msp


def test_no_results_at_all(tmp_path):
    docs = tmp_path / "docs"
    build_docs(tmp_path / "results", docs, tmp_path / "absent.yaml", resamples=50)
    assert "No results yet" in (docs / "results" / "leaderboard.md").read_text()


def test_reported_separate(fixture):
    text = read(fixture, "leaderboard.md")
    published = section(text, "Published numbers (not measured by this benchmark)")
    assert "0.911" in published and "[Someone et al. 2024](https://example.org/paper)" in published
    for measured in ("Correctness", "Robustness", "Fairness", "Efficiency"):
        assert "0.911" not in section(text, measured)
    # Only demo results: nothing is compared with the published numbers.
    assert "demo-data results are not comparable" in published
    assert "0.911" in section(read(fixture, "models/alpha.md"), "Published numbers")


def test_reported_vs_reproduced_on_real_data(small):
    results = small[0]
    rows = pd.read_csv(results / "correctness.csv", dtype={"model_sha256": str, "dataset_version": str})
    real = rows[(rows["model"] == "alpha") & (rows["model_sha256"] == SHA_NEW) & (rows["dataset"] == MSP[0])].copy()
    real["dataset"], real["dataset_version"] = "msppodcast", "2.6.1"
    pd.concat([rows, real]).to_csv(results / "correctness.csv", index=False, lineterminator="\n")
    build(small)
    text = read(small, "leaderboard.md")
    published = section(text, "Published numbers (not measured by this benchmark)")
    line = next(line for line in published.splitlines() if "| arousal" in line)
    assert "0.911" in line and "0.705 [0.655, 0.745]" in line and "-0.206" in line
    # Real corpora come first and carry no demo label.
    assert text.index("### msppodcast 2.6.1 · test-1\n") < text.index(f"### {MSP[0]}")


def test_stale_pages_removed(small):
    build(small)
    docs = small[1]
    assert (docs / "results" / "models" / "ghost.md").exists()
    (docs / "notes.md").write_text("hand-written")
    # pages of the HTML converter of earlier versions (the site is built by MkDocs now)
    (docs / "html" / "models").mkdir(parents=True)
    (docs / "html" / "models" / "ghost.html").write_text(f"<!DOCTYPE html>\n<!-- {MARKER} -->\n")
    # generated pages where earlier versions wrote them, beside the guides; hand-written ones there stay
    (docs / "models").mkdir()
    (docs / "models" / "ghost.md").write_text(f"<!-- {MARKER} -->\n")
    (docs / "models" / "mine.md").write_text("hand-written")
    (docs / "leaderboard.md").write_text(f"<!-- {MARKER} -->\n")
    write_correctness(small[0], skip_models=("ghost",))
    build(small)
    assert not (docs / "results" / "models" / "ghost.md").exists()
    assert not (docs / "html").exists()
    assert not (docs / "models" / "ghost.md").exists() and not (docs / "leaderboard.md").exists()
    assert (docs / "models" / "mine.md").exists()
    assert (docs / "adding-a-model.md").exists() and (docs / "notes.md").exists()


class _Refs(html.parser.HTMLParser):
    r"""What a built page links to and loads."""

    def __init__(self):
        super().__init__()
        self.links, self.loads = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        for key in ("src", "href"):
            if tag in ("img", "script", "link", "iframe") and attrs.get(key):
                self.loads.append(attrs[key])


def test_site_of_the_generated_pages(built, tmp_path):
    # MkDocs (as `nox -s docs` runs it) builds the pages strictly: a broken link or image fails the build
    from conftest import build_site

    fixture, _ = built
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: fixture\ndocs_dir: {fixture[1]}\nuse_directory_urls: false\nstrict: true\n"
        "theme: {name: material, font: false}\n"
    )
    site = tmp_path / "site"
    build_site(config, site)
    for page in (
        "results/leaderboard.html",
        "results/models/alpha.html",
        "results/models/beta.html",
        "results/models/ghost.html",
        "adding-a-model.html",
    ):
        refs = _Refs()
        refs.feed((site / page).read_text())
        # nothing is loaded from another host; citations may link out
        assert refs.loads and not [r for r in refs.loads if re.match(r"^[a-z]+:|^//", r)], (page, refs.loads)
        for ref in refs.loads + [h for h in refs.links if not re.match(r"^[a-z]+:", h)]:
            target = ref.split("#")[0].split("?")[0]
            assert not target or ((site / page).parent / target).resolve().exists(), (page, ref)
    index = (site / "results" / "leaderboard.html").read_text()
    assert 'href="models/alpha.html"' in index and 'src="figures/' in index
    assert 'href="../adding-a-model.html"' in index
    assert "<strong>0.705</strong> [0.655, 0.745]" in index  # same numbers as the Markdown
    assert index.count("<table") == len(re.findall(r"^\|[-:| ]+\|$", read(fixture, "leaderboard.md"), flags=re.M)) > 3
    alpha = (site / "results" / "models" / "alpha.html").read_text()
    assert 'href="../leaderboard.html"' in alpha and 'src="../figures/' in alpha


def test_registry_pins_current_artifact(small, tmp_path):
    results, docs, registry, reported = small
    # Without a registry, the newest artefact is shown ...
    assert docs_inputs.load_inputs(results, tmp_path / "absent.yaml").current["alpha"] == SHA_NEW
    # ... with models.yaml pinning the older one, the older one.
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(REGISTRY.replace(SHA_NEW, SHA_OLD))
    build_docs(results, docs, pinned, reported=reported, resamples=50)
    text = section(read(small, "leaderboard.md"), "Correctness")
    assert SHA_OLD[:8] in text and SHA_NEW[:8] not in text


def test_adding_a_model_doc_renders():
    page = Path(docs_inputs.__file__).resolve().parent.parent.parent / "docs" / "adding-a-model.md"
    text = page.read_text()
    for step in ("models.yaml", "nox -s benchmark -- --model", "nox -s docs"):
        assert step in text
    # the site's navigation lists it (its rendering: test_docs.py)
    assert "adding-a-model.md" in (page.parent.parent / "mkdocs.yml").read_text()


def test_distillation_targets_skip_what_is_not_a_report(tmp_path):
    assert distillation_targets(tmp_path / "missing.json") == ""
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "other.json").write_text(json.dumps({"models": {"fp32": {}}}))
    assert distillation_targets(tmp_path / "broken.json") == ""
    assert distillation_targets(tmp_path / "other.json") == ""
    (tmp_path / "no-wall.json").write_text(
        json.dumps({"split": {}, "models": {"fp32": {"ccc_vs_teacher": {"arousal": 0.5}}}, "timing": {"cache": "cold"}})
    )
    assert distillation_targets(tmp_path / "no-wall.json") == ""


def test_distillation_targets_show_every_timed_run(tmp_path):
    from benchmark.distill.targets import median_timing

    runs = [
        {
            "wall_seconds": w,
            "cpu_seconds": 2 * w,
            "cache": "cold",
            "cpu_count": 2,
            "cpu": "x",
            "command": "-m benchmark distill",
            "load_average_before": [0.5],
            "load_average_after": [1.5],
        }
        for w in (960.0, 840.0, 900.0)
    ]
    report = {
        "split": {"dataset": "msppodcast", "split": "test-1"},
        "files": 3,
        "models": {"fp32": {"ccc_vs_teacher": {"arousal": 0.9, "dominance": 0.8, "valence": 0.7, "mean": 0.8}}},
        "timing": median_timing(runs),
    }
    (tmp_path / "targets.json").write_text(json.dumps(report))
    text = distillation_targets(tmp_path / "targets.json")
    assert "`python -m benchmark distill`: 15.0 min (median of 3 runs: 16.0, 14.0, 15.0 min; cold teacher cache" in text


def test_invalid_registry_is_an_error_not_skipped(small, tmp_path):
    # the docs read models.yaml through the validated registry: a broken entry is named, not left out
    from benchmark.registry import RegistryError

    results, docs, _, reported = small
    broken = tmp_path / "broken.yaml"
    broken.write_text(REGISTRY + "  - name: gamma\n    kind: audonnx\n    role: student\n")
    with pytest.raises(RegistryError, match="entry 'gamma': field 'source' is missing"):
        build_docs(results, docs, broken, reported=reported, resamples=50)


def _snapshot(docs: Path) -> dict[str, bytes]:
    return {p.relative_to(docs).as_posix(): p.read_bytes() for p in docs.rglob("*") if p.is_file()}


def test_incremental_rebuild_redraws_only_what_changed(tmp_path):
    results, docs, registry, reported = make_fixture(tmp_path)

    def again(**kwargs):
        return regenerate(results, docs, registry, reported=reported, resamples=200, **kwargs)

    first = again()
    assert first.figures > 10 and len(first.drawn) == first.figures  # nothing to reuse yet
    unchanged = again()
    assert unchanged.drawn == [] and unchanged.written == [] and unchanged.files == first.files
    # The manifest lives with the pages: a copy of the folder (a fresh clone, an empty cache) reuses it all.
    assert (docs / "results" / ".manifest.json").is_file()
    clone = tmp_path / "clone" / "docs"
    shutil.copytree(docs, clone)
    cloned = regenerate(results, clone, registry, reported=reported, resamples=200)
    assert cloned.drawn == [] and cloned.written == [] and _snapshot(clone) == _snapshot(docs)
    # One result row of one model changes: only the pages and figures that show it are redone.
    rob = pd.read_csv(results / "robustness.csv", dtype=str, keep_default_na=False)
    row = rob["model"].eq("beta") & rob["condition"].eq("mp3-32k") & rob["dimension"].eq("arousal")
    assert row.sum() == 1
    rob.loc[row, "delta_ccc"] = "-0.25"
    rob.to_csv(results / "robustness.csv", index=False, lineterminator="\n")
    changed = again()
    figure = f"results/figures/models/beta/robustness__{slug(*MSP)}.png"
    assert changed.drawn == [figure]
    assert set(changed.written) == {"results/leaderboard.md", "results/models/beta.md", figure}
    # A figure changed on disk (edited, or checked out from another commit) is drawn again.
    scatter = docs / f"results/figures/models/alpha/scatter__{slug(*MSP)}.png"
    scatter.write_bytes(b"not the figure")
    assert again().drawn == [scatter.relative_to(docs).as_posix()]
    # Everything is what a build from scratch gives.
    full_docs = tmp_path / "full"
    full_docs.mkdir()
    (full_docs / "adding-a-model.md").write_bytes((docs / "adding-a-model.md").read_bytes())
    full = regenerate(results, full_docs, registry, reported=reported, resamples=200, reuse=False)
    assert len(full.drawn) == full.figures
    assert _snapshot(docs) == _snapshot(full_docs)
