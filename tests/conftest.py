"""Shared fixtures: a small audformat database published to a local audb repository.

The databases are real audformat databases published with
:func:`audb.publish` to a file-system repository and loaded back with
:func:`audb.load` — the same code path as the licensed corpora.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import audb
import audformat
import audiofile
import numpy as np
import pandas as pd
import pytest

SR = 16000

# Runs predict in the test process unless a test asks for worker processes (tests/test_processes.py compares
# the two routes byte for byte): most tests' grids are a few files, where starting processes costs more than
# it saves, and some tests count or interrupt calls in this process.
os.environ["SER_BENCHMARK_PROCESSES"] = "1"


def _torch_state() -> tuple:
    import torch

    return (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def _set_torch_state(state: tuple) -> None:
    import torch

    threads, deterministic, warn_only = state
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


TORCH_STATE = _torch_state()
"""torch's process-wide settings before any test module is imported."""


@pytest.fixture(autouse=True)
def _torch_global_state():
    r"""Every test starts and ends with :data:`TORCH_STATE`.

    ``distill()`` sets the thread count and switches deterministic
    algorithms on for the process; without this a test's result could
    depend on which tests ran before it (a session fixture included).
    """
    _set_torch_state(TORCH_STATE)
    yield
    _set_torch_state(TORCH_STATE)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    r"""Keep every test away from the user's cache, results and docs."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(root))
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(root / "results"))
    monkeypatch.setenv("SER_BENCHMARK_DOCS", str(root / "docs"))
    saved = list(audb.config.REPOSITORIES)
    yield
    audb.config.REPOSITORIES = saved


def tone(seconds: float, f0: float, amp: float = 0.3, sr: int = SR, seed: int = 0) -> np.ndarray:
    r"""A harmonic tone with a little noise (speech-like enough for loaders)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (amp * x / np.max(np.abs(x)) + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def build_database(
    root: Path, *, n_speakers: int = 4, per_speaker: int = 6, seed: int = 0, name: str = "testcorpus"
) -> audformat.Database:
    r"""An MSP-Podcast-like database: files/speaker tables, two gold-standard tables on 1..7.

    Arousal is tied to loudness and f0, so a model reading energy scores positive CCC.
    """
    rng = np.random.default_rng(seed)
    db = audformat.Database(name, source="tests", usage=audformat.define.Usage.UNRESTRICTED)
    speakers = [f"spk{i:02d}" for i in range(n_speakers)]
    genders = ["female" if i % 2 == 0 else "male" for i in range(n_speakers)]
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    db["speaker"] = audformat.MiscTable(pd.Index(speakers, name="speaker", dtype="string"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(genders)
    db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")
    db.schemes["emotion"] = audformat.Scheme("float", minimum=1, maximum=7)
    files, spk, labels = [], [], []
    for i, s in enumerate(speakers):
        for j in range(per_speaker):
            a = rng.uniform(1, 7)
            f0 = (200 if genders[i] == "female" else 120) * (1 + 0.08 * (a - 4))
            path = f"audio/{s}_{j:02d}.wav"
            os.makedirs(root / "audio", exist_ok=True)
            audiofile.write(
                str(root / path), tone(rng.uniform(1.0, 2.0), f0, amp=0.05 + 0.05 * a, seed=i * 100 + j), SR
            )
            files.append(path)
            spk.append(s)
            labels.append((a, float(np.clip(a + rng.normal(0, 1), 1, 7)), rng.uniform(1, 7)))
    index = audformat.filewise_index(files)
    db["files"] = audformat.Table(index)
    db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
    db["files"]["speaker"].set(spk)
    labels = np.array(labels)
    half = len(files) // 2
    for split, sl in (("test-1", slice(0, half)), ("test-2", slice(half, None))):
        table = f"emotion.dimensions.{split}.gold_standard"
        db[table] = audformat.Table(index[sl])
        for k, dim in enumerate(("arousal", "dominance", "valence")):
            db[table][dim] = audformat.Column(scheme_id="emotion")
            db[table][dim].set(labels[sl, k])
    db.save(root)
    return db


def publish(build, version: str, repo, *, cache_root: str, previous_version: str | None = None) -> None:
    r""":func:`audb.publish` to ``repo`` with only ``repo`` configured.

    audb asks every configured repository which versions exist; left at its
    default it would try the public one over the network (and wait ~20 s).
    """
    saved = list(audb.config.REPOSITORIES)
    audb.config.REPOSITORIES = [repo]
    try:
        audb.publish(build, version, repo, previous_version=previous_version, verbose=False, cache_root=cache_root)
    finally:
        audb.config.REPOSITORIES = saved


DEMO_SCALE = 0.1
"""Demo corpora in tests: a tenth of the speakers/utterances (an exact subset of the full build)."""


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    r"""A cache root with all demo databases published at :data:`DEMO_SCALE`, built once per session."""
    from benchmark.data import demo

    root = tmp_path_factory.mktemp("demo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_BENCHMARK_CACHE", str(root))
        demo.repository(scale=DEMO_SCALE)
    return root


@pytest.fixture()
def use_demo(demo_cache, monkeypatch):
    r"""Point the benchmark's cache at the session's small demo corpora."""
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(demo_cache))
    return demo_cache


def copy_demo(demo_cache: Path, root: Path) -> Path:
    r"""A copy of the session's demo corpora at ``root`` (a cache root), which a test may damage or fill."""
    for name in ("audb-demo", "audb"):  # the published corpora and audb's cache of them
        shutil.copytree(demo_cache / name, root / name, ignore=shutil.ignore_patterns("*.lock"))
    return root


@pytest.fixture()
def own_demo(demo_cache, tmp_path, monkeypatch):
    r"""A private copy of the session's demo corpora, for a test that damages them."""
    root = copy_demo(demo_cache, tmp_path / "demo-cache")
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def audb_repository(tmp_path_factory):
    r"""A file-system audb repository holding ``testcorpus`` 1.0.0."""
    host = tmp_path_factory.mktemp("audb-host")
    repo = audb.Repository("test-repo", str(host), "file-system")
    (host / repo.name).mkdir()
    build = tmp_path_factory.mktemp("build")
    build_database(build)
    publish(build, "1.0.0", repo, cache_root=str(tmp_path_factory.mktemp("publish-cache")))
    return repo


@pytest.fixture()
def dataset_registry(tmp_path, audb_repository):
    r"""A ``datasets.yaml`` pointing at ``testcorpus`` (use ``data='real'``)."""
    from benchmark.data.datasets import load_registry

    path = tmp_path / "datasets.yaml"
    path.write_text(
        """
datasets:
  - name: testcorpus
    audb: testcorpus
    version: 1.0.0
    splits:
      test-1: emotion.dimensions.test-1.gold_standard
      test-2: emotion.dimensions.test-2.gold_standard
    labels: {arousal: arousal, dominance: dominance, valence: valence}
    label_range: [1, 7]
    speaker: {table: files, column: speaker}
    sex: {table: speaker, column: gender}
    demo: {name: demo-none, version: 1.0.0}
"""
    )
    return load_registry(path)


BASELINES_YAML = """
models:
  - name: constant
    kind: constant
    role: baseline
    source: {}
    params: {value: 0.5}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: always 0.5
  - name: random-gaussian
    kind: random
    role: baseline
    source: {}
    params: {seed: 0}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: seeded Gaussian draws
"""


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess:
    r"""``mkdocs build --strict`` (broken links and missing images are errors) into ``site``."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.fail("MkDocs is not installed: pip install -c constraints.txt -e .[docs] (nox -s tests does)")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def same_tree(a: Path, b: Path) -> list[str]:
    r"""Files that differ or exist on one side only (recursive)."""
    import filecmp

    cmp = filecmp.dircmp(a, b)
    out = [str(Path(a, f)) for f in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files]
    for sub in cmp.common_dirs:
        out += same_tree(Path(a, sub), Path(b, sub))
    return out


def interrupt_and_resume(spec, tests: list[str], **executor) -> tuple[list[int], int, int]:
    r"""Ctrl-C in the driver after the first stored answer, then the same run again.

    Returns:
        the files of each answer before Ctrl-C, the files the rerun
        computed, the files of the whole grid

    """
    from benchmark.executors import predict_cells
    from benchmark.plan import plan

    done = []

    def interrupt(cell, answer):  # Ctrl-C in the driver raises KeyboardInterrupt in its main thread
        done.append(len(answer["values"]))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_cells(["random-gaussian"], spec, tests=tests, progress=False, on_result=interrupt, **executor)
    outcome = predict_cells(["random-gaussian"], spec, tests=tests, progress=False, **executor)
    assert outcome["random-gaussian"].failed == {}
    cells, _ = plan(["random-gaussian"], spec, tests=tests, log=lambda _: None)
    return done, sum(outcome["random-gaussian"].computed.values()), sum(c.n_files for c in cells)
