"""Inputs of the docs: result tables, registry metadata, published numbers."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path

import pandas as pd
import yaml

from benchmark import DIMENSIONS, report, results
from benchmark.docs.formatting import Section, is_demo, sha8
from benchmark.paths import PROJECT_ROOT

REPORTED_PATH = Path(__file__).resolve().parent.parent / "reported.yaml"
TABLES = tuple(
    dict.fromkeys(
        (
            "correctness",
            "robustness",
            "fairness_sex",
            "fairness_speaker",
            "speakers",
            "efficiency",
            "runs",
            "consistency_categories",
            *report.TABLES,
            "summary",
        )
    )
)
r"""The tables the docs read: those they show, those :mod:`benchmark.report` judges, and its ``summary``."""


@dataclasses.dataclass
class Inputs:
    r"""Everything the docs are generated from.

    Attributes:
        root: the results folder
        tables: result tables by name (empty frame if absent)
        models: metadata per model name from ``models.yaml``
        reported: entries of ``reported.yaml``
        sources: citations of ``reported.yaml`` by key
        current: the artefact shown on the leaderboard, per model

    """

    root: Path
    tables: dict[str, pd.DataFrame]
    models: dict[str, dict]
    reported: list[dict]
    sources: dict[str, dict]
    current: dict[str, str] = dataclasses.field(default_factory=dict)
    _predictions: dict = dataclasses.field(default_factory=dict)
    _latest: dict = dataclasses.field(default_factory=dict)
    _report: dict = dataclasses.field(default_factory=dict)  # pass/fail outcomes, computed once (docs/summary.py)

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    def latest(self, name: str) -> pd.DataFrame:
        r"""Rows of table ``name`` that belong to each model's current artefact."""
        df = self.table(name)
        if not len(df):
            return df
        if name not in self._latest:  # asked for by every page
            self._latest[name] = df[df["model"].map(self.current).eq(df["model_sha256"]).to_numpy(bool)]
        return self._latest[name]

    def predictions(self, model: str, sha: str, section: Section) -> pd.DataFrame | None:
        r"""Per-file truth and predictions of a model artefact on a split (cached)."""
        key = (model, sha, *section)
        if key not in self._predictions:
            dataset, version, split = section
            self._predictions[key] = results.read_predictions(
                model, sha, dataset, version, split, self.table("correctness"), self.root
            )
        return self._predictions[key]


def read_tables(root: Path) -> dict[str, pd.DataFrame]:
    r"""Read the result tables used by the docs (:func:`benchmark.results.read_table`).

    Absent tables are empty frames. The columns that name a section
    are text with ``''`` for a missing value, so that rows group and
    match by their exact spelling.
    """
    tables = {}
    for name in TABLES:
        df = results.read_table(name, root)
        for col in ("dataset", "dataset_version", "data_fingerprint", "split", "date"):
            if col in df:
                df[col] = df[col].fillna("").astype(str)
        tables[name] = df
    return tables


META = (
    "name",
    "kind",
    "role",
    "source",
    "description",
    "citation",
    "architecture",
    "reported",
    "distilled",
    "params",
    "outputs",
)
r"""The fields of a registry entry that the docs show or use."""


def read_models(registry: typing.Any = None) -> dict[str, dict]:
    r"""Model metadata per name, from the validated model registry.

    The registry is validated as for a run, every problem reported at
    once, except that weights are neither looked for nor hashed
    (``check_files=False``): the docs need names, roles and
    descriptions, so ``nox -s docs`` stays fast and runs from a fresh
    checkout whose large weights are not downloaded. A registry file
    that does not exist gives no metadata: the docs are then made from
    the results alone.

    Args:
        registry: a :class:`benchmark.registry.Registry`, a path to a
            ``models.yaml``, or ``None`` for the project's file

    Raises:
        benchmark.registry.RegistryError: the registry file is invalid

    """
    from benchmark.registry import Registry

    if not isinstance(registry, Registry):
        path = Path(registry) if registry is not None else PROJECT_ROOT / "models.yaml"
        if not path.exists():
            return {}
        registry = Registry.from_file(path, check_files=False)
    return {name: _entry_meta(entry) for name, entry in registry.items()}


def _entry_meta(entry) -> dict:
    meta = {k: getattr(entry, k) for k in META}
    # what identifies a weight-free model (see registered_sha)
    meta["spec_payload"] = entry.spec_hash_payload()
    return meta


def registered_sha(meta: dict) -> str | None:
    r"""The artefact hash ``models.yaml`` pins, where it can be known without the weights.

    A ``source.sha256`` names downloaded weights; weight-free baselines
    are identified by the hash of their parameters (as in
    :mod:`benchmark.models.baselines`). Local weights would have to be
    hashed, which the docs do not do.
    """
    from benchmark.hashing import sha256_text

    source = meta.get("source") or {}
    sha = source.get("sha256") if isinstance(source, dict) else None
    if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha.lower()):
        return sha.lower()
    if meta.get("kind") in ("random", "constant") and meta.get("spec_payload"):
        return sha256_text(meta["spec_payload"])
    return None


def read_reported(path: Path | None = None) -> tuple[list[dict], dict[str, dict]]:
    r"""Published numbers (``reported.yaml``): entries and sources."""
    path = path or REPORTED_PATH
    if not path.exists():
        return [], {}
    data = yaml.safe_load(path.read_text()) or {}
    return list(data.get("entries") or []), dict(data.get("sources") or {})


def artefact_dates(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    r"""First and last result date per ``(model, model_sha256)`` over all tables."""
    frames = [
        df[["model", "model_sha256", "date"]]
        for df in tables.values()
        if len(df) and {"model", "model_sha256", "date"} <= set(df.columns)
    ]
    if not frames:
        return pd.DataFrame(columns=["model", "model_sha256", "first", "last"])
    rows = pd.concat(frames, ignore_index=True).dropna(subset=["model", "model_sha256"])
    rows["date"] = rows["date"].fillna("").astype(str)
    out = rows.groupby(["model", "model_sha256"], sort=True)["date"].agg(["min", "max"]).reset_index()
    return out.rename(columns={"min": "first", "max": "last"})


def select_current(tables: dict[str, pd.DataFrame], models: dict[str, dict]) -> dict[str, str]:
    r"""Artefact shown per model: the one ``models.yaml`` pins, else the newest.

    "Newest" is the latest result date, ties broken by hash so the
    choice never depends on row order. An efficiency row that timed the
    architecture with random weights (:func:`random_weights`) names no
    trained artefact: it is shown only for a model that has nothing else.
    """
    dates = artefact_dates({name: _measured(df) if name == "efficiency" else df for name, df in tables.items()})
    timed = artefact_dates({"efficiency": tables.get("efficiency", pd.DataFrame())})
    dates = pd.concat([dates, timed[~timed["model"].isin(set(dates["model"]))]], ignore_index=True)
    current = {}
    for model, group in dates.groupby("model", sort=True):
        pinned = registered_sha(models.get(model, {}))
        if pinned is not None and pinned in set(group["model_sha256"]):
            current[model] = pinned
        else:
            current[model] = group.sort_values(["last", "model_sha256"]).iloc[-1]["model_sha256"]
    return current


def random_weights(df: pd.DataFrame) -> pd.Series:
    r"""Which efficiency rows timed a model's architecture with random weights (no trained model's artefact).

    Examples:
        >>> random_weights(pd.DataFrame({"weights": ["", "random", None]})).tolist()
        [False, True, False]

    """
    if "weights" not in df:
        return pd.Series(False, index=df.index)
    return df["weights"].fillna("").astype(str).eq("random")


def _measured(df: pd.DataFrame) -> pd.DataFrame:
    return df[~random_weights(df).to_numpy(bool)] if len(df) else df


def load_inputs(results_dir: Path, registry: typing.Any = None, reported: Path | None = None) -> Inputs:
    r"""Read results, registry metadata and published numbers."""
    tables = read_tables(results_dir)
    models = read_models(registry)
    entries, sources = read_reported(reported)
    inputs = Inputs(results_dir, tables, models, entries, sources)
    inputs.current = select_current(tables, models)
    return inputs


def ordered_sections(df: pd.DataFrame) -> list[Section]:
    r"""Sections of a result table in display order (:func:`section_key`).

    Examples:
        >>> df = pd.DataFrame({"dataset": ["demo-a", "b", "b"], "dataset_version": ["1", "10.0", "9.0"],
        ...                    "split": ["test"] * 3})
        >>> ordered_sections(df)
        [('b', '9.0', 'test'), ('b', '10.0', 'test'), ('demo-a', '1', 'test')]

    """
    if not len(df):
        return []
    keys = {(str(d), str(v), str(s)) for d, v, s in zip(df["dataset"], df["dataset_version"], df["split"])}
    return sorted(keys, key=section_key)


def section_key(section: Section) -> tuple:
    r"""Sort key of a section: real corpora before demo replicas, then by name, version and split."""
    dataset, version, split = section
    return is_demo(dataset), dataset, version_key(version), split


def version_key(version: str) -> tuple:
    r"""Sort key of a version: numeric parts compare as numbers, ahead of text parts.

    Examples:
        >>> sorted(["1.10.0", "1.9.0", "1.9.0-rc"], key=version_key)
        ['1.9.0', '1.9.0-rc', '1.10.0']

    """
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-]", version))


def in_section(df: pd.DataFrame, section: Section) -> pd.DataFrame:
    r"""Rows of a result table that belong to one section (``(dataset, dataset_version, split)``)."""
    if not len(df):
        return df
    dataset, version, split = section
    return df[(df["dataset"] == dataset) & (df["dataset_version"] == version) & (df["split"] == split)]


def dimensions_in(df: pd.DataFrame) -> list[str]:
    r"""Emotion dimensions that a table has rows for, in the order of :data:`benchmark.DIMENSIONS`.

    Examples:
        >>> dimensions_in(pd.DataFrame({"dimension": ["valence", "arousal", "valence"]}))
        ['arousal', 'valence']

    """
    present = set(df["dimension"]) if len(df) and "dimension" in df else set()
    return [d for d in DIMENSIONS if d in present]


def role_from_results(inputs: Inputs, model: str) -> str:
    r"""Role a model's correctness rows record (the latest), for a model ``models.yaml`` does not describe."""
    df = inputs.table("correctness")
    if len(df) and "role" in df:
        roles = df.loc[df["model"] == model, "role"].dropna()
        return str(roles.iloc[-1]) if len(roles) else ""
    return ""


def teacher_label(inputs: Inputs, model: str) -> str:
    r"""Teacher a student was distilled from, as ``name `sha8```: its distillation record, else ``models.yaml``.

    Empty for a model that was not distilled.
    """
    recorded = distill_provenance(inputs, model).get("teacher")
    distilled = inputs.models.get(model, {}).get("distilled") or {}
    if isinstance(recorded, dict):  # results/distill/<student>/provenance.json: {name, sha256}
        name, sha = recorded.get("name"), recorded.get("sha256")
    else:
        name, sha = recorded or distilled.get("teacher"), distilled.get("teacher_sha256")
    if not name:
        return ""
    return f"{name} {sha8(sha)}" if sha else str(name)


def distill_provenance(inputs: Inputs, model: str) -> dict:
    r"""A student's distillation record (``results/distill/<model>/provenance.json``); empty if absent or unreadable."""
    path = inputs.root / "distill" / model / "provenance.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
