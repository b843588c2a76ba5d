"""Consistency: do A/D/V predictions agree with categorical labels? (as ser-tests on categorical corpora)

Each category is placed on each dimension (high / low, see
:mod:`benchmark.data.categories`): e.g. anger high and sadness low in
arousal. Two tables:

``consistency_categories``: per category and dimension, the mean
prediction with a seeded bootstrap 95 % interval (files resampled
within the category).

``consistency``: per dimension, the AUC of the files of the high
categories against those of the low ones: the probability that a random
high file is predicted higher than a random low one (0.5: no
separation). Its 95 % interval resamples each side separately. A
dimension passes if the AUC is at least :data:`THRESHOLD` (group
``all``). Where sex labels exist the AUC is also given within each sex
(groups ``female`` / ``male``, with ``delta_auc`` against ``all`` and its
interval) and within each speaker (``speaker:<id>``, and a
``worst-speaker`` row): the fairness question on a corpus without A/D/V
gold (:mod:`benchmark.analyses.consistency_groups`).

Options (``context.options``): ``bootstrap`` (resamples, 0 for none),
``consistency_threshold``, ``consistency_min_files``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from benchmark.analyses import consistency_groups
from benchmark.analyses.balance import SEXES, normalize_sex

THRESHOLD = 0.6
r"""Smallest AUC of high vs low categories that passes.

Derived here: random predictions give 0.5; 0.6 asks that a high file
beats a low one in 3 of 5 pairs. The test is "undecided" while the 95 %
interval contains 0.6 (see ``docs/analyses.md``).
"""

MIN_FILES = 10
"""Files each side (high, low) needs for an AUC row."""

BOOTSTRAP = 1000

COLUMNS = (
    "dimension",
    "group",
    "n_high",
    "n_low",
    "high",
    "low",
    "auc",
    "ci_low",
    "ci_high",
    "delta_auc",
    "delta_ci_low",
    "delta_ci_high",
    "speaker",
    "n_speakers",
    "threshold",
    "passed",
)
CATEGORY_COLUMNS = ("category", "dimension", "side", "n", "mean", "ci_low", "ci_high")


def auc(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    r"""AUC of ``high`` against ``low`` along the last axis (ties count one half).

    Examples:
        >>> float(auc(np.array([0.9, 0.8]), np.array([0.1, 0.85])))
        0.75

    """
    both = np.concatenate([high, low], axis=-1)
    ranks = scipy.stats.rankdata(both, axis=-1)
    nh, nl = high.shape[-1], low.shape[-1]
    return (ranks[..., :nh].sum(-1) - nh * (nh + 1) / 2) / (nh * nl)


def auc_ci(high: np.ndarray, low: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    r"""Bootstrap 95 % interval of :func:`auc`, each side resampled on its own (NaN for ``n=0``)."""
    if n <= 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    h = high[rng.integers(0, len(high), (n, len(high)))]
    l_ = low[rng.integers(0, len(low), (n, len(low)))]
    values = auc(h, l_)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def mean_ci(values: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    r"""Bootstrap 95 % interval of the mean (NaN for ``n=0`` or fewer than 2 values)."""
    if n <= 0 or len(values) < 2:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(-1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _sides(places: dict, dim: str) -> tuple[list[str], list[str]]:
    high = sorted(c for c, s in places.items() if s.get(dim) == "high")
    low = sorted(c for c, s in places.items() if s.get(dim) == "low")
    return high, low


def category_rows(
    values: pd.Series, category: pd.Series, places: dict, dim: str, base: dict, n_boot: int, seed: int
) -> list[dict]:
    r"""Rows of ``consistency_categories`` for one dimension: each category's mean prediction and its interval."""
    rows = []
    for name in sorted(category.dropna().unique()):
        v = values[(category == name) & values.notna()].to_numpy()
        lo, hi = mean_ci(v, n_boot, seed)
        rows.append(
            {
                **base,
                "category": name,
                "dimension": dim,
                "side": places.get(name, {}).get(dim, ""),
                "n": len(v),
                "mean": float(v.mean()) if len(v) else np.nan,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return rows


def run(context) -> dict[str, pd.DataFrame]:
    r"""Rows for tables ``consistency`` and ``consistency_categories``; ``.attrs['reason']`` says what was left out."""
    evalset, pred = context.evalset, context.clean
    options = context.options
    n_boot = int(options.get("bootstrap", BOOTSTRAP) or 0)
    threshold = float(options.get("consistency_threshold", THRESHOLD))
    min_files = int(options.get("consistency_min_files", MIN_FILES))
    category = evalset.category.reindex(pred.index)
    sex = normalize_sex(evalset.sex.reindex(pred.index)) if evalset.sex is not None else None
    speaker = evalset.speaker.reindex(pred.index).astype("string") if evalset.speaker is not None else None
    base = context.base_row()
    rows, cat_rows, notes = [], [], []
    dims = [d for d in context.entry.dimensions if d in pred.columns]
    for dim in dims:
        values = pred[dim].astype("float64")
        high, low = _sides(evalset.places, dim)
        cat_rows += category_rows(values, category, evalset.places, dim, base, n_boot, context.seed)
        groups = [("all", pd.Series(True, index=pred.index))]
        if sex is not None:
            groups += [(g, sex == g) for g in SEXES if (sex == g).any()]
        if speaker is not None:
            prefix = consistency_groups.SPEAKER_PREFIX
            groups += [(prefix + s, (speaker == s).fillna(False)) for s in sorted(speaker.dropna().unique())]
        overall, dim_rows, d_ci = np.nan, [], (np.nan, np.nan)
        for group, mask in groups:
            h = values[mask & category.isin(high) & values.notna()].to_numpy()
            l_ = values[mask & category.isin(low) & values.notna()].to_numpy()
            if len(h) < min_files or len(l_) < min_files:
                if group.startswith(consistency_groups.SPEAKER_PREFIX):
                    continue  # speakers with few files are common; the worst-speaker row counts who is in
                notes.append(f"{dim}/{group}: {len(h)} high and {len(l_)} low files, {min_files} needed on each side")
                continue
            value = float(auc(h, l_))
            lo, hi = auc_ci(h, l_, n_boot, context.seed)
            overall = value if group == "all" else overall
            if group in SEXES:
                ok_h, ok_l = category.isin(high) & values.notna(), category.isin(low) & values.notna()
                d_ci = consistency_groups.delta_ci(
                    values[ok_h].to_numpy(), values[ok_l].to_numpy(), mask[ok_h].to_numpy(bool),
                    mask[ok_l].to_numpy(bool), n_boot, context.seed, auc,
                )  # fmt: skip
            dim_rows.append(
                {
                    **base,
                    "dimension": dim,
                    "group": group,
                    "n_high": len(h),
                    "n_low": len(l_),
                    "high": " ".join(high),
                    "low": " ".join(low),
                    "auc": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "delta_auc": np.nan if group == "all" else value - overall,
                    "delta_ci_low": d_ci[0] if group in SEXES else np.nan,
                    "delta_ci_high": d_ci[1] if group in SEXES else np.nan,
                    "threshold": threshold,
                    "passed": value >= threshold if group == "all" else np.nan,
                }
            )
        worst = consistency_groups.worst_speaker(dim_rows)
        rows += dim_rows + ([worst] if worst else [])
    table = pd.DataFrame(rows, columns=[*base, *COLUMNS]) if rows else pd.DataFrame(columns=[*base, *COLUMNS])
    if notes:
        table.attrs["reason"] = f"{evalset.audb_name}/{evalset.split}: " + "; ".join(notes)
    categories = pd.DataFrame(cat_rows, columns=[*base, *CATEGORY_COLUMNS])
    return {"consistency": table, "consistency_categories": categories}
