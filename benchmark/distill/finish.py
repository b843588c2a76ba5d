"""After training: the output-layer refit and its int8 guard.

The refit is kept only if it does not lower the held-out mean CCC vs
the teacher; what happened is reported for the provenance record.
"""

from __future__ import annotations

import dataclasses
import typing

import pandas as pd

import benchmark
from benchmark.distill import refit
from benchmark.distill.config import DistillConfig
from benchmark.distill.export import replace_folder, score_export
from benchmark.distill.teacher import Data, whole_refit_files, whole_training_files
from benchmark.distill.validation import ValidationSet, evaluate, json_number, selection_key


def refit_head(
    config: DistillConfig,
    student,
    train_files: ValidationSet | None,
    refit_files: ValidationSet | None,
    dims: list[int],
    validation: typing.Sequence[ValidationSet],
    baseline: dict,
    device: str,
) -> tuple[dict, typing.Any]:
    r"""Refit the student's output layer in closed form; keep it unless held-out CCC drops.

    ``train_files`` holds the whole training files with the teacher's outputs
    (:func:`~benchmark.distill.teacher.whole_training_files`), ``refit_files`` the extra files of
    ``config.refit_data`` (:func:`~benchmark.distill.teacher.whole_refit_files`); the head is fitted on
    both. ``baseline`` holds the held-out figures of
    the student as it is (the best epoch's); a refit that lowers the mean CCC vs the
    teacher on the held-out files below them is undone.

    Returns:
        the report for the provenance record, and the
        :class:`~benchmark.distill.refit.HeadData` it was fitted on (``None``
        without a refit), from which :func:`_int8_guard` refits again
    """
    if not config.head_refit:
        return {"applied": False, "reason": "switched off (--no-head-refit)"}, None
    if not refit.has_linear_head(student):
        return {"applied": False, "reason": f"{type(student).__name__} has no linear output layer 'head'"}, None
    if train_files is None or not len(train_files):
        return {"applied": False, "reason": "no training file with an in-range teacher output"}, None
    student.to(device)
    original = {k: v.clone() for k, v in student.head.state_dict().items()}
    heldout = next((v for v in validation if v.name == "teacher" and len(v)), None)
    fitted = train_files
    if refit_files is not None:
        fitted = ValidationSet(
            "refit",
            train_files.signals + refit_files.signals,
            pd.concat([train_files.reference, refit_files.reference]),
        )
    data = refit.head_data(student, fitted, dims, heldout, device)
    report = refit.refit_from(student, data, seed=config.seed)
    if refit_files is not None:
        report["fitted_on"] = f"{len(train_files)} whole training files and {len(refit_files)} refit files"
    if selection_key(validation) == "none":
        return {"applied": True, **report, "checked": "no held-out files"}, data
    figures, dropped, _ = _against(student, validation, baseline, device)
    if dropped:
        student.head.load_state_dict(original)
        return {"applied": False, "reason": f"{dropped} on the held-out files", **report, "validation": figures}, data
    return {"applied": True, **report, "validation": figures}, data


def _against(
    student, validation: typing.Sequence[ValidationSet], before: dict, device: str = "cpu"
) -> tuple[dict, str, dict]:
    r"""Held-out figures ``before`` a change and of ``student`` now.

    Returns:
        ``{column: {'before': ..., 'after': ...}}``; if the selecting mean
        CCC dropped, ``'lowered <column>'`` (else ``''``); the figures now
    """
    key = selection_key(validation)
    after = evaluate(student, validation, device)
    figures = {k: {"before": json_number(before.get(k)), "after": json_number(after[k])} for k in after}
    return figures, f"lowered {key}" if after[key] < before[key] else "", after


INT8_LOSS_LIMIT = 0.01
r"""Held-out CCC the int8 twin of a refitted head may lose on any dimension (the int8 target of :data:`benchmark.distill.targets.TARGETS`)."""


def _int8_guard(
    config: DistillConfig,
    student,
    data,
    validation: typing.Sequence[ValidationSet],
    baseline: dict,
    before_refit: dict,
    report: dict,
    export: typing.Callable[[], None],
    scored: dict,
) -> dict:
    r"""Raise a refitted head's penalty until its int8 twin loses at most :data:`INT8_LOSS_LIMIT` held-out CCC.

    A small penalty can lean on directions of the features that 8-bit
    activations blur. The exported pair is scored on the held-out files; while
    the int8 model loses more than the limit on a dimension and a larger
    penalty is left, the head is refitted with the next larger one and the
    pair exported again (from the same ``data``: the network before the head
    does not change). If the head that holds the limit scores below
    ``baseline`` (the held-out figures of ``before_refit``, the student's
    weights before the refit) on the held-out files, ``before_refit`` is
    exported instead, as :func:`refit_head` promises.
    """
    heldout = [v for v in validation if v.name == "teacher" and len(v)]
    alpha, losses = report["alpha"], {}
    while True:
        fp32 = score_export(config.out_path, heldout, "fp32", scored)
        int8 = score_export(config.int8_path, heldout, "int8", scored)
        loss = max(fp32[k] - int8[k] for k in fp32 if k != "teacher_mean" and None not in (fp32[k], int8[k]))
        losses[str(alpha)] = json_number(loss)
        larger = [a for a in refit.ALPHAS if a > alpha]
        if loss <= INT8_LOSS_LIMIT or not larger:
            break
        alpha = larger[0]
        refit.refit_from(student, data, alphas=(alpha,), seed=config.seed)
        export()
    report = {**report, "int8_loss_by_alpha": losses}
    if alpha == report["alpha"]:
        return report
    figures, dropped, _ = _against(student, validation, baseline)
    report.update(alpha=alpha, validation=figures, chosen_on=report["chosen_on"] + ", raised for the int8 model")
    if dropped:
        student.load_state_dict(before_refit)
        export()
        report.update(applied=False, reason=f"{dropped} on the held-out files once the int8 model held the limit")
    return report


@dataclasses.dataclass
class Finished:
    r"""What :func:`finish` did, for the provenance record.

    Attributes:
        head_refit: report of the output-layer refit (:func:`refit_head`, :func:`_int8_guard`)
        train_offscale: whole training files left out as off-scale
        refit_info: the provenance record's account of the refit files
        scored: ONNX figures by model file (:func:`~benchmark.distill.export.score_export`)
        teacher_calls: teacher calls made on whole files (0 on cache hits)

    """

    head_refit: dict
    train_offscale: list[str]
    refit_info: dict
    scored: dict
    teacher_calls: int


def finish(
    config: DistillConfig,
    student,
    teacher,
    data: Data,
    result,
    device: str,
    exporter: tuple[typing.Callable, typing.Callable] | None = None,
) -> Finished:
    r"""From the best epoch to the exported fp32 and int8 folders: refit, export, int8 guard.

    Args:
        config: the run's settings
        student: the trained network; it ends with the exported weights, on the CPU
        teacher: the teacher, for the whole files' targets
        data: the run's data (:func:`~benchmark.distill.teacher.prepare_data`)
        result: :class:`~benchmark.distill.train.TrainResult`
        device: torch device of the refit
        exporter: the pair ``(export_onnx, quantize_int8)`` (default: :mod:`benchmark.students.export`)

    """
    out, out_int8, dims, validation = config.out_path, config.int8_path, data.dims, data.validation
    student.load_state_dict(result.best_state)
    train_files, train_offscale, refit_files, refit_info, calls = _whole_files(config, student, teacher, data)
    baseline = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0].to_dict()
    before_refit = {k: v.clone() for k, v in student.state_dict().items()}
    head_refit, head_data = refit_head(config, student, train_files, refit_files, dims, validation, baseline, device)
    student.to("cpu").eval()
    export_onnx, quantize_int8 = exporter or (benchmark.export_onnx, benchmark.quantize_int8)

    def export() -> None:
        replace_folder(out, lambda tmp: export_onnx(student, tmp))
        replace_folder(out_int8, lambda tmp: quantize_int8(out, tmp))

    export()
    scored: dict = {}  # ONNX figures by model file: each export is scored once
    if head_refit.get("applied") and "validation" in head_refit:
        head_refit = _int8_guard(
            config, student, head_data, validation, baseline, before_refit, head_refit, export, scored
        )
    return Finished(head_refit, train_offscale, refit_info, scored, calls)


def _whole_files(config: DistillConfig, student, teacher, data: Data):
    r"""The whole training and refit files with the teacher's outputs, where the refit needs them.

    Returns:
        the training files (``None`` if not needed), those left out as
        off-scale, the refit files (``None`` without), the provenance
        record's account of them, and the teacher calls made
    """
    train_files, train_offscale, refit_files, refit_info, calls = None, [], None, {"source": "none"}, 0
    refitting = config.head_refit and refit.has_linear_head(student)
    if refitting:
        train_files, train_offscale, calls = whole_training_files(
            teacher, data.train_pool, data.dims, config, data.target_range
        )
        refit_files, refit_info, more = whole_refit_files(
            teacher, data.refit_pool, data.refit_source, data.dims, config, data.target_range
        )
        calls += more
    return train_files, train_offscale, refit_files, refit_info, calls
