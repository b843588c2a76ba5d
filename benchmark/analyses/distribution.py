"""Distribution: does a model predict values spread like the gold standard?

Per dimension that both the model predicts and the split labels, the
Jensen–Shannon distance (base 2, so 0..1) between the histogram of the
predictions and the histogram of the gold standard, both on
:data:`BINS` equal-width bins of the 0..1 scale (values outside it fall
into the first or last bin). A model that always predicts the mean has
a high distance even where its CCC is fair; ser-tests' threshold is
0.2 (``thresholds.yaml``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.spatial.distance

BINS = 10
"""Equal-width bins on the 0..1 scale."""


def histogram(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    r"""Share of ``values`` in each of ``bins`` equal-width bins of 0..1 (outliers in the end bins).

    Examples:
        >>> histogram(np.array([0.05, 0.15, 0.15, 1.7]), bins=4).tolist()
        [0.75, 0.0, 0.0, 0.25]

    """
    values = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return counts / max(counts.sum(), 1)


def js_distance(truth: np.ndarray, prediction: np.ndarray, bins: int = BINS) -> float:
    r"""Jensen–Shannon distance (base 2, 0..1) between the histograms of two samples.

    Examples:
        >>> x = np.linspace(0, 1, 101)
        >>> js_distance(x, x)
        0.0
        >>> round(js_distance(x, np.full(101, 0.5)), 3)
        0.862

    """
    t, p = np.asarray(truth, float), np.asarray(prediction, float)
    keep = np.isfinite(t) & np.isfinite(p)
    if not keep.any():
        return float("nan")
    return float(scipy.spatial.distance.jensenshannon(histogram(t[keep], bins), histogram(p[keep], bins), base=2))


def run(context) -> dict[str, pd.DataFrame]:
    r"""Rows for table ``distribution``: one per dimension the model predicts and the split labels."""
    truth, pred = context.evalset.truth, context.clean
    rows = []
    for dim in context.evalset.dimensions:
        if dim not in context.entry.dimensions:
            continue
        t = truth[dim].reindex(pred.index).to_numpy(float)
        p = pred[dim].to_numpy(float)
        n = int((np.isfinite(t) & np.isfinite(p)).sum())
        rows.append({**context.base_row(), "dimension": dim, "n": n, "bins": BINS, "js_distance": js_distance(t, p)})
    return {"distribution": pd.DataFrame(rows)}
