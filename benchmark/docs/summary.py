"""The opening screen of the leaderboard: share of tests passed, mean CCC per corpus, accuracy against cost.

The pass/fail outcomes come from :mod:`benchmark.report` (one home for
the thresholds and their judgement): ``results/summary.csv`` where it
exists, else :func:`benchmark.report.summarize` of
:func:`benchmark.report.evaluate` on the tables. Each model is shown
with its current artefact, as in every other section.

The accuracy-against-cost figure puts a teacher timed as its
architecture with random weights (``weights: random`` in
``results/efficiency.csv``) on the cost axis too. Such a row has no CCC
measured here: it is drawn at the CCC published for the model in
``benchmark/reported.yaml`` (hollow marker, "published, not measured
here") where an entry gives every dimension, else as a dashed line at
its cost.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, report
from benchmark.docs.formatting import DASH, float_or_none, fmt3, md_table, plot_title, slug
from benchmark.docs.inputs import Inputs, in_section, ordered_sections, random_weights, role_from_results
from benchmark.docs.output import FIGURES, Output
from benchmark.docs.ranks import share_interval

COUNTS = ("passed", "undecided", "failed", "not_scored")


def outcomes(inputs: Inputs) -> pd.DataFrame:
    r"""Every test instance judged against ``thresholds.yaml`` (:func:`benchmark.report.evaluate`), computed once."""
    if "outcomes" not in inputs._report:
        inputs._report["outcomes"] = report.evaluate(inputs.tables, report.load_thresholds())
    return inputs._report["outcomes"]


def pass_summary(inputs: Inputs) -> tuple[pd.DataFrame, str]:
    r"""Share of tests passed per model artefact, and a note on where it comes from.

    ``results/summary.csv`` where it exists (``python -m benchmark
    report`` writes it), else :func:`benchmark.report.summarize` of the
    tables. A ``summary.csv`` that no longer matches the tables is shown
    with a warning, not silently replaced.
    """
    written = inputs.table("summary")
    computed = report.summarize(outcomes(inputs))
    if not len(written):
        return computed, "*Computed from the result tables with `benchmark.report` (no `results/summary.csv` yet).*"
    note = "*Source: `results/summary.csv` (`python -m benchmark report`).*"
    if _counts(written) != _counts(computed):
        note += (
            "\n\n> **Warning:** `results/summary.csv` does not match the result tables (written before the latest "
            "results?): run `python -m benchmark report` to update it. The model pages judge the tables themselves."
        )
    return written, note


def _counts(summary: pd.DataFrame) -> set[tuple]:
    cols = ["model", "model_sha256", "tests", *COUNTS]
    if not len(summary) or not set(cols) <= set(summary.columns):
        return set()
    return {(str(r[0]), str(r[1]), *(int(v) for v in r[2:])) for r in summary[cols].itertuples(index=False)}


def current_summary(inputs: Inputs) -> tuple[pd.DataFrame, str]:
    r"""Rows of :func:`pass_summary` for each model's current artefact, ranked by share passed.

    Ties: more tests passed first, then by name.
    """
    summary, note = pass_summary(inputs)
    if not len(summary):
        return summary, note
    keep = summary["model"].map(inputs.current).eq(summary["model_sha256"].astype(str)).to_numpy(bool)
    rows = summary[keep].copy()
    rows["_share"] = pd.to_numeric(rows["share_passed"], errors="coerce").fillna(-1.0)
    rows["_passed"] = pd.to_numeric(rows["passed"], errors="coerce").fillna(0)
    rows = rows.sort_values(["_share", "_passed", "model"], ascending=[False, False, True])
    return rows.drop(columns=["_share", "_passed"]).reset_index(drop=True), note


def fmt_share(value) -> str:
    r"""A share as a whole percentage.

    Examples:
        >>> fmt_share(0.625), fmt_share(None), fmt_share(1.0)
        ('62 %', '—', '100 %')

    """
    v = float_or_none(value)
    return DASH if v is None else f"{100 * v:.0f} %"


def corpus_label(section: tuple[str, str, str], sections: list[tuple[str, str, str]]) -> str:
    r"""Short name of a split; the version only where two versions of a corpus are shown.

    Examples:
        >>> corpus_label(("demo-mosi", "1.0.0", "test"), [("demo-mosi", "1.0.0", "test")])
        'demo-mosi · test'

    """
    dataset, version, split = section
    versions = {v for d, v, s in sections if d == dataset and s == split}
    return f"{dataset} {version} · {split}" if len(versions) > 1 else f"{dataset} · {split}"


def corpus_means(inputs: Inputs) -> tuple[list[tuple[str, str, str]], dict[tuple[str, tuple], float]]:
    r"""Splits in display order, and the mean CCC over the scored dimensions per (model, split)."""
    ccc = inputs.latest("correctness")
    sections = ordered_sections(ccc)
    means = {}
    for section in sections:
        rows = in_section(ccc, section)
        for model, group in rows.groupby("model", sort=True):
            values = pd.to_numeric(group["ccc"], errors="coerce").dropna()
            if len(values):
                means[(model, section)] = float(values.mean())
    return sections, means


def share_ci(row) -> str:
    r"""`` [low, high]`` of the share of tests passed (:func:`benchmark.docs.ranks.share_interval`), '' without tests.

    Examples:
        >>> share_ci({"passed": 50, "tests": 100})
        ' [40–60]'

    """
    passed, tests = float_or_none(row.get("passed")), float_or_none(row.get("tests"))
    if not tests:
        return ""
    low, high = share_interval(int(passed or 0), int(tests))
    return f" [{100 * low:.0f}–{100 * high:.0f}]"


def glance_section(inputs: Inputs, out: Output) -> str:
    r"""``## At a glance``: ranking by share of tests passed, mean CCC per corpus, accuracy against cost."""
    summary, note = current_summary(inputs)
    sections, means = corpus_means(inputs)
    if not len(summary) and not means:
        return ""
    ranked = list(summary["model"]) if len(summary) else []
    untested = sorted({m for m, _ in means} - set(ranked))
    table = []
    for rank, (_, r) in enumerate(summary.iterrows(), start=1) if len(summary) else []:
        table.append(
            [
                str(rank),
                f"[{r['model']}](models/{r['model']}.md)",
                f"{fmt_share(r['share_passed'])}{share_ci(r)} ({float_or_none(r.get('passed')) or 0:.0f} of {float_or_none(r['tests']) or 0:.0f})",
                f"{float_or_none(r.get('undecided')) or 0:.0f}",
                *[fmt3(means.get((r["model"], s))) for s in sections],
            ]
        )
    for model in untested:
        table.append(
            [
                DASH,
                f"[{model}](models/{model}.md)",
                "no tests judged",
                DASH,
                *[fmt3(means.get((model, s))) for s in sections],
            ]
        )
    headers = [
        "#",
        "model",
        "share passed [95% CI] (of tests)",
        "undecided",
        # short headers (the intro says these are mean CCCs on replicas): long ones wrap and widen the table
        *[corpus_label(s, sections).removeprefix("demo-") for s in sections],
    ]
    parts = [
        "## At a glance",
        "Models ranked by the share of tests they pass (as ser-tests ranks them): every test of every dataset, "
        "dimension and condition or group, judged against its threshold in `thresholds.yaml` (the "
        "analyses page lists every test, its threshold and its source). A test whose 95 % interval contains "
        "the threshold is *undecided*; a test not scored (no value, or no skill to judge) counts as not passed. "
        "The real-speech tests count here too. The interval of the share passed resamples the tests (1000 "
        "bootstrap resamples): models whose intervals overlap are not shown to differ; tests of one model share "
        "files, so the interval is a lower bound on the uncertainty. The last columns hold the mean CCC over the "
        "dimensions on each synthetic replica (`demo-*`, named without the prefix). Each model's page gives the "
        "share passed per test family and lists every test.",
    ]
    parts += [md_table(headers, table, "rll" + "r" * (len(headers) - 3)), note]
    figure = cost_figure(inputs, out)
    if figure:
        parts.append(figure)
    return "\n\n".join(parts)


def plot_section(inputs: Inputs) -> tuple[str, str, str] | None:
    r"""The split most models were scored on (earliest in display order on ties): the CCC of the cost figure."""
    ccc = inputs.latest("correctness")
    sections = ordered_sections(ccc)
    if not sections:
        return None
    return max(sections, key=lambda s: (in_section(ccc, s)["model"].nunique(), -sections.index(s)))


def _baseline(inputs: Inputs, model: str) -> bool:
    role = inputs.models.get(model, {}).get("role") or role_from_results(inputs, model)
    return role == "baseline"


def published_ccc(inputs: Inputs, model: str) -> tuple[float, str] | None:
    r"""Mean published CCC of ``model`` and where it is from: the first entry giving every dimension, verified first."""
    entries = [
        e
        for e in inputs.reported
        if model in (e.get("models") or [])
        and all(float_or_none((e.get("ccc") or {}).get(d)) is not None for d in DIMENSIONS)
    ]
    if not entries:
        return None
    e = sorted(entries, key=lambda e: not e.get("verified"))[0]
    source = inputs.sources.get(e.get("source"), {}).get("short") or str(e.get("source", ""))
    where = f"{e.get('corpus', e.get('dataset', ''))} {e.get('split', '')}, {source}"
    where += "" if e.get("verified") else ", unverified"
    return float(np.mean([float(e["ccc"][d]) for d in DIMENSIONS])), where


def cost_points(inputs: Inputs, section: tuple[str, str, str]) -> tuple[pd.DataFrame, list[str]]:
    r"""One point per model for the accuracy-against-cost figure, and the baselines left out.

    Returns:
        columns ``model``, ``kind`` (a key of :data:`benchmark.docs.plots.COST_POINT_KINDS`),
        ``ms_per_5s``, ``parameters``, ``ccc`` (NaN for ``cost only``)
        and ``note`` (where a published CCC is from), sorted by model

    """
    eff = inputs.table("efficiency")
    if not len(eff):
        return pd.DataFrame(columns=["model", "kind", "ms_per_5s", "parameters", "ccc", "note"]), []
    ccc = in_section(inputs.latest("correctness"), section)
    timed = random_weights(eff).to_numpy(bool)
    measured, arch = inputs.latest("efficiency"), eff[timed]
    measured = measured[~random_weights(measured).to_numpy(bool)] if len(measured) else measured
    points, left_out = [], []
    for model in sorted(set(eff["model"])):
        rows, kind = measured[measured["model"] == model] if len(measured) else measured, "measured"
        if not len(rows):
            rows = (
                arch[arch["model"] == model].sort_values(["date", "model_sha256"])
                if "date" in arch
                else arch[arch["model"] == model]
            )
            rows, kind = rows.tail(1), "architecture"
        if not len(rows):
            continue  # only earlier artefacts were timed
        if _baseline(inputs, model):
            left_out.append(model)
            continue
        r = rows.iloc[-1]
        values = pd.to_numeric(ccc.loc[ccc["model"] == model, "ccc"], errors="coerce").dropna()
        value, note = (float(values.mean()), "") if len(values) else (math.nan, "")
        if math.isnan(value) and kind == "measured":
            continue  # not scored on this split
        if math.isnan(value):
            published = published_ccc(inputs, model)
            kind, (value, note) = ("published", published) if published else ("cost only", (math.nan, ""))
        ms = float_or_none(r.get("ms_per_5s"))
        if ms is None or ms <= 0:
            continue
        params = float_or_none(r.get("parameters"))
        points.append(
            {
                "model": model,
                "kind": kind,
                "ms_per_5s": ms,
                "parameters": params if params else math.nan,
                "ccc": value,
                "note": note,
            }
        )
    return pd.DataFrame(points, columns=["model", "kind", "ms_per_5s", "parameters", "ccc", "note"]), left_out


def cost_figure(inputs: Inputs, out: Output) -> str:
    r"""Mean CCC against ms per 5 s clip and against parameters (log axes), with its caption."""
    section = plot_section(inputs)
    if section is None:
        return ""
    points, left_out = cost_points(inputs, section)
    if not len(points):
        return ""
    rel = f"{FIGURES}/leaderboard/cost__{slug(*section)}.png"
    out.figure(rel, "accuracy_vs_cost", points, plot_title(section, "mean CCC against cost"))
    lines = [
        f"![mean CCC against CPU time and model size]({rel})",
        f"*Mean CCC over the dimensions on {section[0]} {section[1]} · {section[2]} (the split most models "
        "were scored on) against the median time of one 5 s clip on one CPU thread and the number of parameters "
        "(`results/efficiency.csv`; log axes; times compare only within one CPU, see Efficiency).*",
    ]
    for _, p in points[points["kind"] != "measured"].iterrows():
        lines.append(
            f"- **{p['model']}**: "
            + {
                "architecture": "CCC measured here; time and size of its architecture, timed with random weights.",
                "published": f"mean CCC {fmt3(p['ccc'])} *published, not measured here* ({p['note']}); time and size "
                "of its architecture, timed with random weights (hollow marker).",
                "cost only": "timed as its architecture with random weights; no CCC measured here or published "
                "(dashed line at its cost).",
            }[p["kind"]]
        )
    missing = sorted(points.loc[points["parameters"].isna(), "model"])
    if missing:
        lines.append(f"- No parameter count, left out of the size panel: {', '.join(missing)}.")
    if left_out:
        lines.append(f"- Baselines left out (their time is that of a random number generator): {', '.join(left_out)}.")
    return "\n\n".join(lines[:2] + (["\n".join(lines[2:])] if lines[2:] else []))
