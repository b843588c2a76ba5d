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

CI_UNITS = ("speaker", "file")
r"""What a bootstrap resamples: whole speakers (the default where a split has them) or single files."""

MIN_CLUSTERS = 3
r"""Speakers a split needs for speaker-level intervals; below it files are resampled and the rows say so."""


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
    clusters: pd.Series | None = None,
) -> tuple[float, float]:
    r"""Percentile bootstrap confidence interval of a metric (default: CCC).

    Resamples (truth, prediction) pairs with replacement; seeded, so the
    interval is reproducible. With ``clusters`` (e.g. the speaker of each
    file, indexed like ``truth``) whole clusters are resampled: see
    :func:`resamples`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> t = pd.Series(rng.normal(size=200))
        >>> lo, hi = bootstrap_ci(t, t + rng.normal(scale=0.5, size=200), n=200)
        >>> bool(0.6 < lo < hi < 1.0)
        True

    """
    if clusters is not None:
        joined = pd.concat([truth.rename("t"), prediction.rename("p")], axis=1, join="inner").dropna()
        t, p = joined["t"].to_numpy(np.float64), joined["p"].to_numpy(np.float64)
        groups = cluster_codes(clusters.reindex(joined.index))
    else:
        t, p = align(truth, prediction)
        groups = None
    if len(t) < 3:
        return float("nan"), float("nan")
    metric = metric or ccc_numpy
    return _percentile_interval(np.array([metric(t[i], p[i]) for i in resamples(len(t), n, seed, groups)]), level)


def bootstrap_ccc_columns(
    truth: np.ndarray,
    prediction: np.ndarray,
    names: typing.Sequence[str],
    *,
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
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
        clusters: ``[items]`` cluster label per row (e.g. speaker): whole
            clusters are resampled (:func:`resamples`); ``None``: rows

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
        [
            [ccc_numpy(truth[i, c], prediction[i, c]) for c in range(len(names))]
            for i in resamples(len(truth), n, seed, None if clusters is None else cluster_codes(clusters))
        ]
    )
    stats = np.column_stack([stats, stats.mean(axis=1)])
    return {name: _percentile_interval(stats[:, c], level) for c, name in enumerate([*names, "mean"])}


def resamples(items: int, n: int, seed: int, clusters: np.ndarray | None = None) -> typing.Iterator[np.ndarray]:
    r"""``n`` seeded bootstrap resamples of ``items`` row indices.

    Without ``clusters`` every resample draws ``items`` rows with
    replacement. With ``clusters`` (integer codes ``0..k-1`` per row, see
    :func:`cluster_codes`) it draws ``k`` clusters with replacement and
    takes all rows of each drawn cluster: rows of one speaker are not
    independent draws, and resampling them one by one makes intervals too
    narrow (``docs/research/uncertainty.md``). Resamples then differ in
    length.

    Examples:
        >>> [r.tolist() for r in resamples(4, 2, 0, np.array([0, 0, 1, 1]))]
        [[2, 3, 2, 3], [2, 3, 0, 1]]

    """
    if clusters is None:
        yield from np.random.default_rng(seed).integers(0, items, size=(n, items))
        return
    members = cluster_members(clusters)
    for draw in cluster_draws(len(members), n, seed):
        yield np.concatenate([members[c] for c in draw])


def cluster_codes(labels: pd.Series | np.ndarray) -> np.ndarray:
    r"""Integer codes ``0..k-1`` of cluster labels; a missing label is a cluster of its own.

    Examples:
        >>> cluster_codes(pd.Series(["b", "a", None, "b"])).tolist()
        [1, 0, 2, 1]

    """
    values = pd.Series(np.asarray(labels, dtype=object))
    codes, uniques = pd.factorize(values.astype("string"), sort=True)
    missing = np.flatnonzero(codes < 0)
    codes[missing] = len(uniques) + np.arange(len(missing))
    return codes.astype(np.int64)


def cluster_members(codes: np.ndarray) -> list[np.ndarray]:
    r"""Row positions of every cluster code ``0..k-1``."""
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=int(codes.max()) + 1))[:-1]
    return np.split(order, bounds)


def cluster_draws(k: int, n: int, seed) -> np.ndarray:
    r"""``[n, k]`` cluster codes drawn with replacement, seeded."""
    return np.random.default_rng(seed).integers(0, k, size=(n, k))


def cluster_weights(codes: np.ndarray, n: int, seed) -> np.ndarray:
    r"""``[n, items]``: how often each row's cluster was drawn in each of ``n`` cluster resamples.

    A weighted statistic with these weights equals the statistic on the
    concatenated rows of the drawn clusters (the draws of :func:`resamples`),
    and it vectorises.

    Examples:
        >>> cluster_weights(np.array([0, 0, 1, 1]), 2, 0).tolist()
        [[0, 0, 2, 2], [1, 1, 1, 1]]

    """
    k = int(codes.max()) + 1
    draws = cluster_draws(k, n, seed)
    counts = np.bincount((draws + k * np.arange(n)[:, None]).ravel(), minlength=n * k).reshape(n, k)
    return counts[:, codes]


def ccc_weighted(truth: np.ndarray, prediction: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""CCC of ``truth`` and ``prediction`` ``[items]`` under each row of ``weights`` ``[n, items]``.

    Population moments, as :func:`ccc_numpy`; NaN where the weights sum to 0.

    Examples:
        >>> t, p = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0])
        >>> bool(np.isclose(ccc_weighted(t, p, np.array([[1, 2, 0]]))[0], ccc_numpy(t[[0, 1, 1]], p[[0, 1, 1]])))
        True

    """
    w = np.asarray(weights, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = w.sum(-1)
        mt, mp = (w @ truth) / total, (w @ prediction) / total
        dt, dp = truth[None, :] - mt[:, None], prediction[None, :] - mp[:, None]
        vt, vp = (w * dt**2).sum(-1) / total, (w * dp**2).sum(-1) / total
        cov = (w * dt * dp).sum(-1) / total
        return 2 * cov / (vt + vp + (mt - mp) ** 2)


def speaker_clusters(speaker: pd.Series | None, index: pd.Index, unit: str = "speaker") -> pd.Series | None:
    r"""The clusters a bootstrap over ``index`` resamples: speakers, or ``None`` for files.

    Files are the unit where ``unit`` is ``'file'`` or the split has fewer
    than :data:`MIN_CLUSTERS` labelled speakers among ``index``.

    Examples:
        >>> s = pd.Series(["a", "a", "b", "b", "c"], index=list("vwxyz"))
        >>> speaker_clusters(s, pd.Index(list("vwxyz"))).tolist()
        ['a', 'a', 'b', 'b', 'c']
        >>> speaker_clusters(s, pd.Index(list("vw"))) is None
        True

    """
    if unit not in CI_UNITS:
        raise ValueError(f"Unknown interval unit '{unit}': choose one of {', '.join(CI_UNITS)}.")
    if unit == "file" or speaker is None:
        return None
    labels = speaker.reindex(index)
    return labels if labels.dropna().nunique() >= MIN_CLUSTERS else None


def unit_of(clusters) -> str:
    r"""``'speaker'`` if a bootstrap resampled ``clusters``, ``'file'`` where they are ``None``."""
    return "file" if clusters is None else "speaker"


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    r"""Central ``level`` interval of the finite bootstrap statistics (NaN if there are none)."""
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def ccc_numpy(t: np.ndarray, p: np.ndarray) -> float:
    r"""CCC on aligned arrays (fast path for bootstraps; same formula as audmetric, by :func:`ccc_rows`).

    Examples:
        >>> ccc_numpy(np.array([0.1, 0.5, 0.9]), np.array([0.1, 0.5, 0.9]))
        1.0

    """
    return float(ccc_rows(t, p))  # NaN where both are constant


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


def ccc_columns(
    truth: np.ndarray, prediction: np.ndarray, names: typing.Sequence[str] | None = None
) -> dict[str | int, float]:
    r"""CCC of each column (:func:`ccc_finite`), keyed by ``names`` (default: the column index), and their ``mean``.

    Examples:
        >>> t = np.array([[0.1, 0.2], [0.5, 0.4], [0.9, 0.1]])
        >>> ccc_columns(t, t, ["arousal", "valence"])
        {'arousal': 1.0, 'valence': 1.0, 'mean': 1.0}
        >>> ccc_columns(t, t[:, ::-1])["mean"] < 0
        True

    """
    names = range(truth.shape[1]) if names is None else names
    out = {name: ccc_finite(truth[:, i], prediction[:, i]) for i, name in enumerate(names)}
    out["mean"] = float(np.mean(list(out.values())))
    return out


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
    clusters: pd.Series | None = None,
) -> dict:
    r"""Paired bootstrap of CCC(a) − CCC(b) on the same resampled items.

    Returns the observed difference, its 95% interval, a two-sided
    p-value (share of resamples on the other side of zero, doubled), the
    files compared and the resampled ``unit``. With ``clusters`` (a label
    per file, e.g. the speaker) whole clusters are resampled.
    """
    frames = [truth.rename("t"), prediction_a.rename("a"), prediction_b.rename("b")]
    joined = pd.concat(frames, axis=1, join="inner").dropna()
    t, a, b = (joined[c].to_numpy(np.float64) for c in ("t", "a", "b"))
    groups = None if clusters is None else cluster_codes(clusters.reindex(joined.index))
    out = paired_bootstrap_columns(t[:, None], a[:, None], b[:, None], n=n, seed=seed, clusters=groups)
    return {**out, "unit": unit_of(clusters)}


def paired_bootstrap_columns(
    truth: np.ndarray,
    prediction_a: np.ndarray,
    prediction_b: np.ndarray,
    *,
    n: int = 1000,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> dict:
    r"""Paired bootstrap of the difference of the mean CCC over columns, ``[items, columns]`` each.

    The same rows (or, with ``clusters``, the same clusters) are drawn for
    both predictions and every column. Returns ``delta`` (observed), its
    95 % interval ``ci_low``/``ci_high``, a two-sided ``p_value`` and ``n`` (rows).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> t = rng.normal(size=(200, 2))
        >>> out = paired_bootstrap_columns(t, t + rng.normal(scale=0.3, size=t.shape), t * 0 + 0.1, n=200)
        >>> bool(out["ci_low"] > 0 and out["p_value"] < 0.05)
        True

    """

    def mean_ccc(pred: np.ndarray, rows) -> float:
        return float(np.mean([ccc_numpy(truth[rows, c], pred[rows, c]) for c in range(truth.shape[1])]))

    if len(truth) < 3:
        nan = float("nan")
        return {"delta": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": len(truth)}
    draws = resamples(len(truth), n, seed, clusters)
    deltas = np.array([mean_ccc(prediction_a, i) - mean_ccc(prediction_b, i) for i in draws])
    deltas = deltas[np.isfinite(deltas)]
    every = slice(None)
    observed = mean_ccc(prediction_a, every) - mean_ccc(prediction_b, every)
    p = 2 * min((deltas <= 0).mean(), (deltas >= 0).mean()) if len(deltas) else float("nan")
    return {
        "delta": float(observed),
        "ci_low": float(np.quantile(deltas, 0.025)) if len(deltas) else float("nan"),
        "ci_high": float(np.quantile(deltas, 0.975)) if len(deltas) else float("nan"),
        "p_value": float(min(1.0, p)),
        "n": int(len(truth)),
    }
