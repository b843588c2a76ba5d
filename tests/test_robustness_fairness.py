"""Robustness and fairness analyses against hand-computed cases and chance."""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import audiofile
import audmetric
import numpy as np
import pandas as pd
import pytest

from benchmark.analyses import Context, balance, fairness, robustness
from benchmark.data.datasets import EvalSet
from benchmark.results import KEYS

SR = 16000


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))


def hand_ccc(t, p) -> float:
    t, p = np.asarray(t, float), np.asarray(p, float)
    return 2 * np.mean((t - t.mean()) * (p - p.mean())) / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)


# ------------------------------------------------------------------ a tiny split and models


def make_evalset(root, n: int = 24, *, seed: int = 0, sex: bool = True, speaker: bool = True) -> EvalSet:
    r"""``n`` noise files of 0.1 s with increasing loudness; arousal follows loudness."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        path = root / "wav" / f"f{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        audiofile.write(str(path), (0.02 + 0.3 * i / n) * rng.uniform(-1, 1, SR // 10).astype("float32"), SR)
        files.append(str(path))
    index = pd.Index(files, name="file")
    truth = pd.DataFrame(
        {
            "arousal": np.linspace(0.1, 0.9, n) + rng.normal(0, 0.05, n),
            "valence": rng.uniform(0, 1, n),
        },
        index=index,
    )
    speakers = pd.Series([f"spk{i % 3}" for i in range(n)], index=index, dtype="string")
    sexes = speakers.map({"spk0": "female", "spk1": "male", "spk2": "female"}).astype("string")
    return EvalSet(
        dataset="tiny",
        audb_name="tiny-db",
        version="1.0.0",
        split="test",
        table="t",
        truth=truth,
        speaker=speakers if speaker else None,
        sex=sexes if sex else None,
        root=str(root),
    )


def rms_model(files, condition=None, signal=None) -> pd.DataFrame:
    r"""Arousal = RMS energy (valence = 1 − RMS); dominance not predicted.

    ``signal(file)``: the audio the model reads (default: the file's).
    """
    signal = signal or (lambda f: audiofile.read(f)[0])
    values = [float(np.sqrt(np.mean(signal(f).astype(float) ** 2))) for f in files]
    return pd.DataFrame(
        {"arousal": values, "dominance": np.nan, "valence": [1 - v for v in values]}, index=pd.Index(files)
    )


def perturbed_rms(evalset, babble_files=None):
    r""":func:`rms_model` of the files perturbed in memory, as an executor's worker reads them."""
    from benchmark.analyses.perturbations.memory import Perturber

    def predict(files, condition=None):
        if condition is None:
            return rms_model(files)
        perturber = Perturber(
            condition,
            root_key=f"{evalset.audb_name}-{evalset.version}",
            seed=0,
            babble_files=babble_files if condition["type"] == "babble" else None,
            root=evalset.root,
        )
        return rms_model(files, condition, perturber)

    return predict


def constant_model(files, condition=None) -> pd.DataFrame:
    return pd.DataFrame({"arousal": 0.5, "dominance": 0.5, "valence": 0.5}, index=pd.Index(files))


def random_model(files, condition=None) -> pd.DataFrame:
    r"""Uniform 0..1, seeded by the file's name within its database and the condition.

    Not the absolute path: that holds pytest's per-session temporary folder,
    so every run would draw other numbers. Clean and perturbed draws are
    independent (the condition is part of the seed).
    """
    label = "clean" if condition is None else condition["name"]

    def draw(file: str) -> np.ndarray:
        key = "/".join(Path(file).parts[-2:])  # 'wav/f000.wav', for the original and its perturbed copy
        return np.random.default_rng(int(hashlib.sha256(f"{key}|{label}".encode()).hexdigest()[:16], 16)).uniform(
            size=3
        )

    return pd.DataFrame([draw(f) for f in files], columns=["arousal", "dominance", "valence"], index=pd.Index(files))


def make_context(evalset, predict, **options) -> Context:
    return Context(
        model=types.SimpleNamespace(artifact_hash="a" * 64),
        entry=types.SimpleNamespace(name="test-model"),
        evalset=evalset,
        predict=predict,
        clean=predict(evalset.files),
        seed=0,
        options=options,
    )


def gain(db: float) -> dict:
    return {"name": f"gain{db:g}", "group": "small-changes", "type": "gain", "parameters": {"gain_db": db}}


# ------------------------------------------------------------------ robustness metrics


def test_unchanged_share_hand_cases():
    clean = pd.Series([0.5, 0.5, 0.5, 0.5, 0.5], index=list("abcde"))
    perturbed = pd.Series([0.5, 0.549, 0.551, np.nan, 0.0], index=list("abcde"))
    assert robustness.unchanged_share(clean, perturbed) == pytest.approx(2 / 4)  # NaN file left out
    assert robustness.unchanged_share(clean, perturbed, threshold=0.6) == 1.0
    # compared by index, not position
    assert robustness.unchanged_share(clean, perturbed.iloc[::-1]) == pytest.approx(2 / 4)
    assert np.isnan(robustness.unchanged_share(clean, pd.Series(dtype=float)))


def test_mean_shift_and_delta_ccc_hand_cases():
    clean = pd.Series([0.2, 0.4, 0.6], index=list("abc"))
    perturbed = pd.Series([0.9, 0.5, 0.3, 0.7], index=list("dabc"))  # 'd' has no clean prediction
    assert robustness.mean_shift(clean, perturbed) == pytest.approx(0.5 - 0.4)  # a, b, c only
    truth = pd.Series([1.0, 2.0, 3.0], index=list("abc"))
    # CCC([1,2,3], [1,2,4]) = 2·1 / (2/3 + 14/9 + 1/9) = 6/7 (population variances)
    assert robustness.delta_ccc(truth, truth, pd.Series([1.0, 2.0, 4.0], index=list("abc"))) == pytest.approx(6 / 7 - 1)
    assert robustness.delta_ccc(truth, truth, pd.Series([2.0, 2.0, 2.0], index=list("abc"))) == pytest.approx(-1)


def test_select_conditions():
    conditions = [gain(1), gain(2), {**gain(3), "group": "other"}]
    assert robustness.select_conditions(conditions, None) == conditions
    assert [c["name"] for c in robustness.select_conditions(conditions, "gain2, other")] == ["gain2", "gain3"]
    assert [c["name"] for c in robustness.select_conditions(conditions, ["small-changes"])] == ["gain1", "gain2"]
    with pytest.raises(ValueError, match="Unknown condition"):
        robustness.select_conditions(conditions, ["nope"])


# ------------------------------------------------------------------ robustness run


def test_robustness_gain_on_energy_model(tmp_path):
    evalset = make_evalset(tmp_path / "db")
    calls = []

    def predict(files, condition=None):
        calls.append((list(files), condition))
        return perturbed_rms(evalset)(files, condition)

    context = make_context(evalset, predict, conditions=[gain(2)])
    calls.clear()
    table = robustness.run(context)["robustness"]
    ((files, cond),) = calls
    assert cond["name"] == "gain2" and files == list(evalset.files)  # the originals: perturbed where they are read
    assert set(KEYS["robustness"]) <= set(table.columns)
    assert list(table["dimension"]) == ["arousal", "valence"]  # dominance not predicted, not scored
    clean = rms_model(evalset.files)
    factor = 10 ** (2 / 20)
    row = table.set_index("dimension").loc["arousal"]
    assert row["n"] == len(evalset.files)
    # RMS scales with the gain: the shift is exactly mean(rms)·(g − 1)
    assert row["mean_shift"] == pytest.approx(clean["arousal"].mean() * (factor - 1), rel=1e-5)
    expected_unchanged = np.mean(np.abs(clean["arousal"] * (factor - 1)) < 0.05)
    assert row["unchanged_share"] == pytest.approx(expected_unchanged)
    truth = evalset.truth["arousal"]
    assert row["ccc_clean"] == pytest.approx(hand_ccc(truth, clean["arousal"]))
    assert row["ccc"] == pytest.approx(hand_ccc(truth, clean["arousal"] * factor), rel=1e-5)
    assert row["delta_ccc"] == pytest.approx(row["ccc"] - row["ccc_clean"])
    assert row["condition_group"] == "small-changes" and row["sweep"] == "" and np.isnan(row["snr_db"])
    assert row["model"] == "test-model" and row["dataset"] == "tiny-db"


def test_robustness_constant_model(tmp_path):
    evalset = make_evalset(tmp_path / "db")
    table = robustness.run(make_context(evalset, constant_model, conditions=[gain(-1)]))["robustness"]
    assert len(table) == 2  # the split has no dominance labels
    assert (table["unchanged_share"] == 1.0).all()
    assert (table["mean_shift"] == 0).all()
    assert (table["ccc"] == 0).all() and (table["delta_ccc"] == 0).all()


# Chance bounds of the random model on make_evalset(n=80), at 5 SD or more. A simulation of this
# fixture (the fixed truth of make_evalset(seed=0, n=80); clean and perturbed predictions i.i.d.
# uniform 0..1; 200,000 draws, numpy default_rng(12345)) gave, for arousal and valence alike:
#   ccc (clean or perturbed)  mean  0.000  sd 0.111  → |ccc| < 0.56        (5.0 SD)
#   delta_ccc                 mean  0.000  sd 0.158  → |delta_ccc| < 0.79  (5.0 SD)
#   unchanged_share           mean  0.0975 sd 0.0332 → < 0.27              (5.2 SD)
#   mean_shift                mean  0.000  sd 0.0456 → |mean_shift| < 0.23 (5.0 SD)
# The share and shift agree with theory: P(|U1 − U2| < 0.05) = 1 − 0.95² = 0.0975,
# sd √(0.0975·0.9025/80) = 0.0332; sd of a difference of two means of 80 uniforms √(2/12/80) = 0.0456.
# The old bounds sat about 3.2 SD out and the draws changed every run (seeded by absolute paths).
CHANCE_BOUNDS = {"ccc": 0.56, "delta_ccc": 0.79, "unchanged_share": 0.27, "mean_shift": 0.23}


def test_robustness_random_model_is_at_chance(tmp_path, monkeypatch):
    cond = {"name": "pad", "group": "small-changes", "type": "append-zeros", "parameters": {"samples": 100}}

    def table_in(folder):
        monkeypatch.setenv("SER_BENCHMARK_CACHE", str(folder / "cache"))
        evalset = make_evalset(folder / "db", n=80)
        return evalset, robustness.run(make_context(evalset, random_model, conditions=[cond]))["robustness"]

    evalset, table = table_in(tmp_path / "a")
    # the same numbers wherever the database and the cache live: the draws are a function of stable names
    pd.testing.assert_frame_equal(table, table_in(tmp_path / "b")[1])
    clean, perturbed = random_model(evalset.files), random_model(evalset.files, cond)
    for _, row in table.iterrows():
        t, c, p = evalset.truth[row["dimension"]], clean[row["dimension"]], perturbed[row["dimension"]]
        assert row["n"] == 80
        assert row["ccc_clean"] == pytest.approx(hand_ccc(t, c)) and row["ccc"] == pytest.approx(hand_ccc(t, p))
        assert row["delta_ccc"] == pytest.approx(hand_ccc(t, p) - hand_ccc(t, c))
        assert row["unchanged_share"] == pytest.approx(np.mean(np.abs(p - c) < 0.05))
        assert row["mean_shift"] == pytest.approx(p.mean() - c.mean())
        assert abs(row["ccc_clean"]) < CHANCE_BOUNDS["ccc"] and abs(row["ccc"]) < CHANCE_BOUNDS["ccc"]
        assert abs(row["delta_ccc"]) < CHANCE_BOUNDS["delta_ccc"]
        assert row["unchanged_share"] < CHANCE_BOUNDS["unchanged_share"]
        assert abs(row["mean_shift"]) < CHANCE_BOUNDS["mean_shift"]


def test_robustness_sweep_and_max_files(tmp_path):
    evalset = make_evalset(tmp_path / "db", n=30)
    sweep = {
        "name": "wn-10",
        "group": "snr-sweep",
        "type": "white-noise",
        "sweep": "white-noise",
        "parameters": {"snr_db": 10},
    }
    context = make_context(evalset, perturbed_rms(evalset), conditions=[sweep], max_files=12, unchanged_threshold=0.5)
    table = robustness.run(context)["robustness"]
    assert (table["n"] == 12).all()
    assert (table["sweep"] == "white-noise").all() and (table["snr_db"] == 10).all()
    assert (table["unchanged_threshold"] == 0.5).all()
    shift = table.set_index("dimension")["mean_shift"]
    assert shift["arousal"] > 0 and shift["valence"] == pytest.approx(-shift["arousal"])  # noise adds energy
    again = robustness.run(context)["robustness"]
    pd.testing.assert_frame_equal(table, again)


def test_robustness_babble_from_options(tmp_path):
    evalset = make_evalset(tmp_path / "db", n=12)
    pool = make_evalset(tmp_path / "pool", n=5, seed=7).files  # other "talkers"
    babble = {
        "name": "babble-0db",
        "group": "snr-sweep",
        "type": "babble",
        "sweep": "babble",
        "parameters": {"snr_db": 0},
    }
    context = make_context(evalset, perturbed_rms(evalset, pool), conditions=[babble], babble_files=pool)
    table = robustness.run(context)["robustness"]
    assert (table["condition"] == "babble-0db").all() and (table["snr_db"] == 0).all()
    assert len(table["condition_hash"].unique()) == 1 and len(table["condition_hash"].iloc[0]) == 12
    assert table.set_index("dimension").loc["arousal", "mean_shift"] > 0


# ------------------------------------------------------------------ fairness: sex


def test_balance_matches_truth_histograms():
    rng = np.random.default_rng(0)
    index = pd.Index([f"f{i}" for i in range(600)])
    sex = pd.Series(["female"] * 400 + ["male"] * 200, index=index)
    truth = pd.Series(np.r_[rng.beta(5, 2, 400), rng.beta(2, 5, 200)], index=index)  # different distributions
    chosen = balance.balance_by_truth(truth, sex, bins=10, seed=1)
    bins = np.clip(np.floor(truth[chosen] * 10), 0, 9)
    counts = pd.crosstab(bins, sex[chosen])
    assert (counts["female"] == counts["male"]).all() and len(chosen) > 50
    assert list(chosen) == list(balance.balance_by_truth(truth, sex, bins=10, seed=1))
    assert list(chosen) != list(balance.balance_by_truth(truth, sex, bins=10, seed=2))
    # the index order does not change the draw
    shuffled = truth.sample(frac=1, random_state=0)
    assert sorted(balance.balance_by_truth(shuffled, sex, bins=10, seed=1)) == sorted(chosen)


def test_sex_rows_perfect_and_biased():
    rng = np.random.default_rng(0)
    n = 400
    index = pd.Index([f"f{i}" for i in range(n)])
    sex = pd.Series(np.where(np.arange(n) % 2, "male", "female"), index=index)
    truth = pd.Series(rng.uniform(0, 1, n), index=index)
    rows = fairness.sex_rows(truth, truth, sex, "arousal", n_boot=200, seed=3)
    assert [r["group"] for r in rows] == ["female", "male"]
    for r in rows:
        assert r["ccc_group"] == pytest.approx(1) and r["delta_ccc"] == pytest.approx(0)
        assert r["ci_low"] == pytest.approx(0) and r["ci_high"] == pytest.approx(0) and r["passed"] is True

    # noisy for men only
    prediction = truth + np.where(sex == "male", rng.normal(0, 0.3, n), 0.0)
    rows = {r["group"]: r for r in fairness.sex_rows(truth, prediction, sex, "arousal", n_boot=300, seed=3)}
    chosen = balance.balance_by_truth(truth, sex, bins=balance.BINS, seed=3)
    male = chosen[sex[chosen] == "male"]
    assert rows["male"]["n"] == len(male) == rows["female"]["n"]
    assert rows["male"]["ccc_group"] == pytest.approx(audmetric.concordance_cc(truth[male], prediction[male]))
    assert rows["male"]["ccc_all"] == pytest.approx(hand_ccc(truth[chosen], prediction[chosen]))
    assert rows["male"]["delta_ccc"] < -0.075 < 0.075 < rows["female"]["delta_ccc"]
    assert rows["male"]["passed"] is False and rows["female"]["passed"] is False
    for r in rows.values():
        assert r["ci_low"] <= r["delta_ccc"] <= r["ci_high"] and r["threshold"] == 0.075


def test_sex_random_model_passes():
    rng = np.random.default_rng(1)
    n = 2000
    index = pd.Index([f"f{i}" for i in range(n)])
    sex = pd.Series(np.where(np.arange(n) % 2, "m", "F"), index=index)  # labels normalised
    truth = pd.Series(np.clip(rng.normal(0.5, 1 / 6, n), 0, 1), index=index)
    prediction = pd.Series(np.clip(rng.normal(0.5, 1 / 6, n), 0, 1), index=index)
    rows = fairness.sex_rows(truth, prediction, sex, "valence", n_boot=200, seed=0)
    for r in rows:
        assert abs(r["ccc_group"]) < 0.1 and r["passed"] is True
        assert r["ci_low"] < 0 < r["ci_high"]  # no bias: the interval covers zero


# ------------------------------------------------------------------ fairness: speakers


def test_speaker_rows_hand_computed():
    offsets = {"a": 0.0, "b": 0.1, "c": -0.2, "d": 0.0}
    sizes = {"a": 12, "b": 10, "c": 15, "d": 5}  # d has too few files
    truth, pred, speaker = [], [], []
    for spk, size in sizes.items():
        base = {"a": 0.2, "b": 0.5, "c": 0.8, "d": 0.5}[spk]
        values = base + np.linspace(-0.1, 0.1, size)
        truth += list(values)
        pred += list(values + offsets[spk])
        speaker += [spk] * size
    index = pd.Index([f"x{i}" for i in range(len(truth))])
    truth, pred = pd.Series(truth, index=index), pd.Series(pred, index=index)
    speaker = pd.Series(speaker, index=index)
    sex = speaker.map({"a": "female", "b": "male", "c": "female", "d": "male"})
    per, summary = fairness.speaker_rows(truth, pred, speaker, sex, "arousal", min_samples=10)
    per = pd.DataFrame(per).set_index("speaker")
    assert list(per.index) == ["a", "b", "c"]
    assert per["n"].tolist() == [12, 10, 15]
    assert per["mae"].tolist() == pytest.approx([0.0, 0.1, 0.2])
    assert per["sex"].tolist() == ["female", "male", "female"]
    assert per.loc["b", "ccc"] == pytest.approx(hand_ccc(truth[speaker == "b"], pred[speaker == "b"]))
    assert per["true_mean"].tolist() == pytest.approx([0.2, 0.5, 0.8])
    assert per["pred_mean"].tolist() == pytest.approx([0.2, 0.6, 0.6])
    assert summary["n_speakers"] == 3 and summary["min_samples"] == 10
    assert summary["mae_median"] == pytest.approx(0.1)
    assert summary["mae_q25"] == pytest.approx(0.05) and summary["mae_q75"] == pytest.approx(0.15)
    assert summary["ccc_median"] == pytest.approx(np.median(per["ccc"]))
    # ranks: true (1, 2, 3), predicted (1, 2.5, 2.5)
    assert summary["spearman_rho"] == pytest.approx(np.corrcoef([1, 2, 3], [1, 2.5, 2.5])[0, 1])


def test_fairness_run_tables(tmp_path):
    evalset = make_evalset(tmp_path / "db", n=60)
    tables = fairness.run(make_context(evalset, rms_model, bootstrap=50, speaker_min_samples=10, fairness_min_files=5))
    assert set(tables) == {"fairness_sex", "fairness_pitch", "fairness_speaker", "speakers"}
    for name, table in tables.items():
        assert set(KEYS[name]) <= set(table.columns), name
    # the files are noise: no voiced frame, so no pitch groups, and the table says why
    assert tables["fairness_pitch"].empty and "pitch groups" in tables["fairness_pitch"].attrs["reason"]
    sex = tables["fairness_sex"]
    assert set(zip(sex["dimension"], sex["group"])) == {
        (d, g) for d in ("arousal", "valence") for g in ("female", "male")
    }
    # passed: |delta_ccc| within the threshold (0.075), row by row
    assert sex["passed"].tolist() == [bool(abs(d) <= 0.075) for d in sex["delta_ccc"]]
    assert (sex["threshold"] == 0.075).all()
    assert (tables["speakers"]["n"] == 20).all() and len(tables["speakers"]) == 6
    assert tables["fairness_speaker"]["n_speakers"].tolist() == [3, 3]
    again = fairness.run(make_context(evalset, rms_model, bootstrap=50, speaker_min_samples=10, fairness_min_files=5))
    pd.testing.assert_frame_equal(sex, again["fairness_sex"])


def test_fairness_without_labels(tmp_path):
    evalset = make_evalset(tmp_path / "db", sex=False, speaker=False)
    tables = fairness.run(make_context(evalset, rms_model))
    for name, table in tables.items():
        assert table.empty and "no " in table.attrs["reason"], name
        assert set(KEYS[name]) <= set(table.columns)
    evalset = make_evalset(tmp_path / "db2", n=60, sex=False)
    tables = fairness.run(make_context(evalset, rms_model))
    assert tables["fairness_sex"].empty and "no sex labels" in tables["fairness_sex"].attrs["reason"]
    assert not tables["speakers"].empty and (tables["speakers"]["sex"] == "").all()


def test_real_data_babbles_only_with_talkers_it_is_given(dataset_registry, audb_repository, tmp_path):
    from conftest import BASELINES_YAML, tone

    from benchmark.registry import Registry
    from benchmark.suite import run_suite

    registry = Registry.from_yaml_text(BASELINES_YAML)
    run = dict(
        registry=registry,
        dataset_registry=dataset_registry,
        data="real",
        repositories=[audb_repository],
        splits=["test-1"],
        tests=["robustness"],
        progress=False,
        log=lambda s: None,
    )
    # no talkers for real data: the babble condition is left out, and the run says why; the others run
    report = run_suite("random-gaussian", options={"conditions": ["babble-20db", "gain"]}, **run)
    rows = report.frame("robustness")
    assert set(rows["condition"]) == {"gain"}
    assert any("babble-20db" in r[-1] and "--babble" in r[-1] for r in report.skipped_sets)
    # talkers given as a folder of recordings: the babble condition runs on them
    talkers = tmp_path / "talkers"
    talkers.mkdir()
    for i in range(8):
        audiofile.write(str(talkers / f"t{i}.wav"), tone(2.0, 110 + 20 * i, seed=i), SR)
    report = run_suite("random-gaussian", options={"conditions": ["babble-20db"], "babble": str(talkers)}, **run)
    assert set(report.frame("robustness")["condition"]) == {"babble-20db"}
