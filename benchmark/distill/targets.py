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

from benchmark import DIMENSIONS

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark.models.base import Predictor

TARGETS = {"wall_minutes": 15.0, "ccc_arousal": 0.90, "ccc_mean": 0.80, "int8_loss": 0.01}
"""Issue 5: default run on a 2-core CPU, arousal and mean CCC against the teacher, int8 loss per dimension."""

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
) -> dict:
    r"""CCC of a student's fp32 and int8 folders against the teacher (and the gold labels) on a split.

    Args:
        student: the fp32 audonnx folder; the int8 one is ``<student>-int8`` next to it
        teacher: the teacher; its outputs on the split's files are cached
        dataset: registry name of the labelled dataset
        split: its split
        data: ``'demo'`` or ``'real'`` (see :func:`benchmark.data.datasets.load_split`)
        resamples: bootstrap resamples of the files

    Returns:
        the report: per model (``fp32``, ``int8``) the artefact ``sha256``, CCC
        against the teacher with intervals (``ccc_vs_teacher``,
        ``ccc_vs_teacher_ci95``), the same without files whose teacher output
        is off the scale, CCC against gold, seconds per file; the int8 loss
        (``CCC(fp32) − CCC(int8)``) with paired intervals, the teacher's CCC
        against gold, the split's provenance

    """
    from benchmark.data.datasets import load_split
    from benchmark.distill import annotate
    from benchmark.distill.pipeline import int8_folder, load_export
    from benchmark.distill.train import ccc
    from benchmark.hashing import artifact_sha256
    from benchmark.metrics import bootstrap_ccc_columns, paired_bootstrap

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
        start = time.perf_counter()
        pred = np.stack([model(signal, 16000) for signal in signals])
        seconds = (time.perf_counter() - start) / len(pred)
        predictions[label] = pred
        vs_teacher = {d: ccc(teacher_pred[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS)}
        vs_teacher["mean"] = float(np.mean(list(vs_teacher.values())))
        intervals = bootstrap_ccc_columns(teacher_pred[list(DIMENSIONS)].to_numpy(), pred, DIMENSIONS, n=resamples)
        # for reference only: without files where the teacher itself fails (off-scale outputs)
        sane = annotate.in_range(teacher_pred.to_numpy())
        vs_sane = {d: ccc(teacher_pred[d].to_numpy()[sane], pred[sane, i]) for i, d in enumerate(DIMENSIONS)}
        vs_sane["mean"] = float(np.mean(list(vs_sane.values())))
        vs_gold = {d: ccc(truth[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS) if d in truth}
        report["models"][label] = {
            "path": str(folder),
            "sha256": artifact_sha256(folder, "audonnx"),
            "ccc_vs_teacher": vs_teacher,
            "ccc_vs_teacher_ci95": {d: list(v) for d, v in intervals.items()},
            "ccc_vs_teacher_in_range": vs_sane,
            "teacher_off_scale_files": int((~sane).sum()),
            "ccc_vs_gold": vs_gold,
            "seconds_per_file": seconds,
        }
    report["teacher_ccc_vs_gold"] = {
        d: ccc(truth[d].to_numpy(), teacher_pred[d].to_numpy()) for d in DIMENSIONS if d in truth
    }
    fp32, int8 = (report["models"][k]["ccc_vs_teacher"] for k in ("fp32", "int8"))
    report["int8_loss"] = {d: fp32[d] - int8[d] for d in fp32}
    index = teacher_pred.index
    paired = {d: paired_bootstrap(teacher_pred[d], pd.Series(predictions["fp32"][:, i], index),
                                  pd.Series(predictions["int8"][:, i], index), n=resamples)
              for i, d in enumerate(DIMENSIONS)}
    report["int8_loss_ci95"] = {d: [v["ci_low"], v["ci_high"]] for d, v in paired.items()}
    report["bootstrap"] = {"resamples": resamples, "level": 0.95, "seed": 0}
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
        "int8 loses <= 0.01 CCC (every dimension)": all(v <= TARGETS["int8_loss"] for v in report["int8_loss"].values()),
    }
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
    return {**middle, "runs": [{k: r[k] for k in ("wall_seconds", "cpu_seconds", "load_average_before",
                                                   "load_average_after") if k in r} for r in runs]}


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
