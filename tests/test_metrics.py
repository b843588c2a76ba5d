"""Metrics against independent numpy formulas; alignment by index."""

import numpy as np
import pandas as pd
import pytest

from benchmark import metrics


def ccc_reference(t, p):
    t, p = np.asarray(t, float), np.asarray(p, float)
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    return 2 * cov / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_numpy_formula(seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(size=100)
    p = 0.7 * t + rng.normal(0.1, 0.2, size=100)
    assert metrics.ccc(pd.Series(t), pd.Series(p)) == pytest.approx(ccc_reference(t, p), abs=1e-12)
    assert metrics.ccc_numpy(t, p) == pytest.approx(ccc_reference(t, p), abs=1e-12)


def test_ccc_hand_computed():
    # t = [1,2,3], p = [2,3,4]: var 2/3 each, cov 2/3, mean diff 1 -> 2*(2/3)/(4/3+1) = 4/7
    assert metrics.ccc(pd.Series([1.0, 2, 3]), pd.Series([2.0, 3, 4])) == pytest.approx(4 / 7)


def test_alignment_by_index_not_position():
    t = pd.Series([0.1, 0.5, 0.9], index=["a", "b", "c"])
    p = t[::-1]  # same values, reversed order
    assert metrics.ccc(t, p) == pytest.approx(1.0)
    assert metrics.mae(t, p) == 0.0


def test_nan_pairs_dropped_and_disjoint_index_raises():
    t = pd.Series([0.1, 0.5, 0.9, 0.3], index=list("abcd"))
    p = pd.Series([0.1, np.nan, 0.9, 0.3], index=list("abcd"))
    assert metrics.ccc(t, p) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="share no index"):
        metrics.ccc(t, pd.Series([0.1], index=["z"]))


def test_pearson_and_mae():
    rng = np.random.default_rng(1)
    t, p = rng.normal(size=50), rng.normal(size=50)
    assert metrics.pearson(pd.Series(t), pd.Series(p)) == pytest.approx(np.corrcoef(t, p)[0, 1])
    assert metrics.mae(pd.Series(t), pd.Series(p)) == pytest.approx(np.abs(t - p).mean())
    assert np.isnan(metrics.pearson(pd.Series(t), pd.Series(np.ones(50))))


def test_bootstrap_seeded_and_contains_estimate():
    rng = np.random.default_rng(2)
    t = pd.Series(rng.normal(size=300))
    p = t + pd.Series(rng.normal(scale=0.7, size=300))
    a = metrics.bootstrap_ci(t, p, seed=3)
    assert a == metrics.bootstrap_ci(t, p, seed=3)
    assert a[0] < metrics.ccc(t, p) < a[1]


def test_paired_bootstrap_detects_better_model():
    rng = np.random.default_rng(4)
    t = pd.Series(rng.normal(size=400))
    good = t + pd.Series(rng.normal(scale=0.3, size=400))
    bad = t + pd.Series(rng.normal(scale=1.5, size=400))
    out = metrics.paired_bootstrap(t, good, bad, n=500)
    assert out["delta"] > 0 and out["ci_low"] > 0 and out["p_value"] < 0.01
    same = metrics.paired_bootstrap(t, good, good, n=200)
    assert same["delta"] == 0 and same["p_value"] == 1.0


def test_bootstrap_ccc_columns_resamples_rows_jointly():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(400, 3))
    prediction = truth + rng.normal(scale=[0.3, 0.6, 1.2], size=(400, 3))
    names = ["arousal", "dominance", "valence"]
    ci = metrics.bootstrap_ccc_columns(truth, prediction, names, n=300, seed=2)
    assert ci == metrics.bootstrap_ccc_columns(truth, prediction, names, n=300, seed=2)
    estimates = [metrics.ccc_numpy(truth[:, c], prediction[:, c]) for c in range(3)]
    for name, estimate in zip(names, estimates):
        assert ci[name][0] < estimate < ci[name][1]
    assert ci["mean"][0] < np.mean(estimates) < ci["mean"][1]
    # the mean of three noisy CCCs varies less than the noisiest one
    assert ci["mean"][1] - ci["mean"][0] < ci["valence"][1] - ci["valence"][0]
    with pytest.raises(ValueError, match=r"\[items, 3\] for the columns"):
        metrics.bootstrap_ccc_columns(truth, prediction[:, :2], names)
