"""The leaderboard's opening screen (pass-share ranking, accuracy against cost) and the per-model test report."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from test_leaderboard import MSP, REPORTED, SHA_BETA, SHA_NEW, make_fixture, section, slug

from benchmark import report
from benchmark.docs import inputs as docs_inputs
from benchmark.docs.generate import regenerate
from benchmark.docs.summary import cost_points
from benchmark.paths import PROJECT_ROOT

SHA_TUTOR = "7" * 64
SHA_MUTE = "8" * 64
SHA_ALPHA_ARCH = "9" * 64
COST = f"figures/leaderboard/cost__{slug(*MSP)}.png"  # from the leaderboard page

# A teacher with published numbers for every dimension, timed as its architecture only.
TUTOR_REPORTED = """
  - label: Tutor (paper)
    models: [tutor]
    dataset: msppodcast
    corpus: MSP-Podcast v1.7
    split: test-1
    ccc: {arousal: 0.7, dominance: 0.6, valence: 0.5}
    source: paper
    verified: false
"""


def _arch_row(model: str, sha: str, ms: float, parameters: float) -> dict:
    return {
        "model": model,
        "model_sha256": sha,
        "parameters": parameters,
        "ms_per_5s": ms,
        "threads": 1,
        "repeats": 10,
        "runtime": "torch",
        "cpu": "x86_64",
        "weights": "random",
        "benchmark_version": "0.1.0",
        "code_commit": "abc123def456",
        "date": "2025-03-01",
    }


def add_teachers(results: Path, reported: Path) -> None:
    r"""Three rows timed as an architecture: tutor (published CCC), mute (none), alpha (which also has measured rows)."""
    eff = pd.read_csv(results / "efficiency.csv", dtype=str)
    rows = [
        _arch_row("tutor", SHA_TUTOR, 1175.0, 164e6),
        _arch_row("mute", SHA_MUTE, 2100.0, 316e6),
        _arch_row("alpha", SHA_ALPHA_ARCH, 900.0, 164e6),
    ]  # newer than alpha's results
    pd.concat([eff, pd.DataFrame(rows).astype(str)]).fillna("").to_csv(results / "efficiency.csv", index=False)
    reported.write_text(REPORTED + TUTOR_REPORTED)


def run(fixture, docs=None, **kwargs):
    results, default_docs, registry, reported = fixture
    return regenerate(results, docs or default_docs, registry, reported=reported, resamples=50, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    fixture = make_fixture(tmp_path_factory.mktemp("summary"))
    add_teachers(fixture[0], fixture[2].parent / "reported.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_BENCHMARK_CACHE", str(tmp_path_factory.mktemp("summary-cache")))
        first = run(fixture)
        again = run(fixture)
    return fixture, first, again


def glance_rows(text: str) -> list[list[str]]:
    lines = [line for line in section(text, "At a glance").splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


KEY = ["model", "model_sha256", "dataset", "dataset_version", "split", "dimension"]  # one model × split × dimension


def outcome(spec: dict, value: float, low: float, high: float) -> str:
    r"""A test's outcome by the rules written at the top of ``thresholds.yaml``."""
    if not np.isfinite(value):
        return "not scored"
    lo, hi = (low, high) if np.isfinite(low) and np.isfinite(high) else (value, value)
    if "min" in spec:
        return "passed" if lo >= spec["min"] else "failed" if hi < spec["min"] else "undecided"
    if "max" in spec:
        return "passed" if hi <= spec["max"] else "failed" if lo > spec["max"] else "undecided"
    bound = spec["abs_max"]
    return "passed" if -bound <= lo and hi <= bound else "failed" if lo > bound or hi < -bound else "undecided"


def expected_summary(results: Path, current: dict[str, str]) -> pd.DataFrame:
    r"""Outcome counts per model's current artefact, from the result CSVs and ``thresholds.yaml`` alone.

    Written here from the rules in ``thresholds.yaml``'s header, without
    :mod:`benchmark.report`, which the page generator calls.
    """
    specs = yaml.safe_load((PROJECT_ROOT / "thresholds.yaml").read_text())["tests"]
    correctness = pd.read_csv(results / "correctness.csv")
    skill = {tuple(r[KEY]): r["ccc_ci_low"] > 0 for _, r in correctness.iterrows()}
    counts = {}
    for spec in specs:
        path = results / f"{spec['table']}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        df = df[df["model_sha256"] == df["model"].map(current)]
        for column, allowed in (spec.get("where") or {}).items():
            df = df[df[column].astype(str).isin(allowed if isinstance(allowed, list) else [str(allowed)])]
        if spec.get("aggregate") == "mean":
            df = df.groupby(KEY, as_index=False)[spec["column"]].mean()
        low, high = spec.get("ci", [None, None])
        for _, r in df.iterrows():
            value = float(r[spec["column"]])
            lo, hi = (float(r[low]), float(r[high])) if low else (np.nan, np.nan)
            result = outcome(spec, value, lo, hi)
            if spec.get("requires_skill") and not skill.get(tuple(r[KEY]), False):
                result = "not scored"
            counts.setdefault(r["model"], Counter())[result] += 1
    rows = []
    for model, c in counts.items():
        tests = sum(c.values())
        rows.append(
            {
                "model": model,
                "tests": tests,
                "passed": c["passed"],
                "undecided": c["undecided"],
                "failed": c["failed"],
                "not_scored": c["not scored"],
                "share_passed": c["passed"] / tests,
            }
        )
    return pd.DataFrame(rows)


def test_glance_ranks_by_share_passed(built):
    (results, docs, registry, _), _, _ = built
    text = (docs / "results" / "leaderboard.md").read_text()
    assert text.index("## At a glance") < text.index("## Correctness")  # the page opens with it
    rows = [r for r in glance_rows(text) if r[0] != "—"]
    current = docs_inputs.load_inputs(results, registry).current
    expected = expected_summary(results, current)
    assert len(expected) >= 3 and len(rows) == len(expected)
    shares = {m: s for m, s in zip(expected["model"], expected["share_passed"])}
    models = [re.match(r"\[([^\]]+)\]", r[1])[1] for r in rows]
    assert [float(shares[m]) for m in models] == sorted(shares.values(), reverse=True)
    assert len(set(shares.values())) > 1  # the order is tested, not a tie
    for row, model in zip(rows, models):
        e = expected[expected["model"] == model].iloc[0]
        share, rest = row[2].split(" % ", 1)
        interval, counts = rest.split(" (")
        assert share == f"{100 * e['share_passed']:.0f}"
        low, high = (float(v) for v in interval.strip("[]").split("–"))
        assert low <= 100 * e["share_passed"] <= high
        assert low < high or int(e["passed"]) in (0, int(e["tests"]))  # only all-or-none is certain
        assert counts == f"{e['passed']} of {e['tests']})"
        assert row[3] == f"{e['undecided']}"
    # mean CCC per corpus beside it: alpha's current artefact on demo-msppodcast
    alpha = next(r for r, m in zip(rows, models) if m == "alpha")
    assert "0.620" in alpha  # (0.7046 + 0.6021 + 0.5538) / 3
    assert "Computed from the result tables" in section(text, "At a glance")


def test_glance_reads_summary_csv(tmp_path):
    fixture = make_fixture(tmp_path, full=False)
    results, docs = fixture[0], fixture[1]
    report.write_summary(results)
    run(fixture)
    glance = section((docs / "results" / "leaderboard.md").read_text(), "At a glance")
    assert "Source: `results/summary.csv`" in glance and "Warning" not in glance
    # A summary.csv that no longer matches the tables is shown, with a warning that says how to update it.
    summary = pd.read_csv(results / "summary.csv", dtype=str)
    beta = summary["model"].eq("beta")
    summary.loc[beta, ["passed", "failed", "share_passed"]] = ["0", summary.loc[beta, "tests"].iloc[0], "0"]
    summary.to_csv(results / "summary.csv", index=False)
    run(fixture)
    glance = section((docs / "results" / "leaderboard.md").read_text(), "At a glance")
    assert "does not match the result tables" in glance and "python -m benchmark report" in glance
    beta_row = next(r for r in glance_rows(glance) if r[1].startswith("[beta]"))
    assert beta_row[2].startswith("0 % [0–0] (0 of ")  # no test passed: every resample passes none


def test_cost_plot_drawn_and_reused(built):
    (_, docs, _, _), first, again = built
    assert f"results/{COST}" in first.drawn
    assert again.drawn == [] and again.written == []  # unchanged rebuild: reused
    with Image.open(docs / "results" / COST) as image:
        assert image.size[0] > 600 and image.size[1] > 300
    assert f"]({COST})" in section((docs / "results" / "leaderboard.md").read_text(), "At a glance")


def test_architecture_timed_teacher_labelled(built):
    (results, docs, registry, reported), _, _ = built
    text = (docs / "results" / "leaderboard.md").read_text()
    glance = section(text, "At a glance")
    assert "- **tutor**: mean CCC 0.600 *published, not measured here* (MSP-Podcast v1.7 test-1, " in glance
    assert "unverified" in glance.split("- **tutor**")[1].splitlines()[0]
    assert "- **mute**: timed as its architecture with random weights; no CCC" in glance
    eff = section(text, "Efficiency")
    assert "[tutor](models/tutor.md) *(architecture, random weights)*" in eff
    inputs = docs_inputs.load_inputs(results, registry, reported)
    # alpha's random-weight timing is newer than its results, but names no trained artefact
    assert inputs.current["alpha"] == SHA_NEW and inputs.current["tutor"] == SHA_TUTOR
    points = cost_points(inputs, MSP)[0].set_index("model")
    assert points.loc["tutor", "kind"] == "published" and points.loc["tutor", "ccc"] == pytest.approx(0.6)
    assert points.loc["mute", "kind"] == "cost only" and pd.isna(points.loc["mute", "ccc"])
    assert points.loc["alpha", "kind"] == "measured" and points.loc["alpha", "ms_per_5s"] == pytest.approx(330.2)
    assert points.loc["tutor", "ms_per_5s"] == pytest.approx(1175.0)
    assert points.loc["tutor", "parameters"] == pytest.approx(164e6)


def test_model_report_shows_undecided(built):
    (results, docs, registry, _), _, _ = built
    page = (docs / "results" / "models" / "beta.md").read_text()
    tests = section(page, "Tests")
    outcomes = report.evaluate(report.read_tables(results), report.load_thresholds())
    mine = outcomes[(outcomes["model"] == "beta") & (outcomes["model_sha256"] == SHA_BETA)]
    undecided = mine[mine["outcome"] == "undecided"]
    assert len(undecided)  # beta's male ΔCCC interval [-0.08, 0.02] straddles -0.075
    share = f"{100 * (mine['outcome'] == 'passed').mean():.0f} % of {len(mine)} tests passed"
    assert share in tests and f"{len(undecided)} undecided" in tests
    lines = [line for line in tests.splitlines() if line.startswith("|") and "*undecided*" in line]
    assert len(lines) == len(undecided)
    assert all(line.split("|")[1].strip() == "sex-delta-ccc" and r"\|x\| <= 0.075" in line for line in lines)
    assert any("male" in line and "-0.030 [-0.080, 0.020]" in line for line in lines)
    # every test with its threshold and source, and every instance once (one table row each)
    sex_line = next(line for line in tests.splitlines() if line.startswith("| sex-delta-ccc") and "ser-tests" in line)
    assert r"\|x\| <= 0.075" in sex_line  # a pipe in a cell is escaped for the Markdown table
    instance_rows = [
        line
        for line in tests.split("### ", 1)[1].splitlines()
        if line.startswith("| ") and not line.startswith("| test ")
    ]
    assert len(instance_rows) == len(mine)
    assert "**failed**" in tests  # beta's valence CCC 0.248 fails >= 0.5
