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
from benchmark.metrics import ccc as _ccc
from benchmark.metrics import ccc_rows, ccc_weighted, cluster_codes, cluster_weights, speaker_clusters, unit_of

logger = logging.getLogger(__name__)

THRESHOLD = 0.075
"""Largest allowed |CCC(group) − CCC(all)|."""

BINS = 10
"""Equal-width truth bins on 0..1 used for balancing."""

BOOTSTRAP = 1000
"""Bootstrap resamples for the confidence intervals."""

MIN_SAMPLES = 10
"""Files a speaker needs to be scored."""

MIN_GROUP_FILES = 30
r"""Files each sex needs in the balanced set for a ``fairness_sex`` row.

Below it no row is written and the table's reason says "too few files":
random predictions on random truth differ from the balanced set by up to
|ΔCCC| 0.38 at 30 files per group (0.25 at 82, 0.077 at 1000; 1000
simulations), so a pass at n=2 would say nothing. See ``docs/analyses.md``.
"""

GROUPS = ("female", "male")

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
    members = {g: np.flatnonzero(s == g) for g in GROUPS if (s == g).any()}
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
    ccc_all = _ccc(pd.Series(t), pd.Series(p))
    if clusters is None:
        deltas = _bootstrap_deltas(t, p, members, n_boot, seed)
    else:
        deltas = _cluster_deltas(t, p, members, cluster_codes(clusters), n_boot, seed)
    rows = []
    for group, pos in members.items():
        ccc_group = _ccc(pd.Series(t[pos]), pd.Series(p[pos]))
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
    from benchmark.analyses import pitch

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
