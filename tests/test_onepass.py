"""One pass over the grid, perturbations in memory: same model inputs as the on-disk copies, nothing copied.

The former route wrote each condition's perturbed copy of a split as
float32 WAV files and the model read them back; the workers now perturb
each file in memory. Both must give the model the same bits.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import audiofile
import numpy as np
import pandas as pd
import pytest

from benchmark import registry as registry_module
from benchmark import runner
from benchmark.analyses import perturbations as P
from benchmark.analyses.perturbations.memory import Perturber, SignalCache
from benchmark.models.baselines import RandomGaussian

SR = 16000


def speech_like(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    r"""Harmonics with a syllable-rate envelope and a little noise, ``(samples,)`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * (120 + 30 * rng.random()) * t) / k for k in range(1, 12))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * x / np.max(np.abs(x)) + 0.01 * rng.normal(size=t.size)).astype("float32")


@pytest.fixture()
def database(tmp_path) -> tuple[pd.Index, Path, pd.Index]:
    r"""Files as corpora hold them: 16 kHz mono, loud, 44.1 kHz stereo, too short to crop; and babble talkers."""
    root = tmp_path / "db"
    (root / "wav").mkdir(parents=True)
    files = []
    for i in range(3):
        files.append(root / "wav" / f"s{i}.wav")
        audiofile.write(str(files[-1]), speech_like(0.6 + 0.1 * i, seed=i) * (3.0 if i == 2 else 1.0), SR)
    files.append(root / "wav" / "stereo.wav")
    audiofile.write(str(files[-1]), np.stack([speech_like(0.5, 7, 44100), speech_like(0.5, 8, 44100)]), 44100)
    files.append(root / "wav" / "short.wav")
    audiofile.write(str(files[-1]), speech_like(0.01, seed=3), SR)
    talkers = []
    for i in range(6):
        talkers.append(tmp_path / "talkers" / f"t{i}.wav")
        talkers[-1].parent.mkdir(exist_ok=True)
        audiofile.write(str(talkers[-1]), speech_like(1.0, seed=20 + i), SR)
    index = pd.Index([str(f) for f in files], name="file")
    return index, root, pd.Index([str(t) for t in talkers], name="file")


class Recorder(RandomGaussian):
    r"""The seeded random baseline (its output hashes the input bytes), keeping every input it is given."""

    def __init__(self):
        super().__init__("recorder", "0" * 64, seed=0)
        self.inputs: list[np.ndarray] = []

    def predict(self, signal: np.ndarray) -> np.ndarray:
        self.inputs.append(np.array(signal, copy=True))
        return super().predict(signal)


def one_per_type() -> list[dict]:
    r"""The first condition of every type that ``conditions.yaml`` uses."""
    seen: dict[str, dict] = {}
    for condition in P.load_conditions():
        seen.setdefault(condition["type"], condition)
    return list(seen.values())


def model_inputs(files: pd.Index, source=None) -> tuple[list[np.ndarray], pd.DataFrame, pd.DataFrame]:
    r"""What the runner hands the model for ``files`` (one thread: in order), its predictions and skips."""
    model = Recorder()
    preds, skips = [], []
    for _, pred, skip in runner.iter_chunks(model, files, num_workers=1, source=source):
        preds.append(pred)
        skips.append(skip)
    return model.inputs, pd.concat(preds), pd.concat(skips)


@pytest.mark.parametrize("condition", one_per_type(), ids=lambda c: c["type"])
def test_in_memory_inputs_are_the_on_disk_copies_bits(database, condition):
    files, root, talkers = database
    babble = talkers if condition["type"] == "babble" else None
    on_disk = P.materialize(files, condition, root_key="tiny-1.0.0", seed=0, babble_files=babble, root=root)
    disk_inputs, disk_pred, disk_skips = model_inputs(pd.Index(on_disk.to_numpy(), name="file"))
    perturber = Perturber(condition, root_key="tiny-1.0.0", seed=0, babble_files=babble, root=root)
    kept = files[files.isin(on_disk.index)]
    memory_inputs, memory_pred, memory_skips = model_inputs(kept, perturber)
    assert len(disk_inputs) == len(memory_inputs) >= 3
    for disk, memory in zip(disk_inputs, memory_inputs, strict=True):
        assert disk.dtype == memory.dtype == np.float32 and disk.shape == memory.shape
        assert disk.tobytes() == memory.tobytes()
    back = pd.Series(on_disk.index, index=on_disk.to_numpy())  # copy → original
    assert list(back[disk_pred.index]) == list(memory_pred.index)
    np.testing.assert_array_equal(disk_pred.to_numpy(), memory_pred.to_numpy())
    # files the model does not score (too short) are skipped alike
    assert dict(zip(back[disk_skips.index], disk_skips["reason"])) == dict(memory_skips["reason"])
    # a file the copy left out is a skip of the in-memory route, with the same reason
    for file, reason in on_disk.attrs["skipped"].items():
        _, _, skips = model_inputs(pd.Index([file], name="file"), perturber)
        assert skips.loc[file, "reason"] == reason


def test_cached_signals_are_the_computed_ones(database, tmp_path):
    files, root, _ = database
    condition = next(c for c in one_per_type() if c["type"] == "white-noise")
    cache = SignalCache(tmp_path / "signals", max_mb=64)
    plain = Perturber(condition, root_key="tiny-1.0.0", seed=0, root=root)
    cached = Perturber(condition, root_key="tiny-1.0.0", seed=0, root=root, cache=cache)
    first, stored = model_inputs(files[:3], cached), list((tmp_path / "signals").glob("*.npy"))
    again = model_inputs(files[:3], cached)  # served by the cache
    expected = model_inputs(files[:3], plain)
    assert len(stored) == 3
    for route in (first, again):
        assert [x.tobytes() for x in route[0]] == [x.tobytes() for x in expected[0]]
        np.testing.assert_array_equal(route[1].to_numpy(), expected[1].to_numpy())
    for path in stored:  # what it holds is what it serves: damage it, and the damage comes back
        np.save(path, np.zeros((1, 8), dtype="float32"))
    assert all(not cached(f).any() for f in files[:3]) and all(plain(f).any() for f in files[:3])


def test_signal_cache_is_bounded_and_keeps_this_runs_entries(tmp_path):
    one = np.ones((1, 1000), dtype="float32")  # 4 kB (+ header)
    old = SignalCache(tmp_path, max_mb=12 / 1024)
    assert old.put("a", one) and old.put("b", one)
    past = old.started - 60
    for path in tmp_path.glob("*.npy"):
        os.utime(path, (past, past))  # entries of an earlier run
    cache = SignalCache(tmp_path, max_mb=12 / 1024)  # room for two entries
    assert cache.put("c", one) and cache.put("d", one)  # the earlier run's entries make room
    assert cache.get("a") is None and cache.get("b") is None
    assert not cache.put("e", one)  # full of this run's entries: not kept, none evicted
    assert cache.get("c") is not None and cache.get("d") is not None and cache.get("e") is None
    assert sum(p.stat().st_size for p in tmp_path.glob("*.npy")) <= 12 * 1024


def test_a_full_signal_cache_does_not_search_for_entries_to_evict_at_every_put(tmp_path, monkeypatch):
    one = np.ones((1, 1000), dtype="float32")
    cache = SignalCache(tmp_path, max_mb=12 / 1024)
    assert cache.put("a", one) and cache.put("b", one)
    scans = []
    evict = cache._evict
    monkeypatch.setattr(cache, "_evict", lambda need: (scans.append(need), evict(need)))
    assert not any(cache.put(f"more-{i}", one) for i in range(20))
    # the first put that does not fit looks for earlier runs' entries once; the others know there are none
    assert len(scans) == 1
    assert cache.get("a") is not None and cache.get("b") is not None


# ------------------------------------------------------------------ one pass, end to end on the demo


LOADS: list[str] = []


def load(entry, registry=None):
    r"""Loader of the test kind ``counting``: the random baseline, each load counted."""
    LOADS.append(entry.name)
    return RandomGaussian(entry.name, "c" * 64, sampling_rate=entry.sampling_rate, seed=len(entry.name))


COUNTING_YAML = """
models:
  - name: counted-a
    kind: counting
    role: baseline
    source: {}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: counts its loads
  - name: counted-b
    kind: counting
    role: baseline
    source: {}
    sampling_rate: 16000
    outputs: {arousal: arousal, valence: valence}
    description: counts its loads
"""

OPTIONS = {"bootstrap": 20, "max_files": 6, "conditions": ["gain", "babble-20db"]}


@pytest.fixture()
def counting(monkeypatch):
    r"""The kind ``counting`` registered (this module is its loader) and a registry of two such models."""
    monkeypatch.setitem(registry_module.KINDS, "counting", (__name__, set()))
    LOADS.clear()
    return registry_module.Registry.from_yaml_text(COUNTING_YAML)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_one_pass_loads_each_model_and_split_once_and_copies_no_audio(use_demo, counting, monkeypatch, tmp_path):
    from benchmark.data import datasets as dsets
    from benchmark.plan import RunSpec
    from benchmark.suite import run_models
    from benchmark.timing import Timing

    splits: list[tuple[str, str]] = []
    real_load_split = dsets.load_split

    def counted_load_split(entry, split, **kw):
        splits.append((entry.name, split))
        return real_load_split(entry, split, **kw)

    monkeypatch.setattr(dsets, "load_split", counted_load_split)
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "results"))
    dsets.load_split(dsets.load_registry()["msppodcast"], "test-1")  # the demo corpora published before counting
    splits.clear()
    before = _files(use_demo)
    spec = RunSpec(counting, dsets.load_registry(), options=dict(OPTIONS), signal_cache_mb=0)
    timing = Timing()
    reports = run_models(
        ["counted-a", "counted-b"],
        spec,
        datasets=["msppodcast"],
        tests=["correctness", "robustness"],
        progress=False,
        log=lambda _: None,
        timing=timing,
    )
    assert sorted(LOADS) == ["counted-a", "counted-b"]  # each model loaded once, for the predict phase only
    assert sorted(splits) == [("msppodcast", "test-1"), ("msppodcast", "test-2")]  # each split loaded once
    assert set(timing.seconds) == {"data", "predict", "score"}
    for report in reports.values():
        assert report.ok, report.failures
        rows = report.frame("robustness")
        assert set(rows["condition"]) == {"gain", "babble-20db"}
        assert len(rows) == 2 * len(report.frame("correctness"))  # each condition on each scored dimension
    # besides the corpora audb fetches on first use (the babble talkers, test-2): predictions, no audio
    new = {f for f in _files(use_demo) - before if not f.startswith("audb/")}
    assert new and all(f.startswith("predictions/") and f.endswith((".csv", ".lock")) for f in new), new


def test_settings_conflict_is_refused_before_any_prediction(use_demo, counting, tmp_path, monkeypatch):
    from benchmark import results
    from benchmark.data import datasets as dsets
    from benchmark.plan import RunSpec
    from benchmark.suite import run_models

    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))  # an empty cache: any prediction shows
    results.claim_settings({"seed": 0, "bootstrap": 20})
    spec = RunSpec(counting, dsets.load_registry(), seed=1, options={"bootstrap": 20})
    with pytest.raises(results.SettingsConflictError, match="seed 0"):
        run_models(["counted-a"], spec, tests=["correctness"], progress=False, log=lambda _: None)
    assert LOADS == []
    assert not (tmp_path / "cache" / "predictions").exists()


def test_run_ends_with_the_timing_line(use_demo, tmp_path, capsys):
    from benchmark import cli

    args = ["run", "--model", "constant", "--dataset", "iemocap", "--tests", "correctness", "--bootstrap", "20"]
    assert cli.main([*args, "--results", str(tmp_path / "res"), "--no-docs", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"timing: data \d+\.\d s · predict \d+\.\d s · score \d+\.\d s · report \d+\.\d s", last)
