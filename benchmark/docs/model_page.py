"""The model pages, ``docs/results/models/<model>.md``."""

from __future__ import annotations

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.docs import consistency, real_speech
from benchmark.docs.distillation import distillation_block
from benchmark.docs.formatting import (
    DASH,
    NOTE_MD,
    flatten,
    fmt3,
    fmt_bytes,
    fmt_ccc,
    fmt_count,
    fmt_float,
    fmt_sig,
    fmt_value,
    is_demo,
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
    artefact_dates,
    dimensions_in,
    in_section,
    ordered_sections,
    registered_sha,
    role_from_results,
    section_key,
    teacher_label,
)
from benchmark.docs.leaderboard import split_robustness
from benchmark.docs.model_report import model_report_block
from benchmark.docs.output import FIGURES, Output
from benchmark.docs.published import reported_table
from benchmark.docs.summary import corpus_label


def model_page(inputs: Inputs, model: str, out: Output) -> str:
    r"""Markdown of ``docs/results/models/<model>.md``; figures are added to ``out``."""
    meta = inputs.models.get(model, {})
    current = inputs.current.get(model, "")
    fig_dir = f"{FIGURES}/models/{slug(model)}"
    # a reader's first screen holds what the model is and how it scores; provenance and history follow
    parts = [NOTE_MD, f"# {model}", "[← Leaderboard](../leaderboard.md)"]
    parts.append(summary_line(inputs, model, meta))
    parts.append(real_speech.model_block(inputs, model))
    parts.append(glance_block(inputs, model, out, fig_dir))
    parts.append(model_report_block(inputs, model))
    parts.append(model_correctness_block(inputs, model, out, fig_dir))
    parts.append(model_robustness_block(inputs, model, out, fig_dir))
    parts.append(model_fairness_block(inputs, model, out, fig_dir))
    parts.append(consistency.model_block(inputs, model))
    parts.append(model_efficiency_block(inputs, model))
    parts.append(distillation_block(inputs, model, out, fig_dir))
    parts.append(model_reported_block(inputs, model, meta))
    parts.append(provenance_block(inputs, model, meta, current))
    parts.append(history_block(inputs, model))
    parts.append(runs_block(inputs, model))
    return "\n\n".join(p for p in parts if p) + "\n"


def summary_line(inputs: Inputs, model: str, meta: dict) -> str:
    r"""One line under the title: the model's role and architecture, and the artefact shown (short hash)."""
    role = meta.get("role") or role_from_results(inputs, model)
    words = [w for w in (role, meta.get("architecture")) if w]
    current = inputs.current.get(model, "")
    if current:
        words.append(f"artefact {sha8(current)}")
    return "*" + one_line(" · ".join(str(w) for w in words)) + "*" if words else ""


def glance_block(inputs: Inputs, model: str, out: Output, fig_dir: str) -> str:
    r"""The current artefact's CCC per synthetic replica split and dimension, as a table and one figure.

    The figures of the Correctness section, gathered on the first screen;
    empty without correctness results for the current artefact.
    """
    df = inputs.table("correctness")
    current = inputs.current.get(model)
    if len(df):
        df = df[(df["model"] == model) & (df["model_sha256"] == current) & df["dataset"].map(is_demo)]
    if not len(df):
        return ""
    dims = dimensions_in(df)
    table, bars = [], []
    sections = ordered_sections(df)
    for section in sections:
        rows = in_section(df, section).set_index("dimension")
        label = corpus_label(section, sections).removeprefix("demo-")
        cells = [
            fmt_ccc(rows.at[d, "ccc"], rows.at[d, "ccc_ci_low"], rows.at[d, "ccc_ci_high"]) if d in rows.index else DASH
            for d in dims
        ]
        mean = rows.reindex(dims)["ccc"].mean()
        table.append([f"{section[0]} {section[1]} · {section[2]}", *cells, fmt3(mean)])
        bars.append(rows.reset_index().assign(model=label))
    rel = f"{fig_dir}/glance.png"
    out.figure(rel, "ccc_bars", pd.concat(bars, ignore_index=True), f"{model}: CCC per synthetic replica")
    return "\n\n".join(
        [
            "## Synthetic replicas at a glance",
            "CCC between gold and prediction with its 95 % interval, per split of the synthetic replicas "
            "(generated voices; not comparable to published numbers); details under Correctness below.",
            md_table(["split", *[f"CCC {d}" for d in dims], "mean"], table, "l" + "r" * (len(dims) + 1)),
            f"![CCC per synthetic replica split and dimension](../{rel})",
        ]
    )


def provenance_block(inputs: Inputs, model: str, meta: dict, current: str) -> str:
    rows = []
    if not meta:
        rows.append(["registry", "*not in models.yaml* (results only)"])
    role = meta.get("role") or role_from_results(inputs, model)
    for label, value in (
        ("role", role),
        ("kind", meta.get("kind")),
        ("description", meta.get("description")),
        ("architecture", meta.get("architecture")),
        ("citation", meta.get("citation")),
        ("teacher", teacher_label(inputs, model)),
    ):
        if value:
            rows.append([label, one_line(value)])
    rows.append(["artefact shown", sha8(current) + " (sha256; the full digest is in `results/*.csv`)"])
    pinned = registered_sha(meta) if meta else None
    if pinned and pinned != current:
        rows.append(["artefact in models.yaml", f"{sha8(pinned)} (no results yet; showing the newest results)"])
    return "## Provenance\n\n" + md_table(["field", "value"], rows, "ll")


def history_block(inputs: Inputs, model: str) -> str:
    dates = artefact_dates(inputs.tables)
    dates = dates[dates["model"] == model].sort_values(["last", "model_sha256"], ascending=[False, True])
    ccc = inputs.table("correctness")
    table = []
    for _, r in dates.iterrows():
        sub = ccc[(ccc["model"] == model) & (ccc["model_sha256"] == r["model_sha256"])] if len(ccc) else ccc
        datasets = (
            ", ".join(sorted({f"{d} {v}" for d, v in zip(sub["dataset"], sub["dataset_version"])}))
            if len(sub)
            else DASH
        )
        versions = (
            ", ".join(sorted({str(v) for v in sub["benchmark_version"].dropna()}))
            if len(sub) and "benchmark_version" in sub
            else DASH
        )
        commits = (
            ", ".join(sorted({str(v) for v in sub["code_commit"].dropna()}))
            if len(sub) and "code_commit" in sub
            else DASH
        )
        table.append(
            [
                sha8(r["model_sha256"]),
                "current" if inputs.current.get(model) == r["model_sha256"] else "earlier",
                r["first"] or DASH,
                r["last"] or DASH,
                datasets,
                versions or DASH,
                commits or DASH,
            ]
        )
    headers = ["sha256", "shown", "first result", "last result", "datasets", "benchmark", "code commit"]
    return "## Artefact history\n\n" + md_table(headers, table, "lllllll")


def model_correctness_block(inputs: Inputs, model: str, out: Output, fig_dir: str) -> str:
    df = inputs.table("correctness")
    df = df[df["model"] == model] if len(df) else df
    if not len(df):
        return "## Correctness\n\n*No correctness results.*"
    current = inputs.current.get(model)
    df = df.assign(_current=(df["model_sha256"] != current))
    df = df.sort_values(["_current", "model_sha256"]).reset_index(drop=True)
    table = []
    for _, r in df.iterrows():
        table.append(
            [
                sha8(r["model_sha256"]),
                f"{r['dataset']} {r['dataset_version']} · {r['split']}",
                r["dimension"],
                fmt_ccc(r["ccc"], r.get("ccc_ci_low"), r.get("ccc_ci_high")),
                fmt3(r.get("pearson")),
                fmt3(r.get("mae")),
                fmt_float(r.get("n"), 0),
                r.get("date") or DASH,
            ]
        )
    parts = [
        "## Correctness",
        md_table(
            ["sha256", "dataset · split", "dimension", "CCC [95% CI]", "Pearson", "MAE", "n", "date"], table, "llllrrrl"
        ),
        "*Source: `results/correctness.csv`.*",
    ]
    for section in ordered_sections(df[df["model_sha256"] == current]):
        predictions = inputs.predictions(model, current, section)
        if predictions is None:
            continue
        dims = [d for d in DIMENSIONS if f"truth_{d}" in predictions and f"pred_{d}" in predictions]
        if not dims:
            continue
        rel = f"{fig_dir}/scatter__{slug(*section)}.png"
        out.figure(rel, "truth_vs_prediction", predictions, dims, plot_title(section, model))
        parts.append(f"![gold vs prediction on {section[0]} {section[2]}](../{rel})")
    return "\n\n".join(parts)


def model_robustness_block(inputs: Inputs, model: str, out: Output, fig_dir: str) -> str:
    df = inputs.latest("robustness")
    df = df[df["model"] == model] if len(df) else df
    if not len(df):
        return ""
    parts = ["## Robustness"]
    for section in ordered_sections(df):
        fixed, sweep = split_robustness(in_section(df, section))
        parts.append(f"### {section_title(section)}")
        if len(fixed):
            dims = dimensions_in(fixed)
            pivot = fixed.pivot_table(index=["condition"], columns="dimension", values="delta_ccc", aggfunc="first")
            share = fixed.groupby("condition")["unchanged_share"].mean()
            group = (
                fixed.groupby("condition")["condition_group"].first()
                if "condition_group" in fixed
                else pd.Series(dtype=str)
            )
            table = [
                [
                    c,
                    str(group.get(c, "")) if pd.notna(group.get(c, "")) else "",
                    *[fmt3(pivot.loc[c].get(d)) for d in dims],
                    fmt3(share.get(c)),
                ]
                for c in sorted(pivot.index)
            ]
            parts.append(
                md_table(
                    ["condition", "group", *[f"ΔCCC {d}" for d in dims], "unchanged share"],
                    table,
                    "ll" + "r" * (len(dims) + 1),
                )
            )
            rel = f"{fig_dir}/robustness__{slug(*section)}.png"
            out.figure(rel, "robustness_bars", fixed, plot_title(section, f"{model}, ΔCCC per condition"))
            parts.append(f"![ΔCCC per condition]({'../' + rel})")
        if len(sweep):
            rel = f"{fig_dir}/snr__{slug(*section)}.png"
            out.figure(rel, "snr_curves", sweep, plot_title(section, f"{model}, CCC over SNR"))
            parts.append(f"![CCC over SNR]({'../' + rel})")
    parts.append("*Source: `results/robustness.csv` (artefact shown).*")
    return "\n\n".join(parts)


def model_fairness_block(inputs: Inputs, model: str, out: Output, fig_dir: str) -> str:
    sex, spk, speakers = (inputs.latest(n) for n in ("fairness_sex", "fairness_speaker", "speakers"))
    sex = sex[sex["model"] == model] if len(sex) else sex
    spk = spk[spk["model"] == model] if len(spk) else spk
    speakers = speakers[speakers["model"] == model] if len(speakers) else speakers
    if not (len(sex) or len(spk) or len(speakers)):
        return ""
    parts = ["## Fairness"]
    sections = sorted(
        set(ordered_sections(sex)) | set(ordered_sections(spk)) | set(ordered_sections(speakers)),
        key=section_key,
    )
    for section in sections:
        parts.append(f"### {section_title(section)}")
        s = in_section(sex, section)
        if len(s):
            s = s.sort_values(["dimension", "group"])
            table = [
                [
                    r["dimension"],
                    r["group"],
                    fmt_float(r.get("n"), 0),
                    fmt3(r.get("ccc_group")),
                    fmt3(r.get("ccc_all")),
                    f"{fmt3(r.get('delta_ccc'))} [{fmt3(r.get('ci_low'))}, {fmt3(r.get('ci_high'))}]",
                    fmt3(r.get("threshold")),
                    "pass" if is_true(r.get("passed")) else "**fail**",
                ]
                for _, r in s.iterrows()
            ]
            parts.append(
                md_table(
                    ["dimension", "sex", "n", "CCC group", "CCC all", "ΔCCC [95% CI]", "threshold", "test"],
                    table,
                    "llrrrrrl",
                )
            )
            rel = f"{fig_dir}/sex__{slug(*section)}.png"
            numeric = s.assign(**{c: pd.to_numeric(s[c], errors="coerce") for c in ("delta_ccc", "ci_low", "ci_high")})
            out.figure(rel, "sex_gap_bars", numeric, plot_title(section, f"{model}, sex groups"))
            parts.append(f"![CCC gap per sex group](../{rel})")
        p = in_section(spk, section)
        if len(p):
            p = p.sort_values("dimension")
            table = [
                [
                    r["dimension"],
                    fmt_float(r.get("n_speakers"), 0),
                    f"{fmt3(r.get('ccc_median'))} [{fmt3(r.get('ccc_q25'))}, {fmt3(r.get('ccc_q75'))}]",
                    f"{fmt3(r.get('mae_median'))} [{fmt3(r.get('mae_q25'))}, {fmt3(r.get('mae_q75'))}]",
                    fmt3(r.get("spearman_rho")),
                    fmt3(r.get("spearman_p")),
                ]
                for _, r in p.iterrows()
            ]
            parts.append(
                md_table(
                    ["dimension", "speakers", "CCC median [q25, q75]", "MAE median [q25, q75]", "Spearman ρ", "p"],
                    table,
                    "lrrrrr",
                )
            )
        k = in_section(speakers, section)
        if len(k):
            rel = f"{fig_dir}/speakers__{slug(*section)}.png"
            out.figure(rel, "speaker_boxplot", k, plot_title(section, f"{model}, CCC per speaker"))
            parts.append(f"![CCC per speaker](../{rel})")
    parts.append("*Sources: `results/fairness_sex.csv`, `results/fairness_speaker.csv`, `results/speakers.csv`.*")
    return "\n\n".join(parts)


def model_efficiency_block(inputs: Inputs, model: str) -> str:
    eff = inputs.table("efficiency")
    eff = eff[eff["model"] == model] if len(eff) else eff
    if not len(eff):
        return ""
    table = [
        [
            sha8(r["model_sha256"]),
            fmt_count(r.get("parameters")),
            fmt_bytes(r.get("onnx_bytes")),
            f"{fmt_sig(r.get('ms_per_5s'))} (IQR {fmt_sig(r.get('ms_per_5s_iqr'))})",
            fmt_sig(r.get("xrt")),
            fmt_float(r.get("peak_rss_mb"), 0),
            fmt_float(r.get("threads"), 0),
            str(r.get("runtime", "")),
            str(r.get("cpu", "")),
            r.get("date") or DASH,
        ]
        for _, r in eff.sort_values("model_sha256").iterrows()
    ]
    return (
        "## Efficiency\n\n"
        + md_table(
            [
                "sha256",
                "parameters",
                "ONNX",
                "ms per 5 s",
                "× real time",
                "peak RSS MB",
                "threads",
                "runtime",
                "CPU",
                "date",
            ],
            table,
            "lrrrrrrlll",
        )
        + "\n\n*Source: `results/efficiency.csv`.*"
    )


def model_reported_block(inputs: Inputs, model: str, meta: dict) -> str:
    entries = [e for e in inputs.reported if model in (e.get("models") or [])]
    registry_reported = meta.get("reported") or {}
    if not entries and not registry_reported:
        return ""
    parts = ["## Published numbers (not measured by this benchmark)"]
    if entries:
        parts.append(reported_table(entries, inputs.sources))
    if registry_reported:
        rows = [[k, fmt_value(v)] for k, v in flatten(registry_reported)]
        parts.append("From `models.yaml` (`reported`):\n\n" + md_table(["field", "value"], rows, "ll"))
    return "\n\n".join(parts)


def runs_block(inputs: Inputs, model: str) -> str:
    runs = inputs.table("runs")
    runs = runs[runs["model"] == model] if len(runs) else runs
    if not len(runs):
        return ""
    table = [
        [
            sha8(r["model_sha256"]),
            f"{r['dataset']} {r['dataset_version']} · {r['split']}",
            str(r.get("tests", "")),
            fmt_float(r.get("n_files"), 0),
            fmt_float(r.get("wall_seconds")),
            r.get("date") or DASH,
        ]
        for _, r in runs.sort_values(["model_sha256", "dataset", "dataset_version", "split", "tests"]).iterrows()
    ]
    headers = ["sha256", "dataset · split", "tests", "files", "wall s", "date"]
    return "## Runs\n\n" + md_table(headers, table, "lllrrl") + "\n\n*Source: `results/runs.csv`.*"
