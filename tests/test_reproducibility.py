"""Cold reruns reproduce the committed tables byte for byte.

The committed rows of the two baselines (``random-gaussian``, ``constant``)
on the full-size ``demo-mosi`` are re-made by a default run
(``python -m benchmark run --model random-gaussian constant --dataset mosi``)
in an empty cache: the demo corpus is built from scratch, nothing is read
from a prediction cache, and the result tables start empty, so
:func:`benchmark.results.write_rows` has no old row to keep within its
tolerance. The fields are compared as written, byte for byte, without the
provenance columns (version, commit, date) and the wall time of a run.

A second cold run in another cache root must give the same bytes again:
that holds even where the committed figures were made on another CPU.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import cli
from benchmark.paths import PROJECT_ROOT
from benchmark.results import PROVENANCE

MODELS = ("random-gaussian", "constant")
DATASET, DEMO = "mosi", "demo-mosi"
TABLES = ("correctness", "distribution", "robustness", "fairness_sex", "fairness_speaker", "speakers", "runs")
# (fairness_pitch: demo-mosi's pitch groups are below fairness_min_files, so a run of it writes none)
DEFAULT_RUN = "correctness robustness fairness"  # the runs table's 'tests' of a default run (it holds other runs too)
UNSTABLE = (*PROVENANCE, "wall_seconds")  # when and how fast a row was made, not what it says


def rows(path: Path) -> list[tuple[str, ...]]:
    r"""The baselines' demo-mosi rows of a result table, fields as written, without :data:`UNSTABLE`."""
    with open(path, newline="") as fp:
        reader = csv.reader(fp)
        header = next(reader)
        keep = [i for i, name in enumerate(header) if name not in UNSTABLE]
        model, dataset = header.index("model"), header.index("dataset")
        tests = header.index("tests") if "tests" in header else None
        out = [tuple(header[i] for i in keep)]
        out += [
            tuple(r[i] for i in keep)
            for r in reader
            if r[model] in MODELS and r[dataset] == DEMO and (tests is None or r[tests] == DEFAULT_RUN)
        ]
    return out


def cold_run(root: Path, *, demo_from: Path | None = None) -> Path:
    r"""A default run of :data:`MODELS` on :data:`DATASET` with cache and results under ``root``.

    ``demo_from``: a cache root whose published demo corpora are copied in
    (the audb repository only; audb's cache, predictions and perturbed audio
    start empty).
    """
    cache, results = root / "cache", root / "results"
    if demo_from is not None:
        shutil.copytree(demo_from / "audb-demo", cache / "audb-demo", ignore=shutil.ignore_patterns("*.lock"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_BENCHMARK_CACHE", str(cache))
        mp.setenv("SER_BENCHMARK_RESULTS", str(results))
        mp.setenv("SER_BENCHMARK_DOCS", str(root / "docs"))
        argv = ["run", "--model", *MODELS, "--dataset", DATASET, "--no-docs", "--no-progress"]
        assert cli.main(argv) == cli.EXIT_OK
    return root


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Path:
    return cold_run(tmp_path_factory.mktemp("cold-1"))


def test_cold_run_reproduces_the_committed_rows(first):
    for table in TABLES:
        committed = rows(PROJECT_ROOT / "results" / f"{table}.csv")
        assert len(committed) > 1, f"results/{table}.csv holds no {MODELS} rows on {DEMO}"
        assert rows(first / "results" / f"{table}.csv") == committed, table
    # per-file predictions: whole files, byte for byte
    made = sorted((first / "results" / "predictions").rglob("*.csv"))
    assert [p.parent.name.split("__")[0] for p in made] == sorted(MODELS)
    for path in made:
        committed = PROJECT_ROOT / "results" / path.relative_to(first / "results")
        assert path.read_bytes() == committed.read_bytes(), path.name
    assert not (first / "results" / "skips.csv").exists()
    # cold: every prediction was computed, none read from a cache
    with open(first / "results" / "runs.csv", newline="") as fp:
        runs = list(csv.DictReader(fp))
    assert len(runs) == 2 and all(r["computed"] == r["predictions"] != "0" for r in runs)
    # only the corpus of the run and the babble pool were built
    published = sorted(p.name for p in (first / "cache" / "audb-demo" / "demo").iterdir())
    assert published == ["demo-mosi", "demo-pool"]


def test_two_cold_runs_in_separate_cache_roots_agree(first, tmp_path):
    second = cold_run(tmp_path / "cold-2", demo_from=first / "cache")
    for table in TABLES:
        assert rows(second / "results" / f"{table}.csv") == rows(first / "results" / f"{table}.csv"), table
    made = sorted(p.relative_to(second / "results") for p in (second / "results" / "predictions").rglob("*.csv"))
    assert made and made == sorted(
        p.relative_to(first / "results") for p in (first / "results" / "predictions").rglob("*.csv")
    )
    for rel in made:
        assert (second / "results" / rel).read_bytes() == (first / "results" / rel).read_bytes(), rel
    assert not os.path.samefile(second / "cache", first / "cache")


# ---------------------------------------------------------------- the same result in any order

PAIR = """
import torch
from conftest import TORCH_STATE


def state():
    return (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def test_change():
    assert state() == TORCH_STATE
    torch.set_num_threads(TORCH_STATE[0] + 2)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as distill() does
    assert state() == (TORCH_STATE[0] + 2, True, True)  # the change took effect, so the next test can see it


def test_check():
    assert state() == TORCH_STATE and state()[1] is False
"""


def run_pair(tmp_path: Path, *order: str) -> subprocess.CompletedProcess:
    r"""Run the tests of :data:`PAIR` in ``order`` in a fresh pytest process under the suite's ``conftest.py``."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_pair.py").write_text(PAIR)
    ids = [f"test_pair.py::{name}" for name in order]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")))))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *ids]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def test_torch_settings_a_test_changes_are_undone_before_the_next(tmp_path):
    # both tests in one process, the changing one first: the conftest fixture must restore the settings between them
    done = run_pair(tmp_path, "test_change", "test_check")
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
