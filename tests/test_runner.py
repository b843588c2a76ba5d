"""Runner: audinterface processing, prediction cache, bad audio, versioned results."""

import os

import audb
import audiofile
import numpy as np
import pandas as pd
import pytest
from conftest import BASELINES_YAML, build_database, publish

from benchmark import results, runner
from benchmark.data import datasets as dsets
from benchmark.models.base import Predictor
from benchmark.registry import Registry
from benchmark.suite import run_suite


class Energy(Predictor):
    r"""Arousal from RMS energy; counts calls to prove caching."""

    def __init__(self, name="energy", artifact_hash="e" * 64):
        super().__init__(name, artifact_hash)
        self.calls = 0
        self.dimensions = ("arousal", "dominance", "valence")

    def predict(self, signal):
        self.calls += 1
        rms = float(np.sqrt(np.mean(signal**2)))
        return np.array([rms * 3, 0.5 + rms, 0.5])


@pytest.fixture()
def evalset(dataset_registry, audb_repository):
    return dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )


def test_predict_caches_and_scores(evalset):
    model = Energy()
    pred, skips = runner.predict(model, evalset, progress=False)
    assert model.calls == len(evalset.files) and len(skips) == 0
    assert list(pred.index) == list(evalset.files)
    from benchmark.metrics import ccc

    assert ccc(evalset.truth["arousal"], pred["arousal"]) > 0.3  # energy carries arousal in the fixture
    again, _ = runner.predict(model, evalset, progress=False)
    assert model.calls == len(evalset.files)  # second run served from the cache
    pd.testing.assert_frame_equal(pred, again, check_exact=False, rtol=1e-7)
    other = Energy(artifact_hash="f" * 64)  # a changed artefact is not served stale predictions
    runner.predict(other, evalset, progress=False)
    assert other.calls == len(evalset.files)
    import dataclasses

    rebuilt = dataclasses.replace(evalset, fingerprint="e" * 64)  # same name and version, other content
    runner.predict(model, rebuilt, progress=False)
    assert model.calls == 2 * len(evalset.files)  # not served the other build's predictions


def test_multichannel_is_mixed_down_over_all_channels(tmp_path, evalset):
    left = np.zeros(16000, dtype="float32")
    right = np.full(16000, 0.5, dtype="float32")
    path = str(tmp_path / "stereo.wav")
    audiofile.write(path, np.stack([left, right]), 16000)
    pred, _ = runner.predict(Energy(artifact_hash="s" * 64), evalset, pd.Index([path]), progress=False)
    assert pred.loc[path, "arousal"] == pytest.approx(0.75, abs=1e-3)  # rms of the mean 0.25, not of channel 0


@pytest.fixture(scope="module")
def bad_repository(tmp_path_factory):
    r"""testcorpus 2.0.0 where one file is corrupt, one silent, one too short."""
    host = tmp_path_factory.mktemp("bad-host")
    repo = audb.Repository("bad-repo", str(host), "file-system")
    (host / repo.name).mkdir()
    build = tmp_path_factory.mktemp("bad-build")
    db = build_database(build, name="testcorpus")
    files = sorted(db["emotion.dimensions.test-1.gold_standard"].files)
    with open(build / files[0], "wb") as fp:
        fp.write(b"RIFF\x00\x00garbage-not-a-wav")
    audiofile.write(str(build / files[1]), np.zeros(16000, dtype="float32"), 16000)
    audiofile.write(str(build / files[2]), np.full(800, 0.1, dtype="float32"), 16000)
    publish(build, "1.0.0", repo, cache_root=str(tmp_path_factory.mktemp("pc")))
    return repo, files[:3]


def test_bad_audio_is_skipped_and_reported(bad_repository, dataset_registry):
    repo, bad = bad_repository
    ev = dsets.load_split("testcorpus", "test-1", data="real", repositories=[repo], registry=dataset_registry)
    pred, skips = runner.predict(Energy(artifact_hash="b" * 64), ev, progress=False)
    reasons = {os.path.relpath(f, ev.root): r for f, r in skips["reason"].items()}
    assert set(reasons) == set(bad)
    assert reasons[bad[0]].startswith("unreadable audio")
    assert reasons[bad[1]].startswith("silent audio")
    assert reasons[bad[2]].startswith("too short")
    assert len(pred) == len(ev.files) - 3 and pred.notna().all().all()


class NaNModel(Energy):
    def predict(self, signal):
        return np.array([np.nan, 0.5, 0.5])


def test_nan_prediction_is_a_recorded_skip(evalset):
    pred, skips = runner.predict(NaNModel(artifact_hash="n" * 64), evalset, progress=False)
    assert len(pred) == 0 and len(skips) == len(evalset.files)
    assert skips["reason"].str.startswith("model returned NaN").all()


def run_twice(dataset_registry, audb_repository, registry):
    kw = dict(
        tests=["correctness"],
        data="real",
        repositories=[audb_repository],
        registry=registry,
        dataset_registry=dataset_registry,
        options={"bootstrap": 200},
        progress=False,
        log=lambda m: None,
    )
    return run_suite("random-gaussian", **kw), kw


def test_suite_rerun_is_byte_identical_and_changed_model_adds_rows(dataset_registry, audb_repository):
    registry = Registry.from_yaml_text(BASELINES_YAML)
    report, kw = run_twice(dataset_registry, audb_repository, registry)
    assert report.ok
    path = results.table_path("correctness")
    first = path.read_bytes()
    table = results.read_table("correctness")
    assert len(table) == 6  # 2 splits x 3 dimensions
    assert {"model_sha256", "dataset_version", "table", "benchmark_version", "code_commit", "date"} <= set(
        table.columns
    )
    # each row's CCC, Pearson and MAE recomputed from the per-file predictions the run wrote beside it
    files = sorted((results.results_root() / "predictions").rglob("*.csv"))
    assert len(files) == 2  # one per split
    for _, row in table.iterrows():
        (written,) = [f for f in files if f"__{row['split']}__" in f.name]
        per_file = pd.read_csv(written)
        t, p = per_file[f"truth_{row['dimension']}"].to_numpy(), per_file[f"pred_{row['dimension']}"].to_numpy()
        assert len(t) == int(row["n"]) == 12
        ccc = 2 * np.mean((t - t.mean()) * (p - p.mean())) / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
        assert float(row["ccc"]) == pytest.approx(ccc, abs=1e-5)
        assert float(row["pearson"]) == pytest.approx(np.corrcoef(t, p)[0, 1], abs=1e-5)
        assert float(row["mae"]) == pytest.approx(np.abs(t - p).mean(), abs=1e-5)
    run_suite("random-gaussian", **kw)
    assert path.read_bytes() == first  # same inputs -> byte-identical table
    changed = Registry.from_yaml_text(BASELINES_YAML.replace("params: {seed: 0}", "params: {seed: 1}"))
    run_suite("random-gaussian", **{**kw, "registry": changed})
    table = results.read_table("correctness")
    assert len(table) == 12 and table["model_sha256"].nunique() == 2  # old rows kept, new ones added


def test_constant_model_scores_zero_ccc(dataset_registry, audb_repository):
    registry = Registry.from_yaml_text(BASELINES_YAML)
    report = run_suite(
        "constant",
        tests=["correctness"],
        data="real",
        repositories=[audb_repository],
        registry=registry,
        dataset_registry=dataset_registry,
        splits=["test-1"],
        options={"bootstrap": 100},
        progress=False,
        log=lambda m: None,
    )
    rows = report.frame("correctness")
    assert (rows["ccc"] == 0.0).all()
    pred = results.results_root() / "predictions"
    assert any(pred.rglob("*.csv"))


def test_full_suite_writes_every_family(dataset_registry, audb_repository):
    registry = Registry.from_yaml_text(BASELINES_YAML)
    report = run_suite(
        "random-gaussian",
        data="real",
        repositories=[audb_repository],
        registry=registry,
        dataset_registry=dataset_registry,
        splits=["test-1"],
        options={
            "bootstrap": 100,
            "conditions": ["gain", "white-noise-20db", "crop-end"],
            "speaker_min_samples": 3,
            "fairness_min_files": 2,
        },
        progress=False,
        log=lambda m: None,
    )
    assert report.ok, report.failures
    robustness = results.read_table("robustness")
    assert set(robustness["condition"]) == {"gain", "white-noise-20db", "crop-end"}
    assert len(results.read_table("fairness_sex")) and len(results.read_table("fairness_speaker"))
    runs = results.read_table("runs")
    assert runs["tests"].iloc[0] == "correctness robustness[gain,white-noise-20db,crop-end] fairness"
    assert int(runs["computed"].iloc[0]) == int(runs["predictions"].iloc[0]) > len(robustness) // 3  # cold cache


def test_failing_family_keeps_finished_results(dataset_registry, audb_repository):
    registry = Registry.from_yaml_text(BASELINES_YAML)
    messages = []
    report = run_suite(
        "constant",
        data="real",
        repositories=[audb_repository],
        registry=registry,
        dataset_registry=dataset_registry,
        splits=["test-1"],
        tests=["correctness", "robustness"],
        options={"bootstrap": 50, "conditions": ["no-such-condition"]},
        progress=False,
        log=messages.append,
    )
    assert not report.ok and report.failures[0][2] == "robustness"
    assert len(results.read_table("correctness")) == 3  # written before the failure, not lost
    assert any("FAILED robustness" in m for m in messages)


def test_parallel_writers_lose_no_rows(tmp_path):
    r"""Two benchmark runs writing one table at once: every row of both survives."""
    import concurrent.futures

    def write(i):
        rows = pd.DataFrame(
            [
                {
                    "model": f"m{i}",
                    "model_sha256": f"{i:064x}",
                    "dataset": "d",
                    "dataset_version": "1.0.0",
                    "data_fingerprint": "0" * 12,
                    "split": "test",
                    "dimension": dim,
                    "ccc": 0.1 * i,
                }
                for dim in ("arousal", "valence")
            ]
        )
        results.write_rows("correctness", rows, root=tmp_path)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(24)))
    table = results.read_table("correctness", tmp_path)
    assert len(table) == 48 and set(table["model"]) == {f"m{i}" for i in range(24)}


def test_rerun_on_another_cpu_keeps_rows_and_predictions(tmp_path, monkeypatch):
    r"""Figures that move only in the last printed digit (another CPU's float32 kernels) are the same result."""
    import types

    rows = pd.DataFrame(
        [
            {
                "model": "m",
                "model_sha256": "0" * 64,
                "dataset": "d",
                "dataset_version": "1.0.0",
                "data_fingerprint": "0" * 12,
                "split": "test",
                "dimension": dim,
                "ccc": value,
                "ccc_ci_low": value - 0.1,
            }
            for dim, value in (("arousal", 0.431278), ("valence", 0.0134))
        ]
    )
    path = results.write_rows("correctness", rows, root=tmp_path)
    first = path.read_bytes()
    monkeypatch.setattr(results, "code_commit", lambda: "another-commit")
    results.write_rows("correctness", rows.assign(ccc=rows["ccc"] + 1e-6), root=tmp_path)
    assert path.read_bytes() == first
    results.write_rows("correctness", rows.assign(ccc=rows["ccc"] + [0.0, 1e-3]), root=tmp_path)
    table = results.read_table("correctness", tmp_path).set_index("dimension")
    assert (
        table.loc["valence", "ccc"] == pytest.approx(0.0144) and table.loc["valence", "code_commit"] == "another-commit"
    )
    assert table.loc["arousal", "code_commit"] != "another-commit"  # unchanged row, old provenance

    index = [str(tmp_path / "db" / f"{i}.wav") for i in range(3)]
    evalset = types.SimpleNamespace(
        truth=pd.DataFrame({"arousal": [0.1, 0.5, 0.9]}, index=index),
        speaker=None,
        sex=None,
        root=str(tmp_path / "db"),
        audb_name="d",
        version="1.0.0",
        split="test",
        fingerprint="f" * 64,
    )
    prediction = pd.DataFrame({"arousal": [0.2, 0.4, 0.6]}, index=index)
    written = results.write_predictions("m", "0" * 64, evalset, prediction, root=tmp_path)
    before = written.read_bytes()
    results.write_predictions("m", "0" * 64, evalset, prediction + 1e-6, root=tmp_path)
    assert written.read_bytes() == before
    results.write_predictions("m", "0" * 64, evalset, prediction + 1e-3, root=tmp_path)
    assert pd.read_csv(written)["pred_arousal"].tolist() == pytest.approx([0.201, 0.401, 0.601])
