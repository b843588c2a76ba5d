"""Fairness by pitch: the tracker on voices of known f0, the groups, and the rows."""

from __future__ import annotations

import audiofile
import numpy as np
import pandas as pd
import pytest

from benchmark.analyses import pitch
from benchmark.data.datasets import EvalSet

SR = 16000


def voice(f0: float, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    r"""A harmonic voice with 3 % vibrato, a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.3 * x / np.abs(x).max() + 0.003 * rng.normal(size=t.size)).astype(np.float32)


@pytest.mark.parametrize("f0", [75, 95, 120, 165, 210, 260, 340, 450])
def test_median_f0_of_voices_of_known_pitch(f0):
    assert pitch.median_f0(voice(f0, seed=f0), SR) == pytest.approx(f0, rel=0.01)


def test_unvoiced_and_too_short_signals_have_no_pitch():
    rng = np.random.default_rng(1)
    assert np.isnan(pitch.median_f0(rng.normal(size=SR).astype(np.float32), SR))
    assert np.isnan(pitch.median_f0(voice(150)[:400], SR))
    assert np.isnan(pitch.median_f0(np.zeros(SR, dtype=np.float32), SR))


def test_pitch_groups_are_tertiles_within_each_sex():
    f0 = pd.Series([90, 100, 110, 120, 130, 140, 190, 200, 210, 220, 230, 240, np.nan], dtype=float)
    sex = pd.Series(["male"] * 6 + ["female"] * 6 + ["female"])
    groups = pitch.pitch_groups(f0, sex)
    assert groups[:6].tolist() == ["low", "low", "medium", "medium", "high", "high"]
    assert groups[6:12].tolist() == ["low", "low", "medium", "medium", "high", "high"]
    assert pd.isna(groups[12])  # no pitch, no group


def _voices_evalset(root, n_per_sex: int = 30) -> EvalSet:
    rng = np.random.default_rng(0)
    files, sexes, f0s = [], [], []
    for sex, low, high in (("female", 170, 260), ("male", 85, 150)):
        for i, f0 in enumerate(np.linspace(low, high, n_per_sex)):
            path = root / f"{sex}{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            audiofile.write(str(path), voice(f0, seconds=0.8, seed=i), SR)
            files.append(str(path))
            sexes.append(sex)
            f0s.append(f0)
    index = pd.Index(files, name="file")
    truth = pd.DataFrame({"arousal": rng.uniform(0, 1, len(files))}, index=index)
    return EvalSet(
        dataset="voices",
        audb_name="voices",
        version="1.0.0",
        split="test",
        table="t",
        truth=truth,
        speaker=None,
        sex=pd.Series(sexes, index=index, dtype="string"),
        root=str(root),
    ), np.array(f0s)


def test_a_model_that_fails_high_voices_shows_in_the_high_group(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    evalset, true_f0 = _voices_evalset(tmp_path / "db")
    f0 = pitch.split_f0(evalset)
    np.testing.assert_allclose(f0.to_numpy(), true_f0, rtol=0.01)
    truth = evalset.truth["arousal"]
    # perfect on low and medium voices, noise on the top third of each sex
    rng = np.random.default_rng(3)
    groups = pitch.pitch_groups(f0, evalset.sex)
    prediction = truth.where(groups != "high", pd.Series(rng.uniform(0, 1, len(truth)), index=truth.index))
    rows = pd.DataFrame(pitch.pitch_rows(truth, prediction, evalset.sex, f0, "arousal", bins=1, n_boot=200))
    assert set(zip(rows["sex"], rows["group"])) == {(s, g) for s in ("female", "male") for g in pitch.GROUPS}
    high = rows[rows["group"] == "high"]
    assert (high["delta_ccc"] < -0.075).all() and (high["ci_high"] < 0).all()
    others = rows[rows["group"] != "high"]
    assert (others["delta_ccc"] > 0).all()
    # each group spans its own pitch range
    male = rows[rows["sex"] == "male"].set_index("group")
    assert male.loc["low", "f0_high_hz"] < male.loc["medium", "f0_low_hz"] < male.loc["high", "f0_low_hz"]


def test_split_f0_is_cached_by_data_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    evalset, _ = _voices_evalset(tmp_path / "db", n_per_sex=3)
    first = pitch.split_f0(evalset)
    for f in evalset.files:  # the cached values are used: the audio is not read again
        audiofile.write(f, np.zeros(SR, dtype=np.float32), SR)
    pd.testing.assert_series_equal(first, pitch.split_f0(evalset))
