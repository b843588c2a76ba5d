"""Fairness of the consistency AUC on a categorical corpus: the per-sex gap and the worst speaker.

A categorical corpus has no A/D/V gold, so the fairness tests of
:mod:`benchmark.analyses.fairness` (CCC per group) cannot run on it. The
consistency AUC (does a file of a high category get a higher prediction
than one of a low category?) is asked within groups instead
(:mod:`benchmark.analyses.consistency` writes the rows):

- per sex (groups ``female`` / ``male``): ``delta_auc`` = AUC within the
  sex − AUC of all files, with a bootstrap 95 % interval of the
  difference (:func:`delta_ci`: both AUCs on the same resample, so the
  overlap of the group with all files is accounted for). Judged by
  ``consistency-sex-delta-auc`` in ``thresholds.yaml``.
- per speaker (groups ``speaker:<id>``, for speakers with enough files
  on both sides), and one row ``worst-speaker`` per dimension
  (:func:`worst_speaker`): the lowest speaker AUC, with the smallest
  lower and the smallest upper bound over the speakers as its interval.
  Judged against the corpus threshold (``consistency-worst-speaker``): it
  passes when every speaker's interval lies above the threshold and
  fails when at least one speaker's interval lies wholly below it.
"""

from __future__ import annotations

import typing

import numpy as np

SPEAKER_PREFIX = "speaker:"
WORST = "worst-speaker"
MIN_SPEAKERS = 2
"""Speakers with an AUC row a ``worst-speaker`` row needs (one speaker is no spread)."""


def delta_ci(
    high: np.ndarray,
    low: np.ndarray,
    in_high: np.ndarray,
    in_low: np.ndarray,
    n: int,
    seed: int,
    auc: typing.Callable[[np.ndarray, np.ndarray], typing.Any],
) -> tuple[float, float]:
    r"""Bootstrap 95 % interval of AUC(group) − AUC(all).

    Args:
        high: predictions of all high files
        low: predictions of all low files
        in_high: boolean mask of the group's files among ``high``
        in_low: boolean mask of the group's files among ``low``
        n: resamples (NaN, NaN for 0)
        seed: seed of the resampling
        auc: the AUC of a high and a low array

    Resamples in which the group lost every file of a side are skipped.

    Examples:
        >>> from benchmark.analyses.consistency import auc
        >>> h, l_ = np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.1, 0.2, 0.3, 0.4])
        >>> m = np.array([True, True, False, False])
        >>> delta_ci(h, l_, m, m, 200, 0, auc)
        (0.0, 0.0)

    """
    if n <= 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n):
        ih = rng.integers(0, len(high), len(high))
        il = rng.integers(0, len(low), len(low))
        gh, gl = high[ih][in_high[ih]], low[il][in_low[il]]
        if len(gh) and len(gl):
            deltas.append(float(auc(gh, gl)) - float(auc(high[ih], low[il])))
    if not deltas:
        return np.nan, np.nan
    return float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5))


def worst_speaker(rows: typing.Sequence[dict]) -> dict | None:
    r"""The ``worst-speaker`` row of one dimension's ``speaker:<id>`` rows (None under :data:`MIN_SPEAKERS`).

    Its ``auc`` is the lowest speaker AUC; ``ci_low`` / ``ci_high`` are the
    smallest lower and upper bounds over the speakers, so the usual
    interval rule passes it only if every speaker's interval lies above
    the threshold and fails it if one lies wholly below.

    Examples:
        >>> rows = [{"group": "speaker:a", "auc": 0.9, "ci_low": 0.8, "ci_high": 0.95, "n_high": 10, "n_low": 12},
        ...         {"group": "speaker:b", "auc": 0.7, "ci_low": 0.65, "ci_high": 0.75, "n_high": 11, "n_low": 10}]
        >>> w = worst_speaker(rows)
        >>> w["group"], w["speaker"], w["auc"], w["ci_low"], w["ci_high"], w["n_speakers"]
        ('worst-speaker', 'b', 0.7, 0.65, 0.75, 2)

    """
    mine = [r for r in rows if str(r["group"]).startswith(SPEAKER_PREFIX)]
    if len(mine) < MIN_SPEAKERS:
        return None
    worst = min(mine, key=lambda r: r["auc"])
    return {
        **worst,
        "group": WORST,
        "speaker": worst["group"][len(SPEAKER_PREFIX) :],
        # np.min, not min: a NaN bound (no bootstrap) must stay NaN
        "ci_low": float(np.min([r["ci_low"] for r in mine])),
        "ci_high": float(np.min([r["ci_high"] for r in mine])),
        "n_speakers": len(mine),
    }
