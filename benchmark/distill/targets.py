"""The distillation targets, measured: how closely a distilled student follows its teacher.

A student's fp32 and int8 ONNX folders are scored through the benchmark's
own ``audonnx`` loader (exactly as ``python -m benchmark run`` scores them)
against the teacher on whole, clean files of a labelled demo split, by
default msppodcast ``test-1``, which distillation never trains or selects
on. Each CCC comes with a 95 % bootstrap interval over the files and each
int8 loss with a paired one (the same resampled files for both models).

:func:`checks` judges a report against :data:`TARGETS` on the figures
themselves; the intervals say how near the edge a figure is.
``scripts/distill_targets.py`` adds the wall time of the default run and
writes the report to ``targets.json``; the leaderboard's model pages show it.
"""

from __future__ import annotations

import json
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, ccc_columns, ccc_finite

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark import Predictor

TARGETS = {"wall_minutes": 15.0, "ccc_arousal": 0.90, "ccc_mean": 0.80, "int8_loss": 0.01, "voice_shift_arousal": 0.85}
"""The distillation targets: the default run's wall time on a 2-core CPU, arousal and mean CCC against the
teacher, the int8 loss per dimension, and arousal CCC against the teacher on voice-shifted test-1 audio
(all shifts pooled)."""

SEX_SPLITS = ("test-1", "test-2")
"""The demo msppodcast splits the per-sex agreement is measured on."""

BOOTSTRAP = 1000
"""Resamples of the files for the 95 % intervals (seed 0, so a re-run gives the same ones)."""


def score(
    student: Path,
    teacher: Predictor,
    *,
    dataset: str = "msppodcast",
    split: str = "test-1",
    data: str = "demo",
    resamples: int = BOOTSTRAP,
    voice_shifts: typing.Sequence[str] = (),
    sex_splits: typing.Sequence[str] = (),
) -> dict:
    r"""CCC of a student's fp32 and int8 folders against the teacher (and the gold labels) on a split.

    Args:
        student: the fp32 audonnx folder; the int8 one is ``<student>-int8`` next to it
        teacher: the teacher; its outputs on the split's files are cached
        dataset: registry name of the labelled dataset
        split: its split
        data: ``'demo'`` or ``'real'`` (see :func:`benchmark.data.datasets.load_split`)
        resamples: bootstrap resamples of the files
        voice_shifts: names of :data:`benchmark.analyses.perturbations.voice.VOICE_SHIFTS` to
            measure the fp32 student's agreement under (``voice_shift``,
            :func:`voice_shift_agreement`); empty: none
        sex_splits: splits of ``dataset`` to measure the fp32 student's
            agreement per sex on (``sex_agreement``, :func:`sex_agreement`)

    Returns:
        the report: per model (``fp32``, ``int8``) the artefact ``sha256``, CCC
        against the teacher with intervals (``ccc_vs_teacher``,
        ``ccc_vs_teacher_ci95``), the same without files whose teacher output
        is off the scale, CCC against gold, seconds per file; the int8 loss
        (``CCC(fp32) − CCC(int8)``) with paired intervals, the teacher's CCC
        against gold, the split's provenance

    """
    from benchmark import load_split
    from benchmark.distill import annotate
    from benchmark.distill.config import int8_folder
    from benchmark.distill.export import load_export

    student = Path(student)
    evalset = load_split(dataset, split, data=data)
    files = [str(f) for f in evalset.files]
    teacher_pred, audio, skipped, _ = annotate.annotate_files(teacher, files, label=f"targets-{split}")
    signals = list(audio)  # read before the clock starts: seconds per file are the model's
    truth = evalset.truth.copy()
    truth.index = truth.index.astype(str)
    truth = truth.loc[teacher_pred.index]
    report = {"split": evalset.provenance(), "files": len(teacher_pred), "skipped": len(skipped), "models": {}}
    predictions = {}
    for label, folder in (("fp32", student), ("int8", int8_folder(student))):
        model = load_export(folder, f"{student.name}-{label}")
        report["models"][label], predictions[label] = _model_figures(
            model, folder, signals, teacher_pred, truth, resamples
        )
    report["teacher_ccc_vs_gold"] = {
        d: ccc_finite(truth[d].to_numpy(), teacher_pred[d].to_numpy()) for d in DIMENSIONS if d in truth
    }
    report.update(_int8_loss(report, teacher_pred, predictions, resamples))
    report["bootstrap"] = {"resamples": resamples, "level": 0.95, "seed": 0}
    if voice_shifts or sex_splits:
        fp32_model = load_export(student, f"{student.name}-fp32")
    if voice_shifts:
        report["voice_shift"] = voice_shift_agreement(fp32_model, teacher, signals, voice_shifts)
    if sex_splits:
        report["sex_agreement"] = {}
        for name in sex_splits:
            split_set = evalset if name == split else load_split(dataset, name, data=data)
            known = predictions["fp32"] if name == split else None
            report["sex_agreement"][name] = sex_agreement(
                fp32_model, teacher, split_set, known, label=f"targets-{name}"
            )
    return report


def _model_figures(
    model, folder: Path, signals: list[np.ndarray], teacher_pred: pd.DataFrame, truth: pd.DataFrame, resamples: int
) -> tuple[dict, np.ndarray]:
    r"""One exported model's part of the :func:`score` report, and its outputs on ``signals``."""
    from benchmark import artifact_sha256, bootstrap_ccc_columns
    from benchmark.distill import annotate

    start = time.perf_counter()
    pred = np.stack([model(signal, 16000) for signal in signals])
    seconds = (time.perf_counter() - start) / len(pred)
    vs_teacher = {d: ccc_finite(teacher_pred[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS)}
    vs_teacher["mean"] = float(np.mean(list(vs_teacher.values())))
    intervals = bootstrap_ccc_columns(teacher_pred[list(DIMENSIONS)].to_numpy(), pred, DIMENSIONS, n=resamples)
    # for reference only: without files where the teacher itself fails (off-scale outputs)
    sane = annotate.in_range(teacher_pred.to_numpy())
    vs_sane = {d: ccc_finite(teacher_pred[d].to_numpy()[sane], pred[sane, i]) for i, d in enumerate(DIMENSIONS)}
    vs_sane["mean"] = float(np.mean(list(vs_sane.values())))
    vs_gold = {d: ccc_finite(truth[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS) if d in truth}
    figures = {
        "path": str(folder),
        "sha256": artifact_sha256(folder, "audonnx"),
        "ccc_vs_teacher": vs_teacher,
        "ccc_vs_teacher_ci95": {d: list(v) for d, v in intervals.items()},
        "ccc_vs_teacher_in_range": vs_sane,
        "teacher_off_scale_files": int((~sane).sum()),
        "ccc_vs_gold": vs_gold,
        "seconds_per_file": seconds,
    }
    return figures, pred


def _int8_loss(report: dict, teacher_pred: pd.DataFrame, predictions: dict[str, np.ndarray], resamples: int) -> dict:
    r"""``CCC(fp32) − CCC(int8)`` against the teacher per dimension, with paired bootstrap intervals."""
    from benchmark import paired_bootstrap

    fp32, int8 = (report["models"][k]["ccc_vs_teacher"] for k in ("fp32", "int8"))
    index = teacher_pred.index
    paired = {
        d: paired_bootstrap(
            teacher_pred[d],
            pd.Series(predictions["fp32"][:, i], index),
            pd.Series(predictions["int8"][:, i], index),
            n=resamples,
        )
        for i, d in enumerate(DIMENSIONS)
    }
    return {
        "int8_loss": {d: fp32[d] - int8[d] for d in fp32},
        "int8_loss_ci95": {d: [v["ci_low"], v["ci_high"]] for d, v in paired.items()},
    }


def voice_shift_agreement(
    model: typing.Callable[[np.ndarray, int], np.ndarray],
    teacher: Predictor,
    signals: typing.Sequence[np.ndarray],
    conditions: typing.Sequence[str],
    *,
    batch_size: int = 64,
) -> dict:
    r"""How well a student tracks its teacher when the voice is shifted (pitch or formants).

    Every signal is shifted by every condition
    (:func:`benchmark.analyses.perturbations.voice.voice_shift`: pitch by semitones with
    the formants kept, or formants by a factor with the pitch kept); the
    teacher and the student each predict the shifted audio, so the
    figure says whether the student follows the *teacher's* reaction to a
    voice it was not trained on, not whether either is right. The shifts
    draw nothing at random: a file's shifted audio depends on the file
    and the condition only.

    Args:
        model: the student, ``model(signal, 16000)`` → A/D/V
        teacher: the teacher
        signals: mono 16 kHz signals (the split's whole, clean files)
        conditions: names of :data:`benchmark.analyses.perturbations.voice.VOICE_SHIFTS`
        batch_size: signals per teacher call

    Returns:
        ``conditions``: CCC per condition and dimension (and mean);
        ``pooled``: CCC over all conditions' files together (the target
        reads its arousal); ``worst``: the lowest condition per dimension;
        ``files``: files per condition

    """
    from benchmark import voice
    from benchmark.distill import annotate

    per_condition, teacher_all, student_all = {}, [], []
    for name in conditions:
        shifted = [voice.voice_shift(s, name) for s in signals]
        t, _ = annotate.run_teacher(teacher, shifted, [f"{name} file {i}" for i in range(len(shifted))], batch_size)
        p = np.stack([model(s, 16000) for s in shifted])
        per_condition[name] = ccc_columns(t.astype(np.float64), p, DIMENSIONS)
        teacher_all.append(t)
        student_all.append(p)
    pooled = ccc_columns(np.concatenate(teacher_all).astype(np.float64), np.concatenate(student_all), DIMENSIONS)
    worst = {d: min(c[d] for c in per_condition.values()) for d in pooled}
    return {
        "conditions": per_condition,
        "pooled": pooled,
        "worst": worst,
        "files": len(signals),
        "shifts": {name: list(voice.VOICE_SHIFTS[name]) for name in conditions},
    }


def sex_agreement(
    model: typing.Callable[[np.ndarray, int], np.ndarray],
    teacher: Predictor,
    evalset,
    predictions: np.ndarray | None = None,
    *,
    label: str = "targets",
) -> dict:
    r"""CCC(student, teacher) within each sex of a split, and the gap female − male.

    The distillation must not add a sex bias its teacher does not have:
    a student that follows the teacher less closely for one sex is
    biased against it relative to the teacher, whatever the gold labels say.

    Args:
        model: the student, ``model(signal, 16000)`` → A/D/V
        teacher: the teacher (outputs on the split's files are cached)
        evalset: the split (:class:`benchmark.data.datasets.EvalSet`) with sex labels
        predictions: the student's outputs on the split's readable files, if known
        label: name of the teacher cache entry

    Returns:
        per sex the CCC per dimension (and mean) and the number of files;
        ``gap``: female minus male per dimension

    Raises:
        ValueError: if the split has no sex labels

    """
    from benchmark.distill import annotate

    if evalset.sex is None:
        raise ValueError(
            f"{evalset.provenance().get('dataset')} {evalset.split}: no sex labels; the per-sex "
            "agreement needs a split with a sex column (datasets.yaml 'sex')."
        )
    teacher_pred, audio, _, _ = annotate.annotate_files(teacher, [str(f) for f in evalset.files], label=label)
    if predictions is None:
        predictions = np.stack([model(s, 16000) for s in audio])
    sex = evalset.sex.copy()
    sex.index = sex.index.astype(str)
    sex = sex.reindex(teacher_pred.index).astype(str).to_numpy()
    values = teacher_pred[list(DIMENSIONS)].to_numpy()
    report = {"split": evalset.split}
    for group in ("female", "male"):
        mask = sex == group
        report[group] = {**ccc_columns(values[mask], predictions[mask], DIMENSIONS), "files": int(mask.sum())}
    report["gap"] = {d: report["female"][d] - report["male"][d] for d in (*DIMENSIONS, "mean")}
    return report


def checks(report: dict) -> dict[str, bool]:
    r"""Which targets a report meets; the wall time only if the report has a timing.

    Examples:
        >>> report = {"models": {"fp32": {"ccc_vs_teacher": {"arousal": 0.9, "mean": 0.79}}},
        ...           "int8_loss": {"arousal": 0.01, "mean": -0.002}, "timing": {"wall_seconds": 901}}
        >>> checks(report)  # doctest: +NORMALIZE_WHITESPACE
        {'CCC(student, teacher) arousal >= 0.90': True, 'CCC(student, teacher) mean A/D/V >= 0.80': False,
         'int8 loses <= 0.01 CCC (every dimension)': True, 'default distill <= 15 min wall': False}

    """
    fp32 = report["models"]["fp32"]["ccc_vs_teacher"]
    met = {
        "CCC(student, teacher) arousal >= 0.90": fp32["arousal"] >= TARGETS["ccc_arousal"],
        "CCC(student, teacher) mean A/D/V >= 0.80": fp32["mean"] >= TARGETS["ccc_mean"],
        "int8 loses <= 0.01 CCC (every dimension)": all(
            v <= TARGETS["int8_loss"] for v in report["int8_loss"].values()
        ),
    }
    if report.get("voice_shift"):
        met["CCC(student, teacher) arousal under voice shifts >= 0.85"] = (
            report["voice_shift"]["pooled"]["arousal"] >= TARGETS["voice_shift_arousal"]
        )
    if report.get("timing"):
        met["default distill <= 15 min wall"] = report["timing"]["wall_seconds"] <= 60 * TARGETS["wall_minutes"]
    return {k: bool(v) for k, v in met.items()}


def median_timing(runs: list[dict]) -> dict:
    r"""The timing of the run with the median wall time (the lower middle one for an even count), with every run's.

    Examples:
        >>> runs = [{"wall_seconds": w, "cpu_seconds": 2 * w} for w in (900.0, 700.0, 800.0)]
        >>> timing = median_timing(runs)
        >>> timing["wall_seconds"], timing["cpu_seconds"], [r["wall_seconds"] for r in timing["runs"]]
        (800.0, 1600.0, [900.0, 700.0, 800.0])
        >>> "runs" in median_timing(runs[:1])
        False

    """
    if len(runs) == 1:
        return runs[0]
    middle = sorted(runs, key=lambda r: r["wall_seconds"])[(len(runs) - 1) // 2]
    return {
        **middle,
        "runs": [
            {k: r[k] for k in ("wall_seconds", "cpu_seconds", "load_average_before", "load_average_after") if k in r}
            for r in runs
        ],
    }


def earlier_timing(path: Path, sha256: str) -> dict | None:
    r"""The timing in an earlier report at ``path`` if it measured the model with this ``sha256``.

    Re-scoring a model without distilling it again keeps the wall time of
    the run that made that very model; another model's, or a report
    without ``sha256``, gives ``None``.
    """
    try:
        earlier = json.loads(Path(path).read_text())
        if earlier["models"]["fp32"].get("sha256") == sha256:
            return earlier.get("timing")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None
