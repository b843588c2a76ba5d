"""Tie-aware ranks: only separate what the data separates.

The leaderboard's correctness tables rank models by their mean CCC over
the dimensions. Adjacent positions are often within noise, so each table
shows a *rank group* instead of the bare position (:func:`rank_groups`):

1. Order the models by mean CCC. The best model not yet ranked leads a group.
2. Compare the leader with every model below it: a paired bootstrap of the
   difference in mean CCC on the files both scored, resampling whole
   speakers where the split has them (files otherwise), two-sided.
3. Holm-correct these p-values (family-wise error 5 % per group). Going
   down the order, models join the leader's group until the first one whose
   adjusted p-value is below 5 %; all members share the leader's rank
   (the position of the leader, so ranks read 1, 1, 1, 4, ...).
4. Repeat with the first model not in a group.

The "At a glance" share of tests passed gets a bootstrap interval over the
tests (:func:`share_interval`); :func:`significance_table` shows the
uncorrected pairwise tests between the top models per dimension.
"""

from __future__ import annotations

import functools
import itertools
import math
import typing

import numpy as np
import pandas as pd

from benchmark.docs.formatting import DASH, fmt3, fmt_p, md_table
from benchmark.metrics import MIN_CLUSTERS, ccc_weighted, cluster_codes, cluster_weights

ALPHA = 0.05
"""Family-wise error rate of the comparisons of a group's leader with the models below it."""

RANK_TEXT = (
    "**Rank groups.** The `rank` column does not number the rows: models that the data cannot tell apart share "
    "a rank. Going down the table, the best model not yet ranked is compared with every model below it by a paired "
    "bootstrap of the difference in mean CCC on the files both scored, resampling whole speakers (all of a "
    "speaker's files at once, since a speaker's files are not independent; files where a split has no speakers), "
    "two-sided; the p-values are Holm-corrected so that the chance of any false separation in the group stays at "
    "5 %. Models join the leader's rank until the first one it is separated from, which leads the next group; a "
    "group's rank is its leader's position (1, 1, 1, 4, ...). A shared rank means *not shown to differ*, not "
    "*equal*: more speakers would separate more models."
)
"""The paragraph the leaderboard shows with its tables (also in ``docs/analyses.md``)."""


def holm(p_values: typing.Sequence[float]) -> np.ndarray:
    r"""Holm's step-down adjusted p-values (NaN stays NaN, counted in ``m``).

    Examples:
        >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.06, 0.06]

    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j])) if np.isfinite(p[j]) else np.nan
        adjusted[j] = running
    return adjusted


def rank_groups(
    models: typing.Sequence[str],
    p_value: typing.Callable[[str, str], float],
    *,
    alpha: float = ALPHA,
) -> dict[str, int]:
    r"""Tie-aware rank of each of ``models`` (ordered best first), see the module docstring.

    Args:
        models: best first
        p_value: ``p_value(leader, other)`` two-sided p-value of their
            difference; NaN (no test possible) never separates
        alpha: family-wise error rate per group (Holm)

    Examples:
        >>> far = lambda a, b: 0.0 if {a, b} != {"b", "c"} else 0.5
        >>> rank_groups(["a", "b", "c", "d"], far)
        {'a': 1, 'b': 2, 'c': 2, 'd': 4}

    """
    ranks: dict[str, int] = {}
    position = 0
    while position < len(models):
        leader, rest = models[position], list(models[position + 1 :])
        adjusted = holm([p_value(leader, other) for other in rest])
        ranks[leader] = position + 1
        joined = 0
        for other, p in zip(rest, adjusted):
            if np.isfinite(p) and p < alpha:
                break
            ranks[other] = position + 1
            joined += 1
        position += 1 + joined
    return ranks


def paired_p(
    truth: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    clusters: np.ndarray | None,
    *,
    n: int,
    seed: int,
) -> float:
    r"""Two-sided p-value of mean CCC(a) − mean CCC(b) over columns, ``[items, columns]``, resampling ``clusters``.

    ``clusters`` ``None`` resamples rows (files). Vectorised with
    :func:`benchmark.metrics.cluster_weights`; the same draws for both models.
    """
    if len(truth) < 3:
        return float("nan")
    codes = np.arange(len(truth)) if clusters is None else cluster_codes(clusters)
    weights = cluster_weights(codes, n, seed)
    deltas = np.mean(
        [
            ccc_weighted(truth[:, c], a[:, c], weights) - ccc_weighted(truth[:, c], b[:, c], weights)
            for c in range(truth.shape[1])
        ],
        axis=0,
    )
    deltas = deltas[np.isfinite(deltas)]
    if not len(deltas):
        return float("nan")
    return float(min(1.0, 2 * min((deltas <= 0).mean(), (deltas >= 0).mean())))


def stored_pair(pa: pd.DataFrame | None, pb: pd.DataFrame | None, dims: typing.Sequence[str]):
    r"""Truth, both predictions ``[files, dims]`` and speaker clusters of the files both scored on every dim.

    ``None`` if either side's predictions are not stored or lack a
    dimension. Clusters are ``None`` (files) where fewer than
    :data:`benchmark.metrics.MIN_CLUSTERS` speakers are labelled.
    """
    need = [f"truth_{d}" for d in dims] + [f"pred_{d}" for d in dims]
    if pa is None or pb is None or any(c not in pa for c in need) or any(f"pred_{d}" not in pb for d in dims):
        return None
    left = pa.set_index("file")
    right = pb.set_index("file")[[f"pred_{d}" for d in dims]].add_suffix("__b")
    both = left.join(right, how="inner")
    numbers = both[need + [f"pred_{d}__b" for d in dims]].apply(pd.to_numeric, errors="coerce").dropna()
    both = both.loc[numbers.index]
    speakers = both["speaker"] if "speaker" in both else None
    if speakers is not None and speakers.dropna().nunique() < MIN_CLUSTERS:
        speakers = None
    truth = numbers[[f"truth_{d}" for d in dims]].to_numpy(float)
    a = numbers[[f"pred_{d}" for d in dims]].to_numpy(float)
    b = numbers[[f"pred_{d}__b" for d in dims]].to_numpy(float)
    return truth, a, b, None if speakers is None else speakers.to_numpy(object)


def share_interval(
    passed: int, tests: int, *, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    r"""Percentile bootstrap interval of the share of ``tests`` passed, resampling the tests.

    Resampling ``tests`` binary outcomes with replacement draws the number
    passed from a binomial distribution, which is drawn directly. Tests of one
    model are not independent (the same files under many conditions), so
    the interval is a lower bound on the uncertainty.

    Examples:
        >>> lo, hi = share_interval(50, 100)
        >>> bool(0.38 < lo < 0.45 and 0.55 < hi < 0.62)
        True
        >>> share_interval(0, 0)
        (nan, nan)

    """
    if tests <= 0:
        return float("nan"), float("nan")
    shares = np.random.default_rng(seed).binomial(tests, passed / tests, size=n) / tests
    alpha = (1 - level) / 2
    return float(np.quantile(shares, alpha)), float(np.quantile(shares, 1 - alpha))


def section_ranks(
    inputs,
    out,
    rows: pd.DataFrame,
    section: tuple,
    dims: typing.Sequence[str],
    order: typing.Sequence[str],
    *,
    resamples: int,
    seed: int,
) -> dict[str, int]:
    r"""Rank groups of the models of one leaderboard table (``order``: best first), reused while unchanged.

    The p-values come from the stored per-file predictions
    (:meth:`benchmark.docs.inputs.Inputs.predictions`); a pair without them
    is not separated.
    """
    sha = {m: str(g["model_sha256"].iloc[0]) for m, g in rows.groupby("model")}
    builds = sorted(set(rows["data_fingerprint"].astype(str))) if "data_fingerprint" in rows else []

    def p_value(a: str, b: str) -> float:
        pair = stored_pair(inputs.predictions(a, sha[a], section), inputs.predictions(b, sha[b], section), dims)
        if pair is None:
            return float("nan")
        key = ("rank_pair", a, sha[a], b, sha[b], *section, *builds, *dims, resamples, seed)
        result = out.result("docs/ranks.py", key, lambda: {"p": paired_p(*pair[:3], pair[3], n=resamples, seed=seed)})
        return float(result["p"])

    return rank_groups(list(order), p_value)


def significance_table(
    inputs,
    out,
    rows: pd.DataFrame,
    section: tuple,
    dims: list[str],
    *,
    resamples: int,
    seed: int,
    top: int,
) -> str:
    r"""Paired bootstrap of the CCC difference between the ``top`` models per dimension (reused while unchanged)."""
    from benchmark.metrics import paired_bootstrap, speaker_clusters

    table = []
    for dim in dims:
        sub = rows[rows["dimension"] == dim].copy()
        sub["_ccc"] = pd.to_numeric(sub["ccc"], errors="coerce").fillna(-math.inf)
        sub = sub[np.isfinite(sub["_ccc"])].sort_values(["_ccc", "model"], ascending=[False, True])
        leaders = list(zip(sub["model"], sub["model_sha256"]))[:top]
        for (a, sha_a), (b, sha_b) in itertools.combinations(leaders, 2):
            pa, pb = inputs.predictions(a, sha_a, section), inputs.predictions(b, sha_b, section)
            column_t, column_p = f"truth_{dim}", f"pred_{dim}"
            if pa is None or pb is None or column_p not in pa or column_p not in pb or column_t not in pa:
                table.append([dim, a, b, DASH, DASH, "predictions not stored", DASH, DASH])
                continue
            ia, ib = pa.set_index("file"), pb.set_index("file")
            series = (
                pd.to_numeric(ia[column_t], errors="coerce"),
                pd.to_numeric(ia[column_p], errors="coerce"),
                pd.to_numeric(ib[column_p], errors="coerce"),
            )
            clusters = speaker_clusters(ia["speaker"] if "speaker" in ia else None, ia.index)
            result = out.result(
                "metrics.py",
                (
                    "paired_bootstrap",
                    *series,
                    "clusters",
                    clusters if clusters is not None else "files",
                    resamples,
                    seed,
                ),
                functools.partial(paired_bootstrap, *series, n=resamples, seed=seed, clusters=clusters),
            )
            table.append(
                [
                    dim,
                    a,
                    b,
                    fmt3(result["delta"]),
                    f"[{fmt3(result['ci_low'])}, {fmt3(result['ci_high'])}]",
                    fmt_p(result["p_value"], resamples),
                    str(result["n"]),
                    f"{result.get('unit', 'file')}s",
                ]
            )
    if not table:
        return ""
    headers = ["dimension", "model A", "model B", "ΔCCC (A − B)", "95% CI", "p", "files", "resampled"]
    return (
        f"Significance between the top {top} models (paired bootstrap on the files both "
        f"scored, resampling whole speakers where the split has them, else files; {resamples} resamples, "
        f"seed {seed}; p two-sided, not corrected for multiple comparisons: the rank groups above are):\n\n"
        + md_table(headers, table, "lllrrrrl")
    )
