"""Robustness: how predictions change when the input is perturbed.

For each condition of ``conditions.yaml`` (small changes, background
noise with an SNR sweep, channel) the model predicts on the split's files
perturbed in memory (:class:`benchmark.analyses.perturbations.memory.Perturber`,
seeded per file and condition), and per dimension we report, on the files
both runs scored:

* ``delta_ccc``: CCC(truth, perturbed) − CCC(truth, clean)
* ``unchanged_share``: share of files whose prediction moved by less
  than a threshold (0.05 on the 0..1 scale, as in ser-tests)
* ``mean_shift``: mean(perturbed) − mean(clean)

Options (``context.options``): ``conditions`` (names or groups, a list or
a comma-separated string; default all), ``conditions_file``,
``max_files`` (seeded subset of the split), ``unchanged_threshold``,
``babble`` / ``babble_files`` (:func:`babble_files`: the demo pool for demo data,
none for real data unless given).
"""

from __future__ import annotations

import logging
import typing

import numpy as np
import pandas as pd

from benchmark.analyses import perturbations
from benchmark.metrics import ccc as _ccc

logger = logging.getLogger(__name__)

UNCHANGED_THRESHOLD = 0.05
"""|Δ prediction| below which a prediction counts as unchanged (0..1 scale)."""

COLUMNS = (
    "condition",
    "condition_group",
    "condition_hash",
    "sweep",
    "snr_db",
    "dimension",
    "n",
    "ccc_clean",
    "ccc",
    "delta_ccc",
    "unchanged_share",
    "unchanged_threshold",
    "mean_shift",
)
"""Columns added to :meth:`Context.base_row` in the ``robustness`` table."""


def _common(*series: pd.Series) -> list[pd.Series]:
    r"""Restrict series to the index entries where all are non-NaN (first series' order)."""
    mask = pd.Series(True, index=series[0].index)
    for s in series:
        mask &= s.reindex(mask.index).notna()
    index = mask.index[mask.to_numpy()]
    return [s.reindex(index).astype("float64") for s in series]


def unchanged_share(clean: pd.Series, perturbed: pd.Series, threshold: float = UNCHANGED_THRESHOLD) -> float:
    r"""Share of files whose prediction moved by less than ``threshold``.

    Compared by index; files missing or NaN in either series are left
    out. NaN if none remain.

    Examples:
        >>> clean = pd.Series([0.5, 0.5, 0.5, 0.5], index=list("abcd"))
        >>> perturbed = pd.Series([0.5, 0.54, 0.56, 0.2], index=list("abcd"))
        >>> unchanged_share(clean, perturbed)
        0.5

    """
    clean, perturbed = _common(clean, perturbed)
    if not len(clean):
        return float("nan")
    return float(np.mean(np.abs(perturbed.to_numpy() - clean.to_numpy()) < threshold))


def mean_shift(clean: pd.Series, perturbed: pd.Series) -> float:
    r"""Mean perturbed minus mean clean prediction, on the files both have.

    Examples:
        >>> round(mean_shift(pd.Series([0.2, 0.4]), pd.Series([0.3, 0.6])), 6)
        0.15

    """
    clean, perturbed = _common(clean, perturbed)
    if not len(clean):
        return float("nan")
    return float(perturbed.mean() - clean.mean())


def delta_ccc(truth: pd.Series, clean: pd.Series, perturbed: pd.Series) -> float:
    r"""CCC(truth, perturbed) − CCC(truth, clean) on the files all three have.

    Examples:
        >>> truth = pd.Series([0.1, 0.5, 0.9])
        >>> delta_ccc(truth, truth, pd.Series([0.5, 0.5, 0.5]))
        -1.0

    """
    truth, clean, perturbed = _common(truth, clean, perturbed)
    return _ccc(truth, perturbed) - _ccc(truth, clean)


def select_conditions(conditions: list[dict], selection) -> list[dict]:
    r"""Pick conditions by name or group.

    Args:
        conditions: all conditions
        selection: ``None`` (every condition that runs by default: all but
            those marked ``default: false``), a comma-separated string, or a
            list of names, group names, ``'all'`` and condition dicts (used as given)

    Raises:
        perturbations.ConditionError: for a name that is neither a condition nor a group

    """
    if selection is None:
        return [c for c in conditions if c.get("default", True)]
    if isinstance(selection, str):
        selection = [s.strip() for s in selection.split(",") if s.strip()]
    if "all" in selection:
        selection = [c["name"] for c in conditions] + [s for s in selection if s != "all"]
    chosen, unknown = [], []
    for item in selection:
        if isinstance(item, dict):
            picked = [item]
        else:
            picked = [c for c in conditions if item in (c["name"], c["group"])]
            if not picked:
                unknown.append(item)
        chosen += [c for c in picked if c not in chosen]
    if unknown:
        names = ", ".join(c["name"] for c in conditions)
        groups = ", ".join(dict.fromkeys(c["group"] for c in conditions))
        raise perturbations.ConditionError(f"Unknown condition(s) {unknown}. Conditions: {names}. Groups: {groups}.")
    return chosen


def subset_files(files: pd.Index, max_files: int | None, seed: int) -> pd.Index:
    r"""At most ``max_files`` files, drawn with ``seed`` independent of the index order."""
    if not max_files or max_files >= len(files):
        return files
    pool = np.array(sorted(files))
    keep = set(np.random.default_rng(seed).choice(pool, size=int(max_files), replace=False))
    return files[[f in keep for f in files]]


def babble_files(options: dict):
    r"""The babble talkers of a run: ``None`` where it has none, and babble conditions are left out.

    ``options['babble_files']`` (a list of files) wins; else ``options['babble']``,
    a spec as :func:`benchmark.data.audio_files.resolve_files` reads it (a folder,
    list file or glob of speech recordings; ``'demo'``: the held-out talkers of the
    embedded demo pool). Without a spec, demo data babbles with the demo pool and
    real data has no babble: synthetic talkers would be another condition on real speech.
    """
    if options.get("babble_files") is not None:
        return options["babble_files"]
    spec = options.get("babble") or ("demo" if options.get("data", "demo") == "demo" else None)
    if spec is None:
        return None
    from benchmark.data.audio_files import resolve_files

    files, _ = resolve_files(spec, "demo-pool", "--babble")
    return pd.Index(files, name="file")


NO_BABBLE = "no babble talkers for real data: pass --babble SPEC (a folder, list file or glob of speech recordings)"


def condition_files(evalset, options: dict, seed: int) -> pd.Index:
    r"""The robustness subset of a split: seeded, drawn from all its files (so it does not move
    when a file is skipped); the analysis scores those the clean run scored."""
    return subset_files(evalset.files, options.get("max_files"), seed)


def condition_rows(
    condition: dict,
    truth: pd.DataFrame,
    clean: pd.DataFrame,
    perturbed: pd.DataFrame,
    dimensions: typing.Sequence[str],
    threshold: float = UNCHANGED_THRESHOLD,
) -> list[dict]:
    r"""Result rows of one condition, one per dimension (without the base row).

    ``clean`` and ``perturbed`` are indexed by the original files.
    """
    rows = []
    for dim in dimensions:
        if dim not in clean or dim not in perturbed or clean[dim].isna().all():
            continue  # a dimension the model does not predict is not scored
        t, c, p = _common(truth[dim], clean[dim], perturbed[dim])
        ccc_clean = _ccc(t, c) if len(t) else float("nan")
        ccc_pert = _ccc(t, p) if len(t) else float("nan")
        rows.append(
            {
                "condition": condition["name"],
                "condition_group": condition["group"],
                "sweep": condition.get("sweep", ""),
                "snr_db": float(condition["parameters"]["snr_db"]) if condition.get("sweep") else float("nan"),
                "dimension": dim,
                "n": len(t),
                "ccc_clean": ccc_clean,
                "ccc": ccc_pert,
                "delta_ccc": ccc_pert - ccc_clean,
                "unchanged_share": unchanged_share(c, p, threshold),
                "unchanged_threshold": threshold,
                "mean_shift": mean_shift(c, p),
            }
        )
    return rows


def run(context) -> dict[str, pd.DataFrame]:
    r"""Robustness rows for one model × split (table ``robustness``)."""
    options = context.options or {}
    evalset = context.evalset
    conditions = select_conditions(
        perturbations.load_conditions(options.get("conditions_file")), options.get("conditions")
    )
    threshold = float(options.get("unchanged_threshold", UNCHANGED_THRESHOLD))
    # only files the clean run scored: a file it skipped (unreadable, empty) has nothing to compare to
    files = condition_files(evalset, options, context.seed)
    files = files[files.isin(context.clean.dropna(how="all").index)]
    truth = evalset.truth.reindex(files)
    clean = context.clean.reindex(files)
    rows, notes = [], []
    for condition in conditions:
        condition = perturbations.check_condition(condition)
        babble = babble_files(options) if condition["type"] == "babble" else None
        if condition["type"] == "babble" and babble is None:
            notes.append(f"{condition['name']}: {NO_BABBLE}")
            continue
        digest = perturbations.condition_hash(condition, seed=context.seed, babble_files=babble)[:12]
        # perturbed in memory as the model read them; files that cannot be perturbed are the condition's skips
        predicted = context.predict(files, condition=condition)
        for row in condition_rows(condition, truth, clean, predicted, evalset.dimensions, threshold):
            rows.append({**context.base_row(), **row, "condition_hash": digest})
        logger.info("Robustness %s: %d files", condition["name"], len(predicted))
    columns = list(context.base_row()) + list(COLUMNS)
    table = pd.DataFrame(rows, columns=columns)
    if notes:
        table.attrs["reason"] = "; ".join(notes)
    return {"robustness": table}
