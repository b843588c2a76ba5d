"""The distillation section of a student's model page."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.docs.formatting import DASH, flatten, fmt_value, md_table
from benchmark.docs.inputs import Inputs, distill_provenance
from benchmark.docs.output import Output


def distillation_block(inputs: Inputs, model: str, out: Output, fig_dir: str) -> str:
    provenance = distill_provenance(inputs, model)
    distilled = inputs.models.get(model, {}).get("distilled") or {}
    history_path = inputs.root / "distill" / model / "history.csv"
    if not (provenance or distilled or history_path.exists()):
        return ""
    parts = ["## Distillation"]
    if provenance:
        parts.append(md_table(["field", "value"], [[k, fmt_value(v)] for k, v in flatten(provenance)], "ll"))
        parts.append(f"*Source: `results/distill/{model}/provenance.json`.*")
    if distilled:
        parts.append(
            "From `models.yaml` (`distilled`):\n\n"
            + md_table(["field", "value"], [[k, fmt_value(v)] for k, v in flatten(distilled)], "ll")
        )
    if history_path.exists():
        history = pd.read_csv(history_path)
        if len(history) and "epoch" in history:
            rel = f"{fig_dir}/distillation.png"
            out.figure(rel, "distillation_curves", history, f"{model}: distillation")
            parts.append(f"![distillation curves](../{rel})")
            parts.append(f"*Source: `results/distill/{model}/history.csv`.*")
    targets = distillation_targets(inputs.root / "distill" / model / "targets.json")
    if targets:
        parts += [
            "### Targets",
            targets,
            f"*Source: `results/distill/{model}/targets.json` (`scripts/distill_targets.py`).*",
        ]
    return "\n\n".join(parts)


def distillation_targets(path: Path) -> str:
    r"""The distillation targets as measured by ``scripts/distill_targets.py``: CCC against the teacher, checks.

    Empty if ``path`` does not exist or is not such a report.
    """
    try:
        return _targets_text(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return ""


def _targets_text(report: dict) -> str:
    scores = {label: m["ccc_vs_teacher"] for label, m in report["models"].items()}
    split = report["split"]
    columns = [d for d in (*DIMENSIONS, "mean") if any(d in v for v in scores.values())]
    rows = []
    for label, model in report["models"].items():
        rows.append([label, *[_score(model["ccc_vs_teacher"].get(d)) for d in columns]])
        if model.get("ccc_vs_teacher_ci95"):
            rows.append([f"{label}, 95 % interval", *[_interval(model["ccc_vs_teacher_ci95"].get(d)) for d in columns]])
    if report.get("int8_loss"):
        rows.append(["int8 loss (fp32 − int8)", *[_score(report["int8_loss"].get(d)) for d in columns]])
        if report.get("int8_loss_ci95"):
            rows.append(["int8 loss, 95 % interval", *[_interval(report["int8_loss_ci95"].get(d)) for d in columns]])
    text = [
        f"CCC of the student against its teacher on {split.get('dataset')} {split.get('dataset_version')} · "
        f"{split.get('split')} ({report.get('files')} whole, clean files):",
        md_table(["model", *columns], rows, "l" + "r" * len(columns)),
    ]
    timing = report.get("timing")
    if timing:
        text.append(
            f"Wall time of `python {timing.get('command')}`: {timing['wall_seconds'] / 60:.1f} min "
            + (
                f"(median of {len(timing['runs'])} runs: "
                + ", ".join(f"{r['wall_seconds'] / 60:.1f}" for r in timing["runs"])
                + " min; "
                if timing.get("runs")
                else "("
            )
            + f"{timing.get('cache')} teacher cache, "
            + (
                f"{timing.get('cpu_count')} × {timing['cpu']}"
                if timing.get("cpu")
                else f"{timing.get('cpu_count')} CPUs, model not recorded"
            )
            + f", CPU time {timing.get('cpu_seconds', float('nan')) / 60:.1f} min); "
            "wall times of different CPUs do not compare."
        )
    text += _voice_and_sex_text(report)
    if any("ccc_vs_teacher_ci95" in m for m in report["models"].values()):
        resamples = (report.get("bootstrap") or {}).get("resamples", "?")
        text.append(
            f"The intervals are percentile bootstraps over the files ({resamples} resamples; the int8 loss paired, "
            "the same files for both models): how precisely this split pins a figure down. "
            "A target is judged on the figure itself."
        )
    checks = report.get("targets") or {}
    if checks:
        text.append(md_table(["target", "met"], [[k, "yes" if v else "**no**"] for k, v in checks.items()], "ll"))
    return "\n\n".join(text)


def _voice_and_sex_text(report: dict) -> list[str]:
    r"""How well the fp32 student follows its teacher on shifted voices and within each sex, where the report says."""
    text = []
    shift = report.get("voice_shift")
    if shift:
        columns = [*DIMENSIONS, "mean"]
        rows = [[name, *[_score(c.get(d)) for d in columns]] for name, c in shift["conditions"].items()]
        rows.append(["all shifts pooled", *[_score(shift["pooled"].get(d)) for d in columns]])
        text += [
            f"Voice shifts: CCC of the fp32 student against its teacher, both on test-1 audio shifted in pitch "
            f"(semitones, formants kept) or formants (pitch kept), {shift.get('files')} files per shift:",
            md_table(["shift", *columns], rows, "l" + "r" * len(columns)),
        ]
    sexes = report.get("sex_agreement") or {}
    if sexes:
        columns = [*DIMENSIONS, "mean"]
        rows = []
        for split, a in sexes.items():
            for group in ("female", "male"):
                rows.append(
                    [f"{split}, {group} ({a[group]['files']} files)", *[_score(a[group].get(d)) for d in columns]]
                )
            rows.append([f"{split}, gap female − male", *[_score(a["gap"].get(d)) for d in columns]])
        text += [
            "CCC of the fp32 student against its teacher within each sex (demo splits):",
            md_table(["split, group", *columns], rows, "l" + "r" * len(columns)),
        ]
    return text


def _interval(bounds) -> str:
    r"""``[low, high]`` with three decimals (brackets, as a bound may be negative), or a dash.

    Examples:
        >>> _interval([-0.0012, 0.9034]), _interval(None)
        ('[-0.001, 0.903]', '—')

    """
    if not bounds or len(bounds) != 2:
        return DASH
    return f"[{_score(bounds[0])}, {_score(bounds[1])}]"


def _score(value) -> str:
    r"""Three decimals, without a minus sign on a value that rounds to zero."""
    return DASH if value is None else f"{value:.3f}".replace("-0.000", "0.000")
