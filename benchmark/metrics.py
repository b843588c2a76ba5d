"""Agreement metrics between gold labels and predictions.

All functions align the two series by index first: audmetric compares
by position, so a reordered prediction would otherwise be scored
against the wrong labels.
"""

from __future__ import annotations

import typing

import audmetric
import numpy as np
import pandas as pd


def align(truth: pd.Series, prediction: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    r"""Align by index and drop pairs where either side is NaN.

    Examples:
        >>> t = pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"])
        >>> p = pd.Series([3.0, np.nan, 1.0], index=["c", "b", "a"])
        >>> [x.tolist() for x in align(t, p)]
        [[1.0, 3.0], [1.0, 3.0]]

    """
    missing = truth.index.difference(prediction.index)
    if len(missing) and len(missing) == len(truth):
        raise ValueError("Truth and prediction share no index entries: nothing to compare.")
    joined = pd.concat([truth.rename("t"), prediction.rename("p")], axis=1, join="inner").dropna()
    return joined["t"].to_numpy(np.float64), joined["p"].to_numpy(np.float64)


def ccc(truth: pd.Series, prediction: pd.Series) -> float:
    r"""Concordance correlation coefficient (audmetric; population variance).

    Examples:
        >>> t = pd.Series([0.1, 0.5, 0.9])
        >>> round(ccc(t, t), 6)
        1.0

    """
    t, p = align(truth, prediction)
    if len(t) < 2:
        return float("nan")
    return float(audmetric.concordance_cc(t, p))


def pearson(truth: pd.Series, prediction: pd.Series) -> float:
    r"""Pearson correlation (NaN, undefined, if either side is constant).

    Constant means all values equal: the standard deviation of equal
    values can come out a rounding error above 0 (``0.1`` repeated),
    which would give a meaningless correlation such as 1e-16.

    Examples:
        >>> t = pd.Series([0.2, 0.4, 0.9])
        >>> pearson(t, pd.Series([0.1, 0.1, 0.1]))
        nan
        >>> round(pearson(t, 2 * t), 6)
        1.0

    """
    t, p = align(truth, prediction)
    if len(t) < 2 or np.all(t == t[0]) or np.all(p == p[0]):
        return float("nan")
    return float(audmetric.pearson_cc(t, p))


def mae(truth: pd.Series, prediction: pd.Series) -> float:
    r"""Mean absolute error."""
    t, p = align(truth, prediction)
    return float(np.mean(np.abs(t - p))) if len(t) else float("nan")


def bootstrap_ci(
    truth: pd.Series,
    prediction: pd.Series,
    metric: typing.Callable[[np.ndarray, np.ndarray], float] | None = None,
    *,
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    r"""Percentile bootstrap confidence interval of a metric (default: CCC).

    Resamples (truth, prediction) pairs with replacement; seeded, so the
    interval is reproducible.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> t = pd.Series(rng.normal(size=200))
        >>> lo, hi = bootstrap_ci(t, t + rng.normal(scale=0.5, size=200), n=200)
        >>> bool(0.6 < lo < hi < 1.0)
        True

    """
    t, p = align(truth, prediction)
    if len(t) < 3:
        return float("nan"), float("nan")
    metric = metric or ccc_numpy
    return _percentile_interval(np.array([metric(t[i], p[i]) for i in _resamples(len(t), n, seed)]), level)


def bootstrap_ccc_columns(
    truth: np.ndarray,
    prediction: np.ndarray,
    names: typing.Sequence[str],
    *,
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    r"""Percentile bootstrap intervals of the CCC of each column and of their mean.

    Rows (items) are resampled with replacement, the same rows for every
    column, so the interval of ``'mean'`` is that of the mean of the
    columns' CCCs on each resample, not a combination of their intervals.

    Args:
        truth: ``[items, columns]``
        prediction: ``[items, columns]``, rows aligned with ``truth``
        names: one name per column
        n: resamples
        level: coverage of the interval
        seed: seed of the resampling

    Returns:
        ``{name: (low, high)}`` for every column, and ``'mean'``

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> t = rng.normal(size=(300, 2))
        >>> ci = bootstrap_ccc_columns(t, t + rng.normal(scale=[0.2, 1.0], size=(300, 2)), ["a", "b"], n=200)
        >>> bool(ci["b"][1] < ci["mean"][0] < ci["mean"][1] < ci["a"][0])
        True

    """
    truth, prediction = np.asarray(truth, np.float64), np.asarray(prediction, np.float64)
    if truth.shape != prediction.shape or truth.ndim != 2 or truth.shape[1] != len(names):
        raise ValueError(
            f"truth {truth.shape} and prediction {prediction.shape} must both be [items, {len(names)}] "
            f"for the columns {list(names)}."
        )
    if len(truth) < 3:
        return {name: (float("nan"), float("nan")) for name in [*names, "mean"]}
    stats = np.array(
        [[ccc_numpy(truth[i, c], prediction[i, c]) for c in range(len(names))] for i in _resamples(len(truth), n, seed)]
    )
    stats = np.column_stack([stats, stats.mean(axis=1)])
    return {name: _percentile_interval(stats[:, c], level) for c, name in enumerate([*names, "mean"])}


def _resamples(items: int, n: int, seed: int) -> np.ndarray:
    r"""``n`` bootstrap resamples of ``items`` row indices, ``[n, items]``, seeded."""
    return np.random.default_rng(seed).integers(0, items, size=(n, items))


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    r"""Central ``level`` interval of the finite bootstrap statistics (NaN if there are none)."""
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def ccc_numpy(t: np.ndarray, p: np.ndarray) -> float:
    r"""CCC on aligned arrays (fast path for bootstraps; same formula as audmetric).

    Examples:
        >>> ccc_numpy(np.array([0.1, 0.5, 0.9]), np.array([0.1, 0.5, 0.9]))
        1.0

    """
    mt, mp = t.mean(), p.mean()
    vt, vp = t.var(), p.var()
    cov = ((t - mt) * (p - mp)).mean()
    denom = vt + vp + (mt - mp) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def ccc_finite(truth: np.ndarray, prediction: np.ndarray) -> float:
    r"""CCC of the pairs where both values are finite (NaN for fewer than 2 pairs).

    Examples:
        >>> round(ccc_finite(np.array([0.0, 1.0, 2.0, np.nan]), np.array([0.0, 1.0, 2.0, 5.0])), 6)
        1.0
        >>> ccc_finite(np.array([1.0]), np.array([1.0]))
        nan

    """
    t, p = np.asarray(truth, np.float64), np.asarray(prediction, np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    if ok.sum() < 2:
        return float("nan")
    return ccc_numpy(t[ok], p[ok])


def ccc_rows(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    r"""CCC along the last axis (population variance, as audmetric), vectorised for bootstraps.

    Examples:
        >>> ccc_rows(np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
        [1.0, -1.0]

    """
    mt, mp = truth.mean(-1), prediction.mean(-1)
    cov = ((truth - mt[..., None]) * (prediction - mp[..., None])).mean(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * cov / (truth.var(-1) + prediction.var(-1) + (mt - mp) ** 2)


def paired_bootstrap(
    truth: pd.Series,
    prediction_a: pd.Series,
    prediction_b: pd.Series,
    *,
    n: int = 1000,
    seed: int = 0,
) -> dict:
    r"""Paired bootstrap of CCC(a) − CCC(b) on the same resampled items.

    Returns the observed difference, its 95% interval and a two-sided
    p-value (share of resamples on the other side of zero, doubled).
    """
    joined = pd.concat(
        [truth.rename("t"), prediction_a.rename("a"), prediction_b.rename("b")], axis=1, join="inner"
    ).dropna()
    t, a, b = (joined[c].to_numpy(np.float64) for c in ("t", "a", "b"))
    if len(t) < 3:
        return {
            "delta": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "p_value": float("nan"),
            "n": len(t),
        }
    deltas = np.array([ccc_numpy(t[i], a[i]) - ccc_numpy(t[i], b[i]) for i in _resamples(len(t), n, seed)])
    observed = ccc_numpy(t, a) - ccc_numpy(t, b)
    p = 2 * min((deltas <= 0).mean(), (deltas >= 0).mean())
    return {
        "delta": float(observed),
        "ci_low": float(np.quantile(deltas, 0.025)),
        "ci_high": float(np.quantile(deltas, 0.975)),
        "p_value": float(min(1.0, p)),
        "n": int(len(t)),
    }
