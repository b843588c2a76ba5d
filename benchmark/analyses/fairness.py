"""Fairness: sex groups, pitch groups within each sex, and individual speakers.

Sex (as in ser-tests): the split is first balanced so that female and
male files have the same truth distribution (truth binned, equal counts
per bin drawn from each sex, seeded); then per dimension
``delta_ccc = CCC(group) − CCC(balanced set)``, with a stratified
bootstrap 95 % confidence interval. A group passes if
``|delta_ccc| <= 0.075``, the largest difference random predictions
reach in ser-tests' simulations.

Pitch (as ser-tests): low, medium and high voices within each sex
(:mod:`benchmark.analyses.pitch`), ``delta_ccc`` against the sex's files.

Speakers: CCC and MAE per speaker with at least 10 files, their
quartiles over speakers, and Spearman's rho between the speakers'
true and predicted mean values (can the model rank speakers?).

Options (``context.options``): ``fairness_threshold``, ``fairness_bins``,
``bootstrap`` (resamples, 0 for none), ``speaker_min_samples``,
``fairness_min_files`` (each sex's files in the balanced set, :data:`MIN_GROUP_FILES`).
A split without sex or speaker labels gives empty tables whose
``.attrs['reason']`` says why.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import scipy.stats

from benchmark import DIMENSIONS
from benchmark.analyses import pitch
from benchmark.analyses.balance import (
    BINS,
    BOOTSTRAP,
    SEXES,
    THRESHOLD,
    balance_by_truth,
    group_deltas,
    normalize_sex,
)
from benchmark.metrics import ccc as _ccc
from benchmark.metrics import speaker_clusters

logger = logging.getLogger(__name__)

MIN_SAMPLES = 10
"""Files a speaker needs to be scored."""

MIN_GROUP_FILES = 30
r"""Files each sex needs in the balanced set for a ``fairness_sex`` row.

Below it no row is written and the table's reason says "too few files":
random predictions on random truth differ from the balanced set by up to
|ΔCCC| 0.38 at 30 files per group (0.25 at 82, 0.077 at 1000; 1000
simulations), so a pass at n=2 would say nothing. See ``docs/analyses.md``.
"""

SEX_COLUMNS = (
    "dimension",
    "group",
    "n",
    "ccc_group",
    "ccc_all",
    "delta_ccc",
    "ci_low",
    "ci_high",
    "ci_unit",
    "threshold",
    "passed",
)
SPEAKER_COLUMNS = ("dimension", "speaker", "sex", "n", "ccc", "mae", "true_mean", "pred_mean")
SUMMARY_COLUMNS = (
    "dimension",
    "n_speakers",
    "min_samples",
    "ccc_median",
    "ccc_q25",
    "ccc_q75",
    "mae_median",
    "mae_q25",
    "mae_q75",
    "spearman_rho",
    "spearman_p",
)


def _bootstrap_n(value) -> int:
    if value is True or value is None:
        return BOOTSTRAP
    return int(value or 0)


def sex_rows(
    truth: pd.Series,
    prediction: pd.Series,
    sex: pd.Series,
    dimension: str,
    *,
    bins: int = BINS,
    threshold: float = THRESHOLD,
    n_boot: int = BOOTSTRAP,
    seed: int = 0,
    min_files: int = MIN_GROUP_FILES,
    notes: list[str] | None = None,
    speaker: pd.Series | None = None,
) -> list[dict]:
    r"""Rows of the ``fairness_sex`` table for one dimension (without the base row).

    No rows if a group has fewer than ``min_files`` files in the balanced
    set; then a "too few files" note is appended to ``notes``. With
    ``speaker`` (see :func:`benchmark.metrics.speaker_clusters`) the
    interval resamples whole speakers.
    """
    sex = normalize_sex(sex.reindex(truth.index))
    valid = truth.notna() & prediction.reindex(truth.index).notna() & sex.notna()
    index = balance_by_truth(truth[valid], sex[valid], bins=bins, seed=seed)
    if not len(index):
        return []
    t = truth.reindex(index).to_numpy(float)
    p = prediction.reindex(index).to_numpy(float)
    s = sex.reindex(index).to_numpy(object)
    members = {g: np.flatnonzero(s == g) for g in SEXES if (s == g).any()}
    sizes = {g: len(pos) for g, pos in members.items()}
    if min(sizes.values()) < min_files:
        if notes is not None:
            counts = ", ".join(f"{g} {n}" for g, n in sizes.items())
            notes.append(f"{dimension}: too few files ({counts} after balancing; each sex needs {min_files})")
        return []
    clusters = None if speaker is None else speaker.reindex(index).to_numpy(object)
    rows = []
    for row in group_deltas(t, p, members, n_boot=n_boot, seed=seed, clusters=clusters):
        delta = row["delta_ccc"]
        rows.append(
            {
                "dimension": dimension,
                **row,
                "threshold": threshold,
                "passed": bool(abs(delta) <= threshold) if np.isfinite(delta) else None,
            }
        )
    return rows


def speaker_rows(
    truth: pd.Series,
    prediction: pd.Series,
    speaker: pd.Series,
    sex: pd.Series | None,
    dimension: str,
    *,
    min_samples: int = MIN_SAMPLES,
) -> tuple[list[dict], dict]:
    r"""Per-speaker rows (``speakers`` table) and the summary row (``fairness_speaker``)."""
    speaker = speaker.reindex(truth.index)
    valid = truth.notna() & prediction.reindex(truth.index).notna() & speaker.notna()
    df = pd.DataFrame(
        {
            "truth": truth[valid].astype("float64"),
            "pred": prediction.reindex(truth.index)[valid].astype("float64"),
            "speaker": speaker[valid].astype("string"),
        }
    )
    sexes = {}
    if sex is not None:
        labelled = pd.DataFrame({"speaker": speaker.astype("string"), "sex": normalize_sex(sex.reindex(truth.index))})
        sexes = labelled.dropna().groupby("speaker")["sex"].first().to_dict()
    rows = []
    for spk, part in df.groupby("speaker", sort=True):
        if len(part) < min_samples:
            continue
        rows.append(
            {
                "dimension": dimension,
                "speaker": spk,
                "sex": sexes.get(spk, ""),
                "n": len(part),
                "ccc": _ccc(part["truth"], part["pred"]),
                "mae": float(np.mean(np.abs(part["truth"] - part["pred"]))),
                "true_mean": float(part["truth"].mean()),
                "pred_mean": float(part["pred"].mean()),
            }
        )
    per = pd.DataFrame(rows, columns=list(SPEAKER_COLUMNS))
    summary = {"dimension": dimension, "n_speakers": len(per), "min_samples": min_samples}
    for metric in ("ccc", "mae"):
        values = per[metric].to_numpy(float)
        q25, q50, q75 = (
            np.nanpercentile(values, [25, 50, 75]) if np.isfinite(values).any() else (np.nan, np.nan, np.nan)
        )
        summary.update({f"{metric}_median": float(q50), f"{metric}_q25": float(q25), f"{metric}_q75": float(q75)})
    rho = pval = np.nan
    if len(per) >= 3:
        with warnings.catch_warnings():  # constant speaker means: rho is undefined (NaN)
            warnings.simplefilter("ignore")
            rho, pval = scipy.stats.spearmanr(per["true_mean"], per["pred_mean"])
    summary.update({"spearman_rho": float(rho), "spearman_p": float(pval)})
    return rows, summary


def _empty(columns, base: dict, reason: str) -> pd.DataFrame:
    frame = pd.DataFrame(columns=list(base) + list(columns))
    frame.attrs["reason"] = reason
    return frame


def run(context) -> dict[str, pd.DataFrame]:
    r"""Fairness rows for one model × split (``fairness_sex``, ``fairness_pitch``, ``fairness_speaker``, ``speakers``)."""
    options = context.options or {}
    evalset = context.evalset
    base = context.base_row()
    threshold = float(options.get("fairness_threshold", THRESHOLD))
    bins = int(options.get("fairness_bins", BINS))
    n_boot = _bootstrap_n(options.get("bootstrap", BOOTSTRAP))
    min_samples = int(options.get("speaker_min_samples", MIN_SAMPLES))
    min_files = int(options.get("fairness_min_files", MIN_GROUP_FILES))
    unit = options.get("ci_unit", "speaker")
    clean = context.clean.reindex(evalset.files)
    dimensions = [d for d in evalset.dimensions if d in clean and clean[d].notna().any()]

    if evalset.sex is None:
        sex_table = _empty(SEX_COLUMNS, base, f"{evalset.audb_name}/{evalset.split}: no sex labels")
    else:
        rows, notes = [], []
        for dim in dimensions:
            rows += sex_rows(
                evalset.truth[dim],
                clean[dim],
                evalset.sex,
                dim,
                bins=bins,
                threshold=threshold,
                n_boot=n_boot,
                seed=_seed(context.seed, dim),
                min_files=min_files,
                notes=notes,
                speaker=speaker_clusters(evalset.speaker, evalset.files, unit),
            )
        sex_table = pd.DataFrame([{**base, **r} for r in rows], columns=list(base) + list(SEX_COLUMNS))
        if notes:
            sex_table.attrs["reason"] = f"{evalset.audb_name}/{evalset.split}: " + "; ".join(notes)
        elif not rows:
            sex_table.attrs["reason"] = f"{evalset.audb_name}/{evalset.split}: needs files of both sexes"

    if evalset.speaker is None:
        reason = f"{evalset.audb_name}/{evalset.split}: no speaker labels"
        speakers = _empty(SPEAKER_COLUMNS, base, reason)
        summary = _empty(SUMMARY_COLUMNS, base, reason)
    else:
        per, sums = [], []
        for dim in dimensions:
            rows, row = speaker_rows(
                evalset.truth[dim],
                clean[dim],
                evalset.speaker,
                evalset.sex,
                dim,
                min_samples=min_samples,
            )
            per += rows
            sums.append(row)
        speakers = pd.DataFrame([{**base, **r} for r in per], columns=list(base) + list(SPEAKER_COLUMNS))
        summary = pd.DataFrame([{**base, **r} for r in sums], columns=list(base) + list(SUMMARY_COLUMNS))
    pitch_table = _pitch_table(context, dimensions, bins, threshold, n_boot, min_files, unit)
    tables = {
        "fairness_sex": sex_table,
        "fairness_speaker": summary,
        "speakers": speakers,
        "fairness_pitch": pitch_table,
    }
    for name, table in tables.items():
        if "reason" in table.attrs:
            logger.info("Fairness table %s left empty: %s", name, table.attrs["reason"])
    return tables


def _pitch_table(context, dimensions, bins, threshold, n_boot, min_files, unit) -> pd.DataFrame:
    evalset, base = context.evalset, context.base_row()
    if evalset.sex is None:
        return _empty(pitch.COLUMNS, base, f"{evalset.audb_name}/{evalset.split}: no sex labels")
    clean = context.clean.reindex(evalset.files)
    f0 = pitch.split_f0(evalset)
    rows, notes = [], []
    for dim in dimensions:
        rows += pitch.pitch_rows(
            evalset.truth[dim],
            clean[dim],
            evalset.sex,
            f0,
            dim,
            bins=bins,
            threshold=threshold,
            n_boot=n_boot,
            seed=_seed(context.seed, dim),
            min_files=min_files,
            notes=notes,
            speaker=speaker_clusters(evalset.speaker, evalset.files, unit),
        )
    table = pd.DataFrame([{**base, **r} for r in rows], columns=list(base) + list(pitch.COLUMNS))
    if notes:
        table.attrs["reason"] = f"{evalset.audb_name}/{evalset.split}: " + "; ".join(notes)
    elif not rows:
        table.attrs["reason"] = f"{evalset.audb_name}/{evalset.split}: needs voiced files in three pitch groups"
    return table


def _seed(seed: int, dimension: str) -> int:
    # one stream per dimension: results do not depend on which other dimensions a model has
    return int(seed) * len(DIMENSIONS) + DIMENSIONS.index(dimension)
