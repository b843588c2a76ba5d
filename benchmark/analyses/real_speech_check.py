"""Real-speech checks of a distilled student against its teacher, on EmoDB's train speakers only.

A student distilled from a teacher should rank real speech as its
teacher does. On the *train* speakers of an original EmoDB release
(speakers 03, 08, 09, 10, 11, 13; the test speakers 12, 14, 15, 16 are
for reported numbers only and are never read here) two checks:

- arousal ranking: the AUC of the files of high-arousal emotions
  against those of low-arousal ones (placements of
  :mod:`benchmark.data.categories`: anger, happiness, fear high;
  sadness, boredom low) of the student lies within
  :data:`AUC_TOLERANCE` of its teacher's;
- sex gap: the student's arousal AUC among female speakers minus that
  among male speakers is at most ser-tests' fairness threshold
  (:data:`benchmark.analyses.balance.THRESHOLD`, 0.075) in size.

The AUC is :func:`benchmark.analyses.consistency.auc` (ties count one half).
"""

from __future__ import annotations

import os
import typing

import numpy as np
import pandas as pd

from benchmark.analyses.balance import THRESHOLD as SEX_GAP_THRESHOLD
from benchmark.analyses.consistency import auc
from benchmark.data.categories import placement

AUC_TOLERANCE = 0.02
"""Largest allowed |AUC(student) − AUC(teacher)| of the arousal ranking."""

SEXES = ("female", "male")


def read_signal(source: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    r"""An audio file mixed down to one channel and resampled to ``sampling_rate``; shape ``(1, samples)``."""
    import audiofile
    import audresample

    signal, rate = audiofile.read(str(source), always_2d=True)
    signal = audresample.remix(signal, mixdown=True)
    return audresample.resample(signal, rate, sampling_rate) if rate != sampling_rate else signal


def predict_files(model, sources: typing.Sequence[str]) -> np.ndarray:
    r"""A/D/V of each audio file, read by :func:`read_signal` at the model's rate; shape ``(n, 3)``."""
    out = [model(read_signal(s, model.sampling_rate), model.sampling_rate) for s in sources]
    return np.asarray(out, dtype=np.float64).reshape(len(out), -1)


def arousal_auc(arousal: np.ndarray, emotion: typing.Sequence[str], sex: typing.Sequence[str]) -> dict[str, float]:
    r"""Arousal AUC (high vs low emotions) overall and per sex, and the sex gap (female − male).

    Examples:
        >>> r = arousal_auc(np.array([0.9, 0.1, 0.8, 0.2]), ["anger", "sadness"] * 2, ["female"] * 2 + ["male"] * 2)
        >>> r["auc"], r["sex_gap"]
        (1.0, 0.0)

    """
    arousal = np.asarray(arousal, dtype=np.float64)
    emotion, sex = np.asarray(emotion, dtype=object), np.asarray(sex, dtype=object)
    places, unknown = placement(sorted(set(emotion)))
    if unknown:
        raise ValueError(f"emotions {unknown} have no place on arousal; map them in benchmark.data.categories")
    side = np.array([places[e].get("arousal", "") for e in emotion], dtype=object)

    def one(mask: np.ndarray) -> float:
        high, low = arousal[mask & (side == "high")], arousal[mask & (side == "low")]
        return float(auc(high, low)) if len(high) and len(low) else float("nan")

    result = {"auc": one(np.ones(len(arousal), bool))}
    for group in SEXES:
        result[f"auc_{group}"] = one(sex == group)
    result["sex_gap"] = result["auc_female"] - result["auc_male"]
    return result


def check(student: dict[str, float], teacher: dict[str, float]) -> dict[str, typing.Any]:
    r"""The two checks for scores of :func:`arousal_auc`; NaN scores fail.

    Examples:
        >>> s = {"auc": 0.90, "sex_gap": 0.05}
        >>> c = check(s, {"auc": 0.91, "sex_gap": 0.0})
        >>> c["auc_ok"], c["sex_gap_ok"], c["passed"]
        (True, True, True)
        >>> check({"auc": 0.85, "sex_gap": -0.08}, {"auc": 0.91})["passed"]
        False

    """
    diff = student["auc"] - teacher["auc"]
    auc_ok = bool(abs(diff) <= AUC_TOLERANCE)
    gap_ok = bool(abs(student["sex_gap"]) <= SEX_GAP_THRESHOLD)
    return {"auc_diff": float(diff), "auc_ok": auc_ok, "sex_gap_ok": gap_ok, "passed": auc_ok and gap_ok}


def compare(
    student_pred: np.ndarray, teacher_pred: np.ndarray, files: pd.DataFrame, student: str, teacher: str
) -> dict[str, typing.Any]:
    r"""One table row: both models' arousal scores on ``files`` (of :func:`train_files`) and the checks.

    ``*_pred`` are A/D/V predictions of shape ``(len(files), 3)`` in
    arousal, dominance, valence order.
    """
    if len(student_pred) != len(files) or len(teacher_pred) != len(files):
        raise ValueError(
            f"predictions of {student} ({len(student_pred)}) and {teacher} ({len(teacher_pred)}) "
            f"must cover the {len(files)} files"
        )
    s = arousal_auc(np.asarray(student_pred)[:, 0], files["emotion"], files["sex"])
    t = arousal_auc(np.asarray(teacher_pred)[:, 0], files["emotion"], files["sex"])
    row = {"student": student, "teacher": teacher, "n": len(files)}
    row.update({f"student_{k}": v for k, v in s.items()})
    row.update({f"teacher_{k}": v for k, v in t.items()})
    return {**row, **check(s, t)}
