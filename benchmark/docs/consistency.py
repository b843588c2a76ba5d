"""Consistency with categorical labels: a leaderboard section and a model-page section.

Both are empty strings while ``results/consistency.csv`` has no rows, so
the pages of a results folder without categorical corpora do not change.
"""

from __future__ import annotations

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.docs.formatting import DASH, fmt3, fmt_ccc, is_true, md_table, section_title, sha8
from benchmark.docs.inputs import Inputs, in_section, ordered_sections
from benchmark.docs.output import GUIDES

INTRO = (
    "Predictions against categorical labels (ser-tests' consistency): per dimension, the AUC of the files "
    "of the categories placed high (e.g. anger, happiness on arousal) against those placed low (sadness, "
    "boredom), with a 95 % bootstrap interval; 0.5 is no separation, a test passes at AUC ≥ its threshold "
    "(`thresholds.yaml`, `consistency-auc`). Categories and their places: `datasets.yaml` (`categories`), "
    f"see [adding a dataset]({GUIDES}/adding-a-dataset.md)."
)


def _auc_cell(row: pd.Series | None) -> str:
    if row is None:
        return DASH
    return fmt_ccc(row["auc"], row.get("ci_low"), row.get("ci_high"))


def _side(side) -> str:
    return f" ({side})" if isinstance(side, str) and side else ""


def leaderboard_section(inputs: Inputs) -> str:
    r"""``## Consistency`` of the leaderboard: AUC per model and dimension, per split ('' without rows)."""
    df = inputs.latest("consistency")
    if not len(df):
        return ""
    df = df[df["group"].astype(str) == "all"]
    parts = ["## Consistency", INTRO]
    for section in ordered_sections(df):
        rows = in_section(df, section)
        table = []
        for (model, sha), group in rows.groupby(["model", "model_sha256"], sort=True):
            by_dim = {r["dimension"]: r for _, r in group.iterrows()}
            passed = sum(is_true(r["passed"]) for r in by_dim.values())
            table.append(
                [
                    f"[{model}](models/{model}.md)",
                    sha8(sha),
                    *[_auc_cell(by_dim.get(d)) for d in DIMENSIONS],
                    f"{passed}/{len(by_dim)}",
                ]
            )
        parts.append(f"### {section_title(section)}")
        parts.append(md_table(["model", "sha256", *[f"AUC {d}" for d in DIMENSIONS], "passed"], table, "llrrrr"))
    parts.append("*Sources: `results/consistency.csv`, `results/consistency_categories.csv`.*")
    return "\n\n".join(parts)


def model_block(inputs: Inputs, model: str) -> str:
    r"""``## Consistency`` of a model page: AUC per group and the mean prediction per category ('' without rows)."""
    auc, means = inputs.latest("consistency"), inputs.latest("consistency_categories")
    auc = auc[auc["model"] == model] if len(auc) else auc
    means = means[means["model"] == model] if len(means) else means
    if not (len(auc) or len(means)):
        return ""
    # a model page lies one folder down: its links to the other pages climb out of models/
    parts = ["## Consistency", INTRO.replace(f"]({GUIDES}/", f"](../{GUIDES}/")]
    for section in sorted(set(ordered_sections(auc)) | set(ordered_sections(means))):
        parts.append(f"### {section_title(section)}")
        a = in_section(auc, section)
        if len(a):
            table = [
                [
                    r["dimension"],
                    r["group"],
                    f"{int(float(r['n_high']))} / {int(float(r['n_low']))}",
                    r["high"],
                    r["low"],
                    _auc_cell(r),
                    fmt3(r.get("delta_auc")),
                    ("passed" if is_true(r["passed"]) else "failed") if str(r["group"]) == "all" else DASH,
                ]
                for _, r in a.iterrows()
            ]
            parts.append(
                md_table(
                    ["dimension", "group", "files high / low", "high", "low", "AUC", "ΔAUC vs all", "test"],
                    table,
                    "llrllrrl",
                )
            )
        m = in_section(means, section)
        if len(m):
            table = []
            for category, group in m.groupby("category", sort=True):
                by_dim = {r["dimension"]: r for _, r in group.iterrows()}
                n = next(iter(by_dim.values()))["n"]
                cells = [
                    fmt_ccc(by_dim[d]["mean"], by_dim[d].get("ci_low"), by_dim[d].get("ci_high"))
                    + _side(by_dim[d].get("side"))
                    if d in by_dim
                    else DASH
                    for d in DIMENSIONS
                ]
                table.append([category, f"{int(float(n))}", *cells])
            parts.append("Mean prediction per category (95 % interval; its place on the dimension in brackets):")
            parts.append(md_table(["category", "files", *DIMENSIONS], table, "lrrrr"))
    parts.append("*Sources: `results/consistency.csv`, `results/consistency_categories.csv`.*")
    return "\n\n".join(parts)
