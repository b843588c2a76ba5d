"""Comparing groups on equal terms: a truth-balanced subset, and each group's CCC against it.

A group's files are compared with the balanced set's, so that a gap in
CCC is not a gap in the truth each group happens to have; the interval is
a bootstrap over files or over whole speakers. Used for the sex groups
(:mod:`benchmark.analyses.fairness`) and the pitch groups within a sex
(:mod:`benchmark.analyses.pitch`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics import ccc, ccc_rows, ccc_weighted, cluster_codes, cluster_weights, unit_of

THRESHOLD = 0.075
"""Largest allowed |CCC(group) − CCC(all)|."""

BINS = 10
"""Equal-width truth bins on 0..1 used for balancing."""

BOOTSTRAP = 1000
"""Bootstrap resamples for the confidence intervals."""

SEXES = ("female", "male")
"""The labels :func:`normalize_sex` maps a corpus's sex labels to."""


def normalize_sex(sex: pd.Series) -> pd.Series:
    r"""Map sex labels to ``'female'`` / ``'male'`` (anything else → NA).

    Examples:
        >>> normalize_sex(pd.Series(["Female", "m", "other"])).tolist()
        ['female', 'male', <NA>]

    """
    mapping = {"female": "female", "f": "female", "woman": "female", "male": "male", "m": "male", "man": "male"}
    return sex.astype("string").str.strip().str.lower().map(mapping).astype("string")


def balance_by_truth(truth: pd.Series, groups: pd.Series, *, bins: int = BINS, seed: int = 0) -> pd.Index:
    r"""Files of a subset in which every group has the same truth histogram.

    Truth (0..1) is cut into ``bins`` equal-width bins (values outside
    fall into the first or last); from every bin each group contributes
    as many files as the smallest group has there, drawn with ``seed``.
    Files with NaN truth or group are left out.

    Returns:
        the chosen files, in the order of ``truth``

    Examples:
        >>> t = pd.Series([0.1, 0.15, 0.9, 0.12, 0.95, 0.97], index=list("abcdef"))
        >>> g = pd.Series(["f", "f", "f", "m", "m", "m"], index=list("abcdef"))
        >>> chosen = balance_by_truth(t, g, bins=2)  # per bin: 1 female, 1 male
        >>> g[chosen].value_counts().sort_index().to_dict()
        {'f': 2, 'm': 2}

    """
    groups = groups.reindex(truth.index)
    valid = truth.notna() & groups.notna()
    t, g = truth[valid].astype("float64"), groups[valid].astype("string")
    names = sorted(g.unique())
    if len(names) < 2:
        return truth.index[:0]
    b = np.clip(np.floor(t.to_numpy() * bins), 0, bins - 1).astype(int)
    rng = np.random.default_rng(seed)
    chosen = set()
    for bin_ in range(bins):
        members = {n: sorted(t.index[(b == bin_) & (g == n).to_numpy(dtype=bool)]) for n in names}
        k = min(len(m) for m in members.values())
        for name in names:  # sorted files and groups: the draw does not depend on index order
            if k:
                chosen.update(rng.choice(np.array(members[name], dtype=object), size=k, replace=False))
    return truth.index[truth.index.isin(list(chosen))]


def group_deltas(
    t: np.ndarray,
    p: np.ndarray,
    members: dict,
    *,
    n_boot: int = BOOTSTRAP,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> list[dict]:
    r"""Per group of a balanced set: ``CCC(group) − CCC(all)`` with a bootstrap 95 % interval.

    Args:
        t, p: truth and prediction of the balanced set
        members: group name → positions in ``t`` and ``p``
        n_boot: bootstrap resamples (0: no interval)
        seed: seed of the resamples
        clusters: speaker per position (any labels): whole speakers are
            resampled; ``None``: files, within each group

    Returns:
        one dict per group: ``group``, ``n``, ``ccc_group``, ``ccc_all``,
        ``delta_ccc``, ``ci_low``, ``ci_high``, ``ci_unit``

    """
    ccc_all = ccc(pd.Series(t), pd.Series(p))
    if clusters is None:
        deltas = _bootstrap_deltas(t, p, members, n_boot, seed)
    else:
        deltas = _cluster_deltas(t, p, members, cluster_codes(clusters), n_boot, seed)
    rows = []
    for group, pos in members.items():
        ccc_group = ccc(pd.Series(t[pos]), pd.Series(p[pos]))
        low, high = (
            np.nanpercentile(deltas[group], [2.5, 97.5])
            if n_boot and np.isfinite(deltas[group]).any()
            else (np.nan, np.nan)
        )
        rows.append(
            {
                "group": group,
                "n": len(pos),
                "ccc_group": ccc_group,
                "ccc_all": ccc_all,
                "delta_ccc": ccc_group - ccc_all,
                "ci_low": float(low),
                "ci_high": float(high),
                "ci_unit": unit_of(clusters),
            }
        )
    return rows


def _bootstrap_deltas(t, p, members: dict, n_boot: int, seed: int) -> dict:
    r"""CCC(group) − CCC(all) per bootstrap resample, resampling within each group.

    Resampling within groups keeps the balanced design (equal group sizes).
    Computed in chunks so memory stays below ~100 MB for large splits.
    """
    out = {g: np.empty(0) for g in members}
    if not n_boot:
        return out
    rng = np.random.default_rng([seed, 1])
    chunk = max(1, 2_000_000 // max(1, len(t)))
    parts = {g: [] for g in members}
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = {g: pos[rng.integers(0, len(pos), size=(size, len(pos)))] for g, pos in members.items()}
        both = np.concatenate(list(draws.values()), axis=1)
        ccc_all = ccc_rows(t[both], p[both])
        for g, d in draws.items():
            parts[g].append(ccc_rows(t[d], p[d]) - ccc_all)
    return {g: np.concatenate(v) for g, v in parts.items()}


def _cluster_deltas(t, p, members: dict, codes: np.ndarray, n_boot: int, seed: int) -> dict:
    r"""CCC(group) − CCC(all) per resample of whole speakers (a speaker's files in every group they have).

    Speakers are drawn from the whole set, so group sizes vary between
    resamples: the balance holds on average, as it does across corpora.
    Computed in chunks so memory stays below ~100 MB for large splits.
    """
    out = {g: np.empty(0) for g in members}
    if not n_boot:
        return out
    weights = cluster_weights(codes, n_boot, [seed, 2])
    chunk = max(1, 2_000_000 // max(1, len(t)))
    parts = {g: [] for g in members}
    for start in range(0, n_boot, chunk):
        w = weights[start : start + chunk]
        ccc_all = ccc_weighted(t, p, w)
        for g, pos in members.items():
            parts[g].append(ccc_weighted(t[pos], p[pos], w[:, pos]) - ccc_all)
    return {g: np.concatenate(v) for g, v in parts.items()}
