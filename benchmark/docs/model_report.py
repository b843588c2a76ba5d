"""The pass/fail report on a model page: every test of the shown artefact against its threshold.

The outcomes are :func:`benchmark.report.evaluate`'s (through
:func:`benchmark.docs.summary.outcomes`): this module only lays them out.
"""

from __future__ import annotations

import pandas as pd

from benchmark import DIMENSIONS, report
from benchmark.docs.formatting import DASH, float_or_none, fmt3, md_table, section_title
from benchmark.docs.inputs import Inputs, ordered_sections
from benchmark.docs.summary import COUNTS, fmt_share, outcomes

OUTCOME_CELL = {"passed": "passed", "failed": "**failed**", "undecided": "*undecided*", "not scored": "not scored"}
r"""How an outcome reads in the table: failures stand out, undecided is marked as such."""

INSTANCE_COLUMNS = (
    "test",
    "dimension",
    "condition",
    "sex",
    "group",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "outcome",
    "note",
)


def model_report_block(inputs: Inputs, model: str) -> str:
    r"""``## Tests``: share passed, one line per test (threshold, source, counts), and every test instance per split."""
    rows = model_outcomes(inputs, model)
    if not len(rows):
        return ""
    counts = rows["outcome"].value_counts()
    n = len(rows)
    parts = [
        "## Tests",
        f"**{fmt_share(counts.get('passed', 0) / n)} of {n} tests passed** "
        f"({counts.get('passed', 0)} passed, {counts.get('undecided', 0)} undecided, {counts.get('failed', 0)} failed, "
        f"{counts.get('not scored', 0)} not scored) by the artefact shown. Each test × dataset × dimension "
        "(× condition or group) is judged against its threshold in `thresholds.yaml`: *undecided* where the "
        "value's 95 % interval contains the threshold, *not scored* (counted as not passed) where there is no "
        "value or no skill to judge.",
        per_test_table(rows),
    ]
    for section in ordered_sections(rows):
        sub = rows[
            (rows["dataset"] == section[0]) & (rows["dataset_version"] == section[1]) & (rows["split"] == section[2])
        ]
        parts.append(f"### Tests on {section_title(section)}")
        parts.append(instances_table(sub))
    parts.append("*Judged by `benchmark.report` from the result tables and `thresholds.yaml`.*")
    return "\n\n".join(parts)


def model_outcomes(inputs: Inputs, model: str) -> pd.DataFrame:
    r"""Test instances of ``model``'s current artefact, in a stable order (family, test, split, dimension, instance)."""
    df = outcomes(inputs)
    if not len(df):
        return df
    if "by_artefact" not in inputs._report:  # sorted and split once, not once per model page
        inputs._report["by_artefact"] = {k: g for k, g in _ordered(df).groupby(["model", "model_sha256"], sort=False)}
    empty = df.iloc[:0]
    return inputs._report["by_artefact"].get((model, str(inputs.current.get(model))), empty).reset_index(drop=True)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    rows = df.assign(
        **{c: df[c].fillna("").astype(str) for c in ("model_sha256", "dataset", "dataset_version", "split")}
    )
    tests = list(dict.fromkeys(df["test"]))  # thresholds.yaml order
    rows["_f"] = rows["family"].map({f: i for i, f in enumerate(report.FAMILIES)})
    rows["_t"] = rows["test"].map({t: i for i, t in enumerate(tests)})
    rows["_d"] = rows["dimension"].map({d: i for i, d in enumerate(DIMENSIONS)}).fillna(len(DIMENSIONS))
    order = ["_f", "_t", "dataset", "dataset_version", "split", "_d", "condition", "sex", "group"]
    return rows.sort_values(order, kind="stable").drop(columns=["_f", "_t", "_d"])


def per_test_table(rows: pd.DataFrame) -> str:
    r"""One line per test: family, threshold, source and its outcome counts."""
    table = []
    for test, group in rows.groupby("test", sort=False):
        counts = group["outcome"].value_counts()
        first = group.iloc[0]
        table.append(
            [
                test,
                first["family"],
                first["threshold"],
                first["source"],
                *[str(int(counts.get(c.replace("_", " "), 0))) for c in COUNTS],
                fmt_share(counts.get("passed", 0) / len(group)),
            ]
        )
    headers = ["test", "family", "threshold", "source", "passed", "undecided", "failed", "not scored", "share passed"]
    return md_table(headers, table, "llll" + "r" * 5)


def instance(row: pd.Series) -> str:
    r"""The condition or group a test instance is about (empty for a whole split).

    Examples:
        >>> instance(pd.Series({"condition": "", "sex": "female", "group": "low"}))
        'female, low f0'
        >>> instance(pd.Series({"condition": "mp3-32k", "sex": "", "group": ""}))
        'mp3-32k'

    """
    condition, sex, group = (str(row.get(c) or "") for c in ("condition", "sex", "group"))
    if sex:
        return f"{sex}, {group} f0" if group else sex
    return condition or group


def value_cell(row: pd.Series) -> str:
    r"""The value with its 95 % interval where the test has one.

    Examples:
        >>> value_cell(pd.Series({"value": 0.61, "ci_low": 0.48, "ci_high": 0.7}))
        '0.610 [0.480, 0.700]'

    """
    if float_or_none(row.get("ci_low")) is None or float_or_none(row.get("ci_high")) is None:
        return fmt3(row.get("value"))
    return f"{fmt3(row.get('value'))} [{fmt3(row['ci_low'])}, {fmt3(row['ci_high'])}]"


def instances_table(rows: pd.DataFrame) -> str:
    r"""Every test instance of one split: value [CI], threshold, outcome (and why where not scored)."""
    table = [
        [
            r["test"],
            r["dimension"],
            instance(r) or DASH,
            value_cell(r),
            r["threshold"],
            OUTCOME_CELL.get(r["outcome"], r["outcome"]),
            "" if pd.isna(r.get("note")) else str(r["note"]),
        ]
        # not iterrows: a page may hold a thousand rows
        for r in rows[[c for c in INSTANCE_COLUMNS if c in rows]].to_dict("records")
    ]
    headers = ["test", "dimension", "condition / group", "value [95% CI]", "threshold", "outcome", "note"]
    return md_table(headers, table, "lllrlll")
