"""Correctness: agreement of predictions with the gold standard.

Per dimension that both the model predicts and the split labels:
CCC with a seeded bootstrap 95% interval (whole speakers resampled where
the split has them, else files; column ``ci_unit``; option ``ci_unit='file'``
resamples files everywhere, as published intervals do), Pearson correlation and MAE,
on the files the model could score (skips are counted, not scored);
and how far the distribution of the predictions is from the gold
standard's (table ``distribution``, :mod:`benchmark.analyses.distribution`).
"""

from __future__ import annotations

import pandas as pd

from benchmark import metrics
from benchmark.analyses import distribution


def run(context) -> dict[str, pd.DataFrame]:
    r"""Score the clean predictions of ``context``; rows for tables ``correctness`` and ``distribution``."""
    truth = context.evalset.truth
    pred = context.clean
    n_boot = int(context.options.get("bootstrap", 1000))
    clusters = metrics.speaker_clusters(context.evalset.speaker, pred.index, context.options.get("ci_unit", "speaker"))
    rows = []
    for dim in context.evalset.dimensions:
        if dim not in context.entry.dimensions:
            continue
        t = truth[dim].reindex(pred.index)
        p = pred[dim]
        lo, hi = metrics.bootstrap_ci(t, p, n=n_boot, seed=context.seed, clusters=clusters)
        rows.append(
            {
                **context.base_row(),
                "dimension": dim,
                "role": context.entry.role,
                "n": int(pd.concat([t, p], axis=1).dropna().shape[0]),
                "n_skipped": int(len(truth) - len(pred)),
                "ccc": metrics.ccc(t, p),
                "ccc_ci_low": lo,
                "ccc_ci_high": hi,
                "ci_unit": metrics.unit_of(clusters),
                "pearson": metrics.pearson(t, p),
                "mae": metrics.mae(t, p),
            }
        )
    return {"correctness": pd.DataFrame(rows), **distribution.run(context)}
