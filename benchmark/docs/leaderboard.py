"""The leaderboard page, ``docs/results/leaderboard.md``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS
from benchmark.docs import consistency, published, ranks, real_speech
from benchmark.docs.formatting import (
    DASH,
    DEMO_NOTE,
    NOTE_MD,
    float_or_none,
    fmt3,
    fmt_bytes,
    fmt_ccc,
    fmt_count,
    fmt_float,
    fmt_sig,
    is_true,
    md_table,
    one_line,
    plot_title,
    section_title,
    sha8,
    slug,
)
from benchmark.docs.inputs import (
    Inputs,
    dimensions_in,
    in_section,
    ordered_sections,
    role_from_results,
    section_key,
    teacher_label,
)
from benchmark.docs.output import FIGURES, GUIDES, Output
from benchmark.docs.summary import glance_section


def leaderboard_page(inputs: Inputs, out: Output, *, resamples: int, seed: int, top: int) -> str:
    r"""Markdown of ``docs/results/leaderboard.md``; figures are added to ``out``."""
    parts = [
        NOTE_MD,
        "# Leaderboard: dimensional speech emotion recognition",
        "Two parts: **real speech** first (recorded people, scored against their emotion categories), then "
        "the **synthetic replicas** (generated voices with arousal, dominance and valence gold, scored with "
        "the concordance correlation coefficient, CCC). Each model is shown with its current artefact "
        "(the `sha256` pinned in `models.yaml`, else the most recent one); earlier artefacts are listed on "
        f"the model pages. See [adding a model]({GUIDES}/adding-a-model.md).",
        real_speech.leaderboard_section(inputs, out),
        "## Synthetic replicas",
        f"Every section from here on is computed on embedded synthetic replicas (`demo-*` corpora, unless a "
        f"heading names another): {DEMO_NOTE}. They test the pipeline and the ranking of models on the same "
        "generated voices, not how well a model hears people. CCC between gold and prediction per dimension, "
        "with a 95 % bootstrap interval (whole speakers resampled where a split has them, else files, marked "
        "*(files)*), per split; rows sorted by mean CCC and carrying a rank group (models the data cannot "
        "separate share a rank, see below), the best value per column **bold**.",
    ]
    if not len(inputs.table("correctness")):
        parts.append("*No results yet: run `nox -s benchmark -- --model NAME`, then `nox -s docs`.*")
    parts += [
        glance_section(inputs, out),
        correctness_section(inputs, out, resamples=resamples, seed=seed, top=top),
        robustness_section(inputs),
        fairness_section(inputs),
        consistency.leaderboard_section(inputs),
        efficiency_section(inputs, out),
        published.reported_section(inputs),
        models_section(inputs),
        "## Sources\n\n"
        "Every number above is a cell of a row in `results/` identified by model, artefact "
        "(`sha256`, first 8 digits shown), dataset, version, split and dimension: CCC and CI "
        "from `results/correctness.csv`, robustness from `results/robustness.csv`, fairness "
        "from `results/fairness_sex.csv` and `results/fairness_speaker.csv`, real speech and consistency from "
        "`results/consistency.csv`, efficiency from "
        "`results/efficiency.csv`. Significance tests are recomputed from "
        f"`results/predictions/` (paired bootstrap over speakers where a split has them, else files, "
        f"{resamples} resamples, seed {seed}), and so are the rank groups. "
        "Published numbers come from `benchmark/reported.yaml`.",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def correctness_section(inputs: Inputs, out: Output, *, resamples: int, seed: int, top: int) -> str:
    r"""CCC tables, bar charts and significance per evaluation split."""
    df = inputs.latest("correctness")
    if not len(df):
        return ""
    parts = ["## Correctness", ranks.RANK_TEXT]
    for section in ordered_sections(df):
        rows = in_section(df, section)
        dims = dimensions_in(rows)
        parts.append(f"### {section_title(section)}")
        parts.append(data_builds_note(rows))
        order = _ranked_models(rows, dims)
        groups = ranks.section_ranks(inputs, out, rows, section, dims, order, resamples=resamples, seed=seed)
        parts.append(ccc_table(rows, dims, groups))
        figure = f"{FIGURES}/leaderboard/ccc__{slug(*section)}.png"
        plot_rows = rows.assign(_order=rows["model"].map({m: i for i, m in enumerate(order)})).sort_values("_order")
        out.figure(figure, "ccc_bars", plot_rows, plot_title(section))
        parts.append(f"![CCC per model, {section[0]} {section[2]}]({figure})")
        significance = ranks.significance_table(
            inputs, out, rows, section, dims, resamples=resamples, seed=seed, top=top
        )
        if significance:
            parts.append(significance)
        parts.append("*Source: `results/correctness.csv`.*")
    return "\n\n".join(parts)


def data_builds_note(rows: pd.DataFrame) -> str:
    r"""The data fingerprint of a section, or a warning if its rows come from several builds.

    Examples:
        >>> rows = pd.DataFrame({"model": ["a", "b"], "data_fingerprint": ["1b5d86382609", "1b5d86382609"]})
        >>> data_builds_note(rows)
        '*Data fingerprint `1b5d8638` (audio checksums, labels, speakers).*'
        >>> data_builds_note(rows.assign(data_fingerprint=["1b5d86382609", "77aa00000000"]))[:23]
        '> **Warning:** 2 builds'

    """
    prints = rows["data_fingerprint"] if "data_fingerprint" in rows else pd.Series("", index=rows.index)
    builds = rows.groupby(prints.fillna("").astype(str))["model"].unique()
    if len(builds) == 1:
        only = builds.index[0]
        return f"*Data fingerprint `{only[:8]}` (audio checksums, labels, speakers).*" if only else ""
    which = "; ".join(f"`{fp[:8] or 'not recorded'}`: {', '.join(sorted(models))}" for fp, models in builds.items())
    return (
        f"> **Warning:** {len(builds)} builds of this split under one version ({which}). Scores on "
        "different builds are not comparable: re-run these models on one build."
    )


def _ranked_models(rows: pd.DataFrame, dims: list[str]) -> list[str]:
    r"""Models by mean CCC over ``dims`` (missing counts as worst), then by name."""
    means = {}
    for model, group in rows.groupby("model", sort=True):
        values = [float_or_none(v) for v in group.set_index("dimension").reindex(dims)["ccc"]]
        values = [v for v in values if v is not None]
        means[model] = float(np.mean(values)) if values else -math.inf
    return sorted(means, key=lambda m: (-means[m], m))


def ccc_table(rows: pd.DataFrame, dims: list[str], groups: dict[str, int] | None = None) -> str:
    r"""One row per model: rank group (:mod:`benchmark.docs.ranks`; else the position), CCC [CI] per dimension.

    The best value per column is bold; the interval's resampled unit is named where it is not the speaker.
    """
    best = {}
    for dim in dims:
        values = [float_or_none(v) for v in rows.loc[rows["dimension"] == dim, "ccc"]]
        values = [v for v in values if v is not None]
        best[dim] = max(values) if values else None
    table = []
    for rank, model in enumerate(_ranked_models(rows, dims), start=1):
        group = rows[rows["model"] == model].set_index("dimension")
        first = group.iloc[0]
        cells = [str((groups or {}).get(model, rank)), f"[{model}](models/{model}.md)", sha8(first["model_sha256"])]
        for dim in dims:
            if dim not in group.index:
                cells.append(DASH)
                continue
            r = group.loc[dim]
            bold = best[dim] is not None and float_or_none(r["ccc"]) == best[dim]
            unit = str(r.get("ci_unit", "") or "")
            unit = f" ({unit}s)" if unit and unit != "nan" and unit != "speaker" else ""
            cells.append(fmt_ccc(r["ccc"], r.get("ccc_ci_low"), r.get("ccc_ci_high"), bold=bold) + unit)
        n = float_or_none(first.get("n"))
        skipped = float_or_none(first.get("n_skipped"))
        cells.append(DASH if n is None else f"{n:.0f}" + (f" ({skipped:.0f} skipped)" if skipped else ""))
        table.append(cells)
    headers = ["rank", "model", "sha256", *[f"{d} CCC [95% CI]" for d in dims], "n"]
    return md_table(headers, table, "rll" + "r" * (len(dims) + 1))


def split_robustness(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Fixed conditions, and the rows of the SNR curves.

    Sweep-only rows (a condition group named like ``snr-sweep``; without
    condition groups, every row with an SNR) are left out of the fixed
    conditions: the sweep's extreme SNRs would dominate any mean. The
    curves take every row with an SNR (``snr_db`` or ``snr``), one line
    per ``sweep`` (else per condition group).
    """
    snr_col = next((c for c in ("snr_db", "snr") if c in rows), None)
    snr = pd.to_numeric(rows[snr_col], errors="coerce") if snr_col else pd.Series(np.nan, index=rows.index)
    curve_col = "sweep" if "sweep" in rows else "condition_group" if "condition_group" in rows else None
    rows = rows.assign(
        snr=snr,
        curve=rows[curve_col].fillna("").astype(str) if curve_col else "",
        delta_ccc=pd.to_numeric(rows["delta_ccc"], errors="coerce"),
        ccc=pd.to_numeric(rows["ccc"], errors="coerce"),
        unchanged_share=pd.to_numeric(rows["unchanged_share"], errors="coerce")
        if "unchanged_share" in rows
        else np.nan,
    )
    if "condition_group" in rows:
        sweep_only = rows["condition_group"].fillna("").astype(str).str.contains("sweep")
    else:
        sweep_only = rows["snr"].notna()
    return rows[~sweep_only], rows[rows["snr"].notna()]


def robustness_summary(rows: pd.DataFrame) -> pd.DataFrame:
    r"""Mean ΔCCC per dimension and mean unchanged share over the fixed conditions.

    See :func:`split_robustness`; if there are only sweep rows, all are used.
    """
    if not len(rows):
        return pd.DataFrame()
    fixed, _ = split_robustness(rows)
    fixed = fixed if len(fixed) else split_robustness(rows.assign(condition_group=""))[0]
    out = fixed.pivot_table(index=["model", "model_sha256"], columns="dimension", values="delta_ccc", aggfunc="mean")
    out["unchanged_share"] = fixed.groupby(["model", "model_sha256"])["unchanged_share"].mean()
    out["conditions"] = fixed.groupby(["model", "model_sha256"])["condition"].nunique()
    return out.reset_index()


def robustness_section(inputs: Inputs) -> str:
    df = inputs.latest("robustness")
    if not len(df):
        return "## Robustness\n\n*No robustness results yet (`results/robustness.csv`).*"
    parts = [
        "## Robustness",
        "Mean change of CCC under perturbation (perturbed − clean; closer to 0 is more robust, "
        "rows sorted by it) over the fixed conditions, and the mean share of files whose "
        "prediction stays unchanged. "
        "Per-condition bars and SNR curves are on the model pages.",
    ]
    for section in ordered_sections(df):
        summary = robustness_summary(in_section(df, section))
        dims = [d for d in DIMENSIONS if d in summary.columns]
        # Most robust first: smallest mean |ΔCCC| (a gain under perturbation is no merit either).
        summary["_mean"] = summary[dims].abs().mean(axis=1) if dims else 0.0
        summary = summary.sort_values(["_mean", "model"])
        table = [
            [
                f"[{r['model']}](models/{r['model']}.md)",
                sha8(r["model_sha256"]),
                f"{r['conditions']:.0f}",
                *[fmt3(r[d]) for d in dims],
                fmt3(r["unchanged_share"]),
            ]
            for _, r in summary.iterrows()
        ]
        parts.append(f"### {section_title(section)}")
        headers = ["model", "sha256", "conditions", *[f"mean ΔCCC {d}" for d in dims], "unchanged share"]
        parts.append(md_table(headers, table, "ll" + "r" * (len(dims) + 2)))
    parts.append("*Source: `results/robustness.csv`.*")
    return "\n\n".join(parts)


def fairness_section(inputs: Inputs) -> str:
    sex, spk = inputs.latest("fairness_sex"), inputs.latest("fairness_speaker")
    if not len(sex) and not len(spk):
        return "## Fairness\n\n*No fairness results yet (`results/fairness_sex.csv`, `results/fairness_speaker.csv`).*"
    parts = [
        "## Fairness",
        "Sex: the largest |ΔCCC| between a sex group and all files over the dimensions, and how "
        "many group × dimension tests pass their threshold. Speakers: median per-speaker CCC and "
        "Spearman ρ from `fairness_speaker.csv`, per dimension (A / D / V).",
    ]
    sections = sorted(set(ordered_sections(sex)) | set(ordered_sections(spk)), key=section_key)
    for section in sections:
        s, p = in_section(sex, section), in_section(spk, section)
        keys = sorted({(m, h) for df in (s, p) if len(df) for m, h in zip(df["model"], df["model_sha256"])})
        table = []
        for model, sha in keys:
            ms = s[(s["model"] == model) & (s["model_sha256"] == sha)] if len(s) else s
            mp = p[(p["model"] == model) & (p["model_sha256"] == sha)] if len(p) else p
            gaps = pd.to_numeric(ms["delta_ccc"], errors="coerce").abs().dropna() if len(ms) else pd.Series(dtype=float)
            passed = f"{sum(is_true(v) for v in ms['passed'])}/{len(ms)}" if len(ms) and "passed" in ms else DASH
            by_dim = mp.set_index("dimension") if len(mp) else pd.DataFrame()
            median = " / ".join(fmt3(by_dim.loc[d, "ccc_median"]) if d in by_dim.index else DASH for d in DIMENSIONS)
            rho = " / ".join(fmt3(by_dim.loc[d, "spearman_rho"]) if d in by_dim.index else DASH for d in DIMENSIONS)
            table.append(
                [
                    f"[{model}](models/{model}.md)",
                    sha8(sha),
                    fmt3(gaps.max()) if len(gaps) else DASH,
                    passed,
                    median if len(mp) else DASH,
                    rho if len(mp) else DASH,
                ]
            )
        parts.append(f"### {section_title(section)}")
        headers = [
            "model",
            "sha256",
            "max |ΔCCC| sex",
            "sex tests passed",
            "speaker CCC median (A / D / V)",
            "speaker ρ (A / D / V)",
        ]
        parts.append(md_table(headers, table, "llrrrr"))
    parts.append("*Sources: `results/fairness_sex.csv`, `results/fairness_speaker.csv`.*")
    return "\n\n".join(parts)


def efficiency_rows(inputs: Inputs) -> list[dict]:
    r"""One row per model, with its ``<model>-int8`` sibling folded in."""
    eff = inputs.latest("efficiency")
    if not len(eff):
        return []
    by_model = {r["model"]: r for _, r in eff.sort_values("model").iterrows()}
    rows = []
    for model, r in by_model.items():
        if model.endswith("-int8") and model[: -len("-int8")] in by_model:
            continue
        int8 = by_model.get(f"{model}-int8")
        rows.append({"model": model, "fp32": r, "int8": int8})
    rows.sort(key=lambda x: (float_or_none(x["fp32"].get("ms_per_5s")) or math.inf, x["model"]))
    return rows


def efficiency_section(inputs: Inputs, out: Output) -> str:
    rows = efficiency_rows(inputs)
    if not rows:
        return "## Efficiency\n\n*No efficiency results yet (`results/efficiency.csv`, `nox -s efficiency`).*"
    table = []
    for row in rows:
        r, q = row["fp32"], row["int8"]
        ms = fmt_sig(r.get("ms_per_5s"))
        if float_or_none(r.get("ms_per_5s_iqr")) is not None:
            ms += f" (IQR {fmt_sig(r.get('ms_per_5s_iqr'))})"
        threads = float_or_none(r.get("threads"))
        if threads is not None and threads != 1:
            ms += f" ({threads:.0f} threads)"
        xrt = float_or_none(r.get("xrt"))
        # speed does not depend on weight values; such a row says it timed no trained model
        timed = " *(architecture, random weights)*" if str(r.get("weights", "")) == "random" else ""
        table.append(
            [
                f"[{row['model']}](models/{row['model']}.md){timed}",
                sha8(r["model_sha256"]),
                fmt_count(r.get("parameters")),
                fmt_bytes(r.get("onnx_bytes")),
                DASH if q is None else f"{fmt_bytes(q.get('onnx_bytes'))} ({sha8(q['model_sha256'])})",
                ms,
                DASH if q is None else fmt_sig(q.get("ms_per_5s")),
                DASH if xrt is None else f"{fmt_sig(xrt)}×",
                fmt_float(r.get("peak_rss_mb"), 0),
                _cpus(r, q),
            ]
        )
    headers = [
        "model",
        "sha256",
        "parameters",
        "ONNX fp32",
        "ONNX int8",
        "ms per 5 s",
        "ms per 5 s int8",
        "× real time",
        "peak RSS MB",
        "CPU",
    ]
    parts = [
        "## Efficiency",
        "CPU inference on one thread (onnxruntime) for a 5 s clip: median time, interquartile "
        "range, and how many times faster than real time (`xrt`). A model `X` is paired with "
        "`X-int8` (dynamic int8 quantisation) where both are registered. Sizes in decimal units. "
        "Times are comparable only between rows measured on the same CPU (last column).",
        md_table(headers, table, "ll" + "r" * 7 + "l"),
        "Accuracy against cost: the figure [at a glance](#at-a-glance).",
        "*Source: `results/efficiency.csv`.*",
    ]
    return "\n\n".join(parts)


def _cpus(fp32: dict, int8: dict | None) -> str:
    r"""The CPU the times were measured on; both where fp32 and int8 were timed on different ones."""
    names = [str(r["cpu"]) for r in (fp32, int8) if r is not None and not pd.isna(r.get("cpu")) and str(r["cpu"])]
    return " / ".join(dict.fromkeys(names)) or DASH


def models_section(inputs: Inputs) -> str:
    names = sorted(set(inputs.current) | set(inputs.models))
    if not names:
        return ""
    table = []
    for name in names:
        meta = inputs.models.get(name, {})
        teacher = teacher_label(inputs, name)
        table.append(
            [
                f"[{name}](models/{name}.md)" if name in inputs.current else name,
                meta.get("role") or role_from_results(inputs, name) or DASH,
                teacher or DASH,
                sha8(inputs.current[name]) if name in inputs.current else "no results",
                one_line(meta.get("description")) if meta else "*not in models.yaml*",
            ]
        )
    return "## Models\n\n" + md_table(["model", "role", "teacher", "sha256", "description"], table, "lllll")
