"""Real speech: the leaderboard's first section, a model page's first results, and their cost figure.

Real speech is every split of a corpus that is not an embedded
synthetic replica (``demo-*``). Today these are the categorical corpora
of audb-public (EmoDB first), scored by consistency: per dimension the
AUC of the files of the categories placed high against those placed
low, with its 95 % interval, the per-sex gap and the worst speaker
(:mod:`benchmark.analyses.consistency_groups`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS
from benchmark.docs.formatting import DASH, float_or_none, fmt3, fmt_ccc, is_demo, md_table, slug
from benchmark.docs.inputs import Inputs, in_section, ordered_sections, random_weights, role_from_results
from benchmark.docs.output import FIGURES, Output
from benchmark.docs.summary import outcomes

FAIRNESS_TESTS = ("consistency-sex-delta-auc", "consistency-worst-speaker")

INTRO = (
    "**Recorded human speech**, not synthetic voices. Do a model's arousal, dominance and valence rank the "
    "emotions actors portrayed? AUC: the chance that a file of an emotion placed high (anger, happiness on "
    "arousal) is predicted above one placed low (sadness, boredom); 0.5 is chance, ≥ 0.6 passes; 95 % "
    "interval in brackets. *Largest sex gap*: AUC among women − among men; *worst speaker*: the lowest AUC "
    "within one speaker; both are fairness tests (thresholds on the analyses page; per dimension on each "
    "model's page)."
)
REPRODUCE = (
    "*Reproduce: `python scripts/emodb_results.py PATH` on the original EmoDB release, or "
    "`python -m benchmark run --model all --data public --dataset emodb` with audb-public (the real corpora "
    "page says what may differ).*"
)
NONE = (
    "*No real-speech results yet: every number below comes from synthetic replicas. "
    "`python scripts/emodb_results.py PATH` scores every model on EmoDB's test speakers "
    "(the real corpora page).*"
)


def real_rows(inputs: Inputs) -> pd.DataFrame:
    r"""Consistency rows of each model's current artefact on corpora that are not synthetic replicas."""
    df = inputs.latest("consistency")
    if not len(df):
        return df
    return df[~df["dataset"].map(is_demo).to_numpy(bool)]


def _by_group(rows: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {(str(r["dimension"]), str(r["group"])): r for _, r in rows.iterrows()}


def _gap(by: dict, dim: str) -> str:
    f, m = by.get((dim, "female")), by.get((dim, "male"))
    if f is None or m is None:
        return DASH
    return f"{float(f['auc']) - float(m['auc']):+.2f}"


def _worst(by: dict, dim: str) -> str:
    w = by.get((dim, "worst-speaker"))
    if w is None:
        return DASH
    speaker = str(w.get("speaker", "")).removesuffix(".0")
    return f"{float(w['auc']):.2f} ({speaker})"


def _largest_gap(by: dict) -> str:
    r"""The sex gap (women − men) of largest size over the dimensions, e.g. ``'-0.15 (dominance)'``."""
    gaps = [(abs(float(_gap(by, d))), _gap(by, d), d) for d in DIMENSIONS if _gap(by, d) != DASH]
    if not gaps:
        return DASH
    _, text, dim = max(gaps)
    return f"{text} ({dim})"


def _lowest_speaker(by: dict) -> str:
    r"""The lowest worst-speaker AUC over the dimensions, e.g. ``'0.75 (dominance, 14)'``."""
    rows = [(float(by[(d, "worst-speaker")]["auc"]), d) for d in DIMENSIONS if (d, "worst-speaker") in by]
    if not rows:
        return DASH
    value, dim = min(rows)
    speaker = str(by[(dim, "worst-speaker")].get("speaker", "")).removesuffix(".0")
    return f"{value:.2f} ({dim}, speaker {speaker})"


def _fairness(inputs: Inputs, model: str, sha: str, section: tuple) -> str:
    judged = outcomes(inputs)
    if not len(judged):
        return DASH
    mine = judged[
        (judged["model"] == model)
        & (judged["model_sha256"].astype(str) == sha)
        & judged["test"].isin(FAIRNESS_TESTS)
        & (judged["dataset"].astype(str) == section[0])
        & (judged["split"].astype(str) == section[2])
    ]
    if not len(mine):
        return DASH
    counts = mine["outcome"].value_counts()
    return f"{int(counts.get('passed', 0))} of {len(mine)}"


def _mean_auc(by: dict) -> float:
    values = [float_or_none(by[(d, "all")]["auc"]) for d in DIMENSIONS if (d, "all") in by]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def section_table(inputs: Inputs, rows: pd.DataFrame, section: tuple) -> str:
    r"""One row per model on one real split, ranked by the mean AUC over the dimensions."""
    entries = []
    for (model, sha), group in rows.groupby(["model", "model_sha256"], sort=True):
        by = _by_group(group)
        cells = [fmt_ccc(by[(d, "all")]["auc"], by[(d, "all")]["ci_low"], by[(d, "all")]["ci_high"]) if (
            d, "all") in by else DASH for d in DIMENSIONS]  # fmt: skip
        entries.append(
            (
                _mean_auc(by),
                model,
                [
                    f"[{model}](models/{model}.md)",
                    fmt3(_mean_auc(by)),
                    *cells,
                    _largest_gap(by),
                    _lowest_speaker(by),
                    _fairness(inputs, model, str(sha), section),
                ],
            )
        )
    entries.sort(key=lambda e: (-(e[0] if not math.isnan(e[0]) else -1.0), e[1]))
    headers = [
        "model",
        "mean AUC",
        *[f"AUC {d}" for d in DIMENSIONS],
        "largest sex gap",
        "worst speaker",
        "fairness passed",
    ]
    return md_table(headers, [e[2] for e in entries], "lrrrrlll")


def leaderboard_section(inputs: Inputs, out: Output) -> str:
    r"""``## Real speech``: per real split, AUCs, sex gap and worst speaker per model, and the cost figure."""
    rows = real_rows(inputs)
    parts = ["## Real speech"]
    if not len(rows):
        return "\n\n".join([*parts, NONE])
    parts.append(INTRO)
    for section in ordered_sections(rows):
        dataset, version, split = section
        parts.append(f"### {dataset} {version} · {split} (real speech)")
        prints = ", ".join(f"`{p[:8]}`" for p in sorted(set(in_section(rows, section)["data_fingerprint"])))
        parts.append(f"*{_files(inputs, section)}data fingerprint {prints}. Highest mean AUC first.*")
        parts.append(section_table(inputs, in_section(rows, section), section))
        figure = cost_figure(inputs, out, section)
        if figure:
            parts.append(figure)
    parts.append(REPRODUCE)
    parts.append("*Sources: `results/consistency.csv`, `results/efficiency.csv`.*")
    return "\n\n".join(p for p in parts if p)


def _files(inputs: Inputs, section: tuple) -> str:
    r"""'231 files; ' from ``runs.csv`` ('' where no run of the split is recorded)."""
    runs = inputs.table("runs")
    if not len(runs) or "n_files" not in runs:
        return ""
    n = pd.to_numeric(in_section(runs, section)["n_files"], errors="coerce").dropna()
    return f"{int(n.max())} files; " if len(n) else ""


def cost_points(inputs: Inputs, rows: pd.DataFrame) -> pd.DataFrame:
    r"""Mean AUC (column ``ccc``, as the cost plot reads it) against the cost of each timed, non-baseline model."""
    eff = inputs.latest("efficiency")
    columns = ["model", "kind", "ms_per_5s", "parameters", "ccc", "note"]
    if not len(eff):
        return pd.DataFrame(columns=columns)
    eff = eff[~random_weights(eff).to_numpy(bool)]
    points = []
    for model, group in rows.groupby("model", sort=True):
        role = inputs.models.get(model, {}).get("role") or role_from_results(inputs, model)
        timed = eff[eff["model"] == model]
        value = _mean_auc(_by_group(group))
        ms = float_or_none(timed.iloc[-1].get("ms_per_5s")) if len(timed) else None
        if role == "baseline" or ms is None or ms <= 0 or math.isnan(value):
            continue
        params = float_or_none(timed.iloc[-1].get("parameters"))
        points.append(
            {"model": model, "kind": "measured", "ms_per_5s": ms, "parameters": params or math.nan, "ccc": value}
        )
    return pd.DataFrame(points, columns=columns).fillna({"note": ""})


def cost_figure(inputs: Inputs, out: Output, section: tuple) -> str:
    r"""Mean AUC on a real split against time and size (the real-speech twin of the CCC cost figure)."""
    rows = in_section(real_rows(inputs), section)
    points = cost_points(inputs, rows)
    if not len(points):
        return ""
    baselines = {
        m for m in rows["model"] if (inputs.models.get(m, {}).get("role") or role_from_results(inputs, m)) == "baseline"
    }
    untimed = sorted(set(rows["model"]) - set(points["model"]) - baselines)
    rel = f"{FIGURES}/leaderboard/real-cost__{slug(*section)}.png"
    title = f"real speech: mean AUC against cost, {section[0]} {section[1]} · {section[2]}"
    out.figure(rel, "accuracy_vs_cost", points, title, "AUC")
    return (
        f"![mean AUC on real speech against CPU time and model size]({rel})\n\n"
        f"*Mean AUC over the dimensions on {section[0]} · {section[2]} (recorded speech) against the median time "
        "of one 5 s clip on one CPU thread and the number of parameters (`results/efficiency.csv`; log axes; "
        "baselines left out" + (f"; no time of the current artefact: {', '.join(untimed)}" if untimed else "") + ").*"
    )


def model_block(inputs: Inputs, model: str) -> str:
    r"""``## Real speech`` of a model page: AUC, sex gap and worst speaker per real split ('' without rows)."""
    rows = real_rows(inputs)
    rows = rows[rows["model"] == model] if len(rows) else rows
    if not len(rows):
        return ""
    parts = ["## Real speech", "AUC of the emotions placed high against those placed low (recorded speech; "
             "0.5: no separation, passes at ≥ 0.6), 95 % interval; details under Consistency below."]  # fmt: skip
    for section in ordered_sections(rows):
        by = _by_group(in_section(rows, section))
        table = []
        for d in DIMENSIONS:
            if (d, "all") not in by:
                continue
            a, f, m = by[(d, "all")], by.get((d, "female")), by.get((d, "male"))
            table.append(
                [
                    d,
                    fmt_ccc(a["auc"], a["ci_low"], a["ci_high"]),
                    fmt3(f["auc"]) if f is not None else DASH,
                    fmt3(m["auc"]) if m is not None else DASH,
                    _gap(by, d),
                    _worst(by, d),
                ]
            )
        parts.append(f"**{section[0]} {section[1]} · {section[2]}**")
        parts.append(md_table(["dimension", "AUC", "women", "men", "sex gap", "worst speaker"], table, "lrrrrl"))
    return "\n\n".join(parts)
