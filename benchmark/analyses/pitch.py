"""Fairness by pitch: low, medium and high voices within each sex (as ser-tests).

Each file's pitch is the median fundamental frequency of its voiced
frames, tracked with YIN (:func:`median_f0`; a few milliseconds a file). Within each sex the files are cut into three
groups at the sex's pitch tertiles. Each sex is then balanced by truth
as for the sex test (:func:`benchmark.analyses.balance.balance_by_truth`),
and per dimension ``delta_ccc = CCC(pitch group) − CCC(the sex's balanced
files)``, with a bootstrap 95 % interval, judged against the sex test's
threshold (0.075).

Pitch is a property of the audio, not of the model: it is computed once
per split and cached under the split's data fingerprint.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from benchmark import metrics
from benchmark.analyses import balance
from benchmark.paths import cache_dir

GROUPS = ("low", "medium", "high")
COLUMNS = (
    "dimension",
    "sex",
    "group",
    "n",
    "f0_low_hz",
    "f0_high_hz",
    "ccc_group",
    "ccc_sex",
    "delta_ccc",
    "ci_low",
    "ci_high",
    "ci_unit",
    "threshold",
)


F0_RANGE_HZ = (60.0, 500.0)
"""Pitch search range: below and above every adult voice."""

YIN_THRESHOLD = 0.15
"""Largest normalised difference (YIN's CMNDF) that counts as a voiced frame."""


def median_f0(
    signal: np.ndarray, sampling_rate: int, *, frame_seconds: float = 0.04, hop_seconds: float = 0.01
) -> float:
    r"""Median F0 in Hz over the voiced frames of ``signal`` (NaN if none is voiced).

    YIN (de Cheveigné & Kawahara, 2002): per frame, the cumulative mean
    normalised difference function over lags in :data:`F0_RANGE_HZ`; the
    first lag whose value dips below :data:`YIN_THRESHOLD`, refined to its
    local minimum and by parabolic interpolation, is the period. Frames
    without such a dip, or quieter than 1 % of the loudest frame, are
    unvoiced.

    Examples:
        >>> t = np.arange(32000) / 16000
        >>> voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
        >>> round(median_f0(0.2 * voice, 16000))
        150
        >>> bool(np.isnan(median_f0(np.random.default_rng(0).normal(size=16000), 16000)))
        True

    """
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    frame, hop = int(frame_seconds * sampling_rate), int(hop_seconds * sampling_rate)
    min_lag = int(sampling_rate / F0_RANGE_HZ[1])
    max_lag = min(int(np.ceil(sampling_rate / F0_RANGE_HZ[0])), frame // 2)
    if x.size < frame + max_lag:
        return float("nan")
    starts = np.arange(0, x.size - frame - max_lag + 1, hop)
    frames = x[starts[:, None] + np.arange(frame + max_lag)]
    energy = (frames[:, :frame] ** 2).mean(1)
    frames, starts = frames[energy >= 1e-4 * energy.max()], starts[energy >= 1e-4 * energy.max()]
    # difference function d(tau) = sum (x_j - x_{j+tau})^2 over the frame, for all lags at once (FFT)
    n = 1 << int(np.ceil(np.log2(2 * (frame + max_lag))))
    spec = np.fft.rfft(frames, n)
    head = frames[:, :frame]
    corr = np.fft.irfft(spec * np.conj(np.fft.rfft(head, n)), n)[:, : max_lag + 1]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    tail = sq[:, lags + frame] - sq[:, lags]
    diff = sq[:, frame][:, None] + tail - 2 * corr
    diff[:, 0] = 0
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    cmndf = np.ones_like(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        cmndf[:, 1:] = np.where(cum > 0, diff[:, 1:] / cum, 1.0)
    f0 = []
    for row in cmndf:
        below = np.flatnonzero(row[min_lag:] < YIN_THRESHOLD)
        if not below.size:
            continue
        lag = min_lag + below[0]
        while lag + 1 <= max_lag and row[lag + 1] < row[lag]:
            lag += 1
        if 0 < lag < max_lag:  # parabolic interpolation of the minimum
            a, b, c = row[lag - 1], row[lag], row[lag + 1]
            shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
        else:
            shift = 0.0
        f0.append(sampling_rate / (lag + shift))
    return float(np.median(f0)) if f0 else float("nan")


def split_f0(evalset) -> pd.Series:
    r"""Median F0 of every file of ``evalset``, cached under the split's data fingerprint."""
    from benchmark import results
    from benchmark.analyses.perturbations import read_mono

    folder = cache_dir("pitch", f"{evalset.audb_name}-{evalset.version}-{evalset.split}-{evalset.fingerprint[:12]}")
    path = folder / "f0.csv"
    keys = [os.path.relpath(f, evalset.root) for f in evalset.files]
    if path.exists():
        cached = pd.read_csv(path, index_col="file", dtype={"file": str})["f0_hz"]
        if set(keys) <= set(cached.index):
            return pd.Series(cached.reindex(keys).to_numpy(float), index=evalset.files, name="f0_hz")
    values = []
    for file in evalset.files:
        try:
            values.append(median_f0(read_mono(file), 16000))
        except Exception:  # an unreadable file has no pitch; it is left out of the pitch groups
            values.append(float("nan"))
    table = pd.DataFrame({"file": keys, "f0_hz": values})
    results.atomic_write_text(path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    return pd.Series(values, index=evalset.files, name="f0_hz", dtype=float)


def pitch_groups(f0: pd.Series, sex: pd.Series) -> pd.Series:
    r"""``'low'``, ``'medium'`` or ``'high'`` per file: the tertiles of pitch within each sex.

    Examples:
        >>> f0 = pd.Series([100, 110, 120, 200, 210, 220.0])
        >>> sex = pd.Series(["male"] * 3 + ["female"] * 3)
        >>> pitch_groups(f0, sex).tolist()
        ['low', 'medium', 'high', 'low', 'medium', 'high']

    """
    sex = balance.normalize_sex(sex.reindex(f0.index))
    out = pd.Series(pd.NA, index=f0.index, dtype="string")
    for s in ("female", "male"):
        members = f0[(sex == s).fillna(False).to_numpy(bool) & f0.notna().to_numpy()]
        if len(members) < len(GROUPS):
            continue
        ranks = members.rank(method="first").to_numpy()  # ties broken by file order: every file gets a group
        cut = np.minimum((ranks - 1) * len(GROUPS) // len(members), len(GROUPS) - 1).astype(int)
        out[members.index] = [GROUPS[c] for c in cut]
    return out


def pitch_rows(
    truth: pd.Series,
    prediction: pd.Series,
    sex: pd.Series,
    f0: pd.Series,
    dimension: str,
    *,
    bins: int = balance.BINS,
    threshold: float = balance.THRESHOLD,
    n_boot: int = balance.BOOTSTRAP,
    seed: int = 0,
    min_files: int = 0,
    notes: list[str] | None = None,
    speaker: pd.Series | None = None,
) -> list[dict]:
    r"""Rows of the ``fairness_pitch`` table for one dimension (without the base row).

    A sex whose smallest pitch group has fewer than ``min_files`` files
    after balancing gets no rows; a "too few files" note goes to ``notes``.
    With ``speaker`` the interval resamples whole speakers of the sex
    (files where the sex has fewer than :data:`benchmark.metrics.MIN_CLUSTERS`).
    """
    sex = balance.normalize_sex(sex.reindex(truth.index))
    groups = pitch_groups(f0.reindex(truth.index), sex)
    valid = truth.notna() & prediction.reindex(truth.index).notna() & groups.notna()
    rows = []
    for s in ("female", "male"):
        in_sex = valid & (sex == s).fillna(False)
        index = balance.balance_by_truth(truth[in_sex], groups[in_sex], bins=bins, seed=seed)
        if not len(index):
            continue
        t, p = truth.reindex(index).to_numpy(float), prediction.reindex(index).to_numpy(float)
        g, hz = groups.reindex(index).to_numpy(object), f0.reindex(index).to_numpy(float)
        members = {name: np.flatnonzero(g == name) for name in GROUPS if (g == name).any()}
        if min(len(pos) for pos in members.values()) < min_files:
            if notes is not None:
                counts = ", ".join(f"{name} {len(pos)}" for name, pos in members.items())
                notes.append(
                    f"{dimension}, {s}: too few files ({counts} after balancing; each group needs {min_files})"
                )
            continue
        clusters = metrics.speaker_clusters(speaker, index) if speaker is not None else None
        clusters = None if clusters is None else clusters.to_numpy(object)
        for row in balance.group_deltas(t, p, members, n_boot=n_boot, seed=seed, clusters=clusters):
            pos = members[row["group"]]
            rows.append(
                {
                    "dimension": dimension,
                    "sex": s,
                    "group": row["group"],
                    "n": row["n"],
                    "f0_low_hz": float(hz[pos].min()),
                    "f0_high_hz": float(hz[pos].max()),
                    "ccc_group": row["ccc_group"],
                    "ccc_sex": row["ccc_all"],
                    "delta_ccc": row["delta_ccc"],
                    "ci_low": row["ci_low"],
                    "ci_high": row["ci_high"],
                    "ci_unit": row["ci_unit"],
                    "threshold": threshold,
                }
            )
    return rows
