"""Pass/fail report: every test against its threshold, and the share of tests each model passes.

The thresholds live in one declarative file, ``thresholds.yaml`` (as
ser-tests keeps one threshold per test). A test instance is one row of
a result table (one model artefact × dataset split × dimension, and
condition for robustness) judged against one threshold:

- ``passed`` / ``failed``: the value is on the right / wrong side;
- ``undecided``: the value's 95 % interval contains the threshold, so
  the data cannot tell (only tests whose table carries an interval);
- ``not scored``: the value is missing (e.g. a constant prediction has
  no Pearson correlation), or the test needs skill the model lacks
  there; counted as not passed.

Robustness and fairness of a prediction without skill mean nothing: a
constant model never changes under noise and is equally bad for every
group. A test marked ``requires_skill`` is therefore scored only where
the model's CCC on the same split and dimension has a 95 % interval
above 0; elsewhere it is ``not scored`` with a note. Without this rule a
constant model would pass most tests and top the ranking.

The report is a pure function of the result tables: it loads no model
and reads no audio. ``results/summary.csv`` holds one row per model
artefact: tests run, passed, failed, undecided, and the share passed,
overall and per family (ser-tests' headline view).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import yaml_lists
from benchmark.paths import PROJECT_ROOT

OUTCOMES = ("passed", "failed", "undecided", "not scored")
FAMILIES = ("correctness", "distribution", "fairness", "robustness", "consistency")
TABLES = (
    "correctness",
    "distribution",
    "fairness_sex",
    "fairness_pitch",
    "fairness_speaker",
    "speakers",
    "robustness",
    "consistency",
)
GROUP = ("model", "model_sha256", "dataset", "dataset_version", "data_fingerprint", "split", "dimension")
"""Columns that identify what one test instance is about; :data:`INSTANCE` adds a table's own."""

INSTANCE = {
    "robustness": ("condition",),
    "fairness_sex": ("group",),
    "fairness_pitch": ("sex", "group"),
    "consistency": ("group",),
}

_FIELDS = {
    "name",
    "family",
    "table",
    "column",
    "ci",
    "min",
    "max",
    "abs_max",
    "aggregate",
    "where",
    "requires_skill",
    "source",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class ThresholdsError(ValueError):
    r"""``thresholds.yaml`` is invalid; the message lists every problem, naming the test and the field."""


@dataclasses.dataclass(frozen=True)
class Threshold:
    r"""One test: which value of which table must lie on which side of what."""

    name: str
    family: str
    table: str
    column: str
    bound: str  # 'min', 'max' or 'abs_max'
    value: float
    source: str
    ci: tuple[str, str] | None = None
    aggregate: str | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires_skill: bool = False

    @property
    def text(self) -> str:
        r"""The rule in words, e.g. ``'>= 0.5'``.

        Examples:
            >>> Threshold("ccc", "correctness", "correctness", "ccc", "min", 0.5, "ser-tests").text
            '>= 0.5'
            >>> Threshold("d", "fairness", "fairness_sex", "delta_ccc", "abs_max", 0.075, "ser-tests").text
            '|x| <= 0.075'

        """
        return {"min": f">= {self.value:g}", "max": f"<= {self.value:g}", "abs_max": f"|x| <= {self.value:g}"}[
            self.bound
        ]

    def judge(self, value: float, low: float = math.nan, high: float = math.nan) -> str:
        r"""Outcome of one value (and its interval, if any).

        Examples:
            >>> t = Threshold("ccc", "correctness", "correctness", "ccc", "min", 0.5, "ser-tests")
            >>> t.judge(0.6), t.judge(0.4), t.judge(0.6, 0.45, 0.7), t.judge(float("nan"))
            ('passed', 'failed', 'undecided', 'not scored')
            >>> a = Threshold("d", "fairness", "fairness_sex", "delta_ccc", "abs_max", 0.075, "ser-tests")
            >>> a.judge(-0.02, -0.05, 0.01), a.judge(0.1, 0.08, 0.12), a.judge(0.05, 0.01, 0.09)
            ('passed', 'failed', 'undecided')

        """
        if value is None or not np.isfinite(value):
            return "not scored"
        lo, hi = (low, high) if np.isfinite(low) and np.isfinite(high) else (value, value)
        if self.bound == "min":
            ok, bad = lo >= self.value, hi < self.value
        elif self.bound == "max":
            ok, bad = hi <= self.value, lo > self.value
        else:
            ok, bad = -self.value <= lo and hi <= self.value, lo > self.value or hi < -self.value
        return "passed" if ok else "failed" if bad else "undecided"

    def __post_init__(self):
        if self.bound not in ("min", "max", "abs_max"):
            raise ValueError(f"bound must be min, max or abs_max, not {self.bound!r}")


def load_thresholds(path: str | os.PathLike | None = None) -> list[Threshold]:
    r"""Load and validate ``thresholds.yaml``; every problem is reported at once.

    Args:
        path: threshold file (default: the project's ``thresholds.yaml``)

    Raises:
        ThresholdsError: the file is missing, or an entry is invalid

    Examples:
        >>> [t.name for t in load_thresholds()][:3]
        ['ccc', 'pearson', 'mae']

    """
    path = Path(path) if path else PROJECT_ROOT / "thresholds.yaml"
    if not path.exists():
        raise ThresholdsError(f"Threshold file {path} not found.")
    raw = yaml_lists.listed(yaml_lists.load_yaml(path.read_text(), path, ThresholdsError), "tests")
    if not isinstance(raw, list) or not raw:
        raise ThresholdsError(f"{path}: list the tests under 'tests:'.")
    valid, errors = yaml_lists.check_entries(
        raw,
        path,
        _validate,
        noun="test",
        duplicate=lambda first: "field 'name': duplicate name; give each test a unique name",
    )
    if errors:
        raise ThresholdsError(yaml_lists.problem_list("Invalid thresholds", errors))
    return [_make(entry) for entry in valid]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(entry) -> list[str]:
    if not isinstance(entry, dict):
        return ["must be a mapping of fields (name, family, table, column, min/max/abs_max, source)"]
    problems = [f"field '{k}' is unknown; allowed: {', '.join(sorted(_FIELDS))}" for k in sorted(set(entry) - _FIELDS)]
    for field in ("name", "family", "table", "column", "source"):
        if not isinstance(entry.get(field), str) or not entry.get(field):
            problems.append(f"field '{field}' is missing or not a string")
    if isinstance(entry.get("name"), str) and not _NAME.match(entry["name"]):
        problems.append("field 'name': use lower case letters, digits, '.', '_', '-'")
    if isinstance(entry.get("family"), str) and entry["family"] not in FAMILIES:
        problems.append(f"field 'family': unknown family '{entry['family']}'; use one of {', '.join(FAMILIES)}")
    if isinstance(entry.get("table"), str) and entry["table"] not in TABLES:
        problems.append(f"field 'table': unknown table '{entry['table']}'; use one of {', '.join(TABLES)}")
    bounds = [b for b in ("min", "max", "abs_max") if b in entry]
    if len(bounds) != 1:
        problems.append("give exactly one of 'min', 'max' or 'abs_max'")
    elif not _is_number(entry[bounds[0]]):
        problems.append(f"field '{bounds[0]}': must be a number, not {entry[bounds[0]]!r}")
    elif bounds[0] == "abs_max" and entry["abs_max"] < 0:
        problems.append("field 'abs_max': must not be negative")
    ci = entry.get("ci")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(c, str) for c in ci)):
        problems.append("field 'ci': must be a list of two column names [low, high]")
    if entry.get("aggregate") not in (None, "mean"):
        problems.append(f"field 'aggregate': only 'mean' is supported, not {entry['aggregate']!r}")
    if entry.get("aggregate") and ci is not None:
        problems.append("field 'ci': an aggregated value has no interval; drop 'ci' or 'aggregate'")
    if not isinstance(entry.get("requires_skill", False), bool):
        problems.append(f"field 'requires_skill': must be true or false, not {entry['requires_skill']!r}")
    where = entry.get("where", {})
    if not isinstance(where, dict) or not all(
        isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v)) for v in where.values()
    ):
        problems.append("field 'where': must map a column to a value or a list of values")
    return problems


def _make(entry: dict) -> Threshold:
    bound = next(b for b in ("min", "max", "abs_max") if b in entry)
    where = tuple(sorted((k, tuple([v] if isinstance(v, str) else v)) for k, v in (entry.get("where") or {}).items()))
    return Threshold(
        name=entry["name"],
        family=entry["family"],
        table=entry["table"],
        column=entry["column"],
        bound=bound,
        value=float(entry[bound]),
        source=entry["source"],
        ci=tuple(entry["ci"]) if entry.get("ci") else None,
        aggregate=entry.get("aggregate"),
        where=where,
        requires_skill=entry.get("requires_skill", False),
    )


def _numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[column].replace("", np.nan), errors="coerce").to_numpy(float)


def evaluate(tables: typing.Mapping[str, pd.DataFrame], thresholds: typing.Sequence[Threshold]) -> pd.DataFrame:
    r"""Judge every test instance in ``tables`` (result table name → rows).

    Returns:
        one row per test instance: the :data:`GROUP` columns, ``condition``
        (empty outside robustness), ``sex`` and ``group`` (empty outside the
        group tests), ``test``, ``family``, ``value``,
        ``ci_low``, ``ci_high``, ``threshold`` (the rule in words),
        ``outcome`` (one of :data:`OUTCOMES`), ``note`` and ``source``

    """
    skill = {**_skill(tables.get("correctness")), **consistency_skill(tables.get("consistency"))}
    frames = []
    for t in thresholds:
        df = tables.get(t.table)
        if df is None or not len(df) or t.column not in df:
            continue
        for column, values in t.where:
            df = df[df[column].astype(str).isin(values)] if column in df else df.iloc[:0]
        if not len(df):
            continue
        keys = [c for c in GROUP if c in df] + [c for c in INSTANCE.get(t.table, ()) if c in df]
        df = df.assign(_value=_numbers(df, t.column))
        if t.aggregate == "mean":
            df = df.groupby(keys, sort=False, dropna=False)["_value"].mean().reset_index()
        low = _numbers(df, t.ci[0]) if t.ci else np.full(len(df), np.nan)
        high = _numbers(df, t.ci[1]) if t.ci else np.full(len(df), np.nan)
        out = df[keys].copy()
        out["test"], out["family"], out["value"] = t.name, t.family, df["_value"].to_numpy(float)
        out["ci_low"], out["ci_high"], out["threshold"] = low, high, t.text
        out["outcome"] = [t.judge(v, lo, hi) for v, lo, hi in zip(out["value"], low, high)]
        out["note"] = ""
        if t.requires_skill:
            has_skill = [skill.get(k, False) for k in out[list(GROUP)].astype(str).itertuples(index=False, name=None)]
            note = NO_AUC_SKILL if t.table == "consistency" else NO_SKILL
            out.loc[~np.array(has_skill, dtype=bool), ["outcome", "note"]] = ("not scored", note)
        out["source"] = t.source
        frames.append(out)
    columns = [
        *GROUP,
        "condition",
        "sex",
        "group",
        "test",
        "family",
        "value",
        "ci_low",
        "ci_high",
        "threshold",
        "outcome",
        "note",
        "source",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return (
        pd.concat(frames, ignore_index=True).reindex(columns=columns).fillna({"condition": "", "sex": "", "group": ""})
    )


NO_SKILL = "no skill here: the CCC's 95 % interval reaches 0"
NO_AUC_SKILL = "no skill here: the AUC's 95 % interval (all files) reaches 0.5"


def consistency_skill(consistency: pd.DataFrame | None) -> dict[tuple, bool]:
    r"""Per :data:`GROUP` key of a categorical split: does the AUC of all files have a 95 % interval above 0.5?

    Examples:
        >>> row = {c: "x" for c in GROUP}
        >>> rows = pd.DataFrame([{**row, "group": "all", "ci_low": 0.55}, {**row, "group": "female", "ci_low": 0.4}])
        >>> consistency_skill(rows)
        {('x', 'x', 'x', 'x', 'x', 'x', 'x'): True}

    """
    if consistency is None or not len(consistency) or "ci_low" not in consistency:
        return {}
    rows = consistency[consistency["group"].astype(str) == "all"]
    low = _numbers(rows, "ci_low")
    keys = rows[list(GROUP)].astype(str).itertuples(index=False, name=None)
    return {k: bool(lo > 0.5) for k, lo in zip(keys, low)}


def _skill(correctness: pd.DataFrame | None) -> dict[tuple, bool]:
    r"""Per :data:`GROUP` key: does the CCC's 95 % interval lie above 0?"""
    if correctness is None or not len(correctness) or "ccc_ci_low" not in correctness:
        return {}
    low = _numbers(correctness, "ccc_ci_low")
    keys = correctness[list(GROUP)].astype(str).itertuples(index=False, name=None)
    return {k: bool(lo > 0) for k, lo in zip(keys, low)}


def summarize(outcomes: pd.DataFrame) -> pd.DataFrame:
    r"""Per model artefact: tests, passed, failed, undecided, not scored, share passed (overall and per family).

    Examples:
        >>> rows = pd.DataFrame({"model": ["m"] * 4, "model_sha256": ["s"] * 4,
        ...     "family": ["correctness", "correctness", "fairness", "robustness"],
        ...     "outcome": ["passed", "failed", "undecided", "passed"]})
        >>> summarize(rows)[["model", "tests", "passed", "undecided", "share_passed", "share_correctness"]]
          model  tests  passed  undecided  share_passed  share_correctness
        0     m      4       2          1           0.5                0.5

    """
    columns = [
        "model",
        "model_sha256",
        "tests",
        *[o.replace(" ", "_") for o in OUTCOMES],
        "share_passed",
        *[f"share_{f}" for f in FAMILIES],
    ]
    if not len(outcomes):
        return pd.DataFrame(columns=columns)
    rows = []
    for (model, sha), group in outcomes.groupby(["model", "model_sha256"], sort=True):
        counts = group["outcome"].value_counts()
        row = {"model": model, "model_sha256": sha, "tests": len(group)}
        row.update({o.replace(" ", "_"): int(counts.get(o, 0)) for o in OUTCOMES})
        row["share_passed"] = row["passed"] / len(group)
        for family in FAMILIES:
            sub = group[group["family"] == family]
            row[f"share_{family}"] = float((sub["outcome"] == "passed").mean()) if len(sub) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def read_tables(root: Path | None = None) -> dict[str, pd.DataFrame]:
    r"""The result tables the thresholds read, as written under ``results/`` (missing ones are empty)."""
    from benchmark import results

    return {name: results.read_table(name, root) for name in TABLES}


class SummaryFileError(ValueError):
    r"""The results folder holds a ``summary.csv`` that the benchmark did not write."""


SUMMARY_HEADER = "model,model_sha256,tests,passed,"
"""How every ``summary.csv`` the benchmark writes begins (:func:`summarize`'s first columns)."""


def check_summary(root: Path | None = None) -> Path:
    r"""Where the summary goes; refuses to overwrite a ``summary.csv`` the benchmark did not write.

    Raises:
        SummaryFileError: naming the file and what to do

    """
    from benchmark import results
    from benchmark.paths import results_root

    path = results.table_path("summary", root or results_root())
    if path.exists():
        with open(path, "rb") as fp:
            head = fp.readline(200).decode("utf-8", "replace").strip()
        if not head.startswith(SUMMARY_HEADER):
            raise SummaryFileError(
                f"{path} was not written by the benchmark (it begins {head[:60]!r}, a pass/fail summary begins "
                f"'{SUMMARY_HEADER}...'); the summary would replace it. Move or rename that file, or pass "
                "--results DIR to write to another folder."
            )
    return path


def write_summary(root: Path | None = None, thresholds: typing.Sequence[Threshold] | None = None) -> Path:
    r"""Judge the result tables under ``root`` and write ``summary.csv`` next to them (atomically).

    The file is a function of the tables alone: the same tables give the same bytes. A
    ``summary.csv`` that the benchmark did not write is never replaced (:func:`check_summary`).
    """
    from benchmark import results
    from benchmark.paths import results_root

    root = root or results_root()
    check_summary(root)
    summary = summarize(evaluate(read_tables(root), thresholds or load_thresholds()))
    path = results.table_path("summary", root)
    results.atomic_write_text(path, results.format_table(summary).to_csv(index=False, lineterminator="\n"))
    return path
