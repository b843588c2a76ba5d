"""The dataset registry (``datasets.yaml``): its entries, their validation and the replica's view of each.

An entry names an audformat database in an audb repository at a pinned
version, its evaluation splits and where labels, speaker and sex are
(``docs/adding-a-dataset.md``). Every problem of a registry file is
reported at once, naming the entry and the field.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS, yaml_lists
from benchmark.data.errors import DatasetConfigError
from benchmark.paths import PROJECT_ROOT, name_problem

DATA_CHOICES = ("demo", "real", "public")
"""``--data``: the embedded replicas, the corpora of your audb repositories, the public corpora of audb-public."""

DEMO_OVERRIDES = ("splits", "labels", "label_range", "speaker", "sex", "categories", "split_files")
"""Fields a ``demo`` mapping may give where the replica's tables differ from the real corpus'."""


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    r"""One ``datasets.yaml`` entry (for the replica's view of it: :meth:`resolved`)."""

    name: str
    audb: str
    version: str
    splits: dict
    labels: dict
    label_range: tuple
    speaker: dict
    sex: dict
    demo: dict | None = None  # the embedded synthetic replica, if the dataset has one
    citation: str = ""
    categories: dict | None = None  # {column, table?, map?}: categorical labels (benchmark.data.categories)
    split_files: dict | None = None  # split → filewise table: the split's rows restricted to those files

    @property
    def label_dimensions(self) -> tuple[str, ...]:
        r"""Dimensions a model must predict for this entry to say anything: A/D/V gold, or any if categorical."""
        return tuple(DIMENSIONS) if self.categories else tuple(self.labels)

    @property
    def has_replica(self) -> bool:
        return bool(self.demo)

    def source(self, data: str) -> str:
        r"""Where this entry is loaded from when the run asks for ``data``.

        ``--data`` chooses only for entries that have both a replica and a
        repository; an entry without a replica always comes from its repository.

        Examples:
            >>> DatasetEntry("m", "m", "1", {}, {}, (0, 1), {}, {}).source("demo")
            'real'

        """
        if data not in DATA_CHOICES:
            raise DatasetConfigError(f"Unknown data source '{data}': use {', '.join(DATA_CHOICES)}.")
        return "demo" if data == "demo" and self.has_replica else "real"

    def resolved(self, data: str) -> DatasetEntry:
        r"""The entry as ``data`` loads it: for the replica, the fields its ``demo`` mapping overrides.

        A replica may lay its tables out differently from the real corpus
        (``demo: {name, version, label_range: [1, 7], speaker: ...}``).

        Examples:
            >>> e = DatasetEntry("m", "m", "1", {"t": "t"}, {}, (0, 1), {}, {}, {"name": "d", "version": "1",
            ...                  "label_range": [1, 7]})
            >>> e.resolved("demo").label_range, e.resolved("real").label_range
            ((1, 7), (0, 1))

        """
        if self.source(data) != "demo":
            return self
        overrides = {k: v for k, v in self.demo.items() if k in DEMO_OVERRIDES}
        if "label_range" in overrides:
            overrides["label_range"] = tuple(overrides["label_range"])
        return dataclasses.replace(self, **overrides)

    def scale(self, values: pd.Series) -> pd.Series:
        r"""Map gold labels linearly from :attr:`label_range` to 0..1.

        Examples:
            >>> e = DatasetEntry("m", "m", "1", {}, {}, (-3, 3), {}, {}, {})
            >>> e.scale(pd.Series([-3.0, 0.0, 3.0])).tolist()
            [0.0, 0.5, 1.0]

        """
        lo, hi = self.label_range
        return (values.astype("float64") - lo) / (hi - lo)

    def coordinates(self, data: str) -> tuple[str, str]:
        r"""audb name and version for ``data`` ``'demo'`` or ``'real'``."""
        if self.source(data) == "demo":
            return self.demo["name"], str(self.demo["version"])
        return self.audb, str(self.version)


_REQUIRED = ("name", "audb", "version", "splits")
_OPTIONAL = ("labels", "label_range", "speaker", "sex", "demo", "citation", "categories", "split_files")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mapping_problems(field: str, value, *, keys_are_names: bool = False, required=()) -> list[str]:
    if not isinstance(value, dict):
        return [f"field '{field}': give a mapping, got {type(value).__name__} {value!r}"]
    problems = [f"field '{field}.{k}' is missing" for k in required if k not in value]
    for key, item in value.items():
        if keys_are_names and name_problem(key):
            problems.append(f"field '{field}': key {name_problem(key)}")
        if not isinstance(item, str) or not item:
            problems.append(f"field '{field}.{key}': give a non-empty string, got {item!r}")
    return problems


def entry_problems(raw) -> list[str]:
    r"""Problems of one ``datasets.yaml`` entry (empty if it is valid): types and ranges, field by field.

    Every name that becomes part of a path (``name``, ``audb``, ``version``,
    the split keys, the demo name and version) must be a plain name.

    Examples:
        >>> entry_problems({"name": "x", "audb": "x", "version": "1.0.0", "splits": {"test": "t"},
        ...                 "labels": {"valence": "v"}, "label_range": ["1", 7], "speaker": {}, "sex": {},
        ...                 "demo": {"name": "demo-x", "version": "1.0.0"}})
        ["field 'label_range': give [low, high], two numbers with high > low, got ['1', 7]"]

    """
    if not isinstance(raw, dict):
        return [f"give a mapping with the fields {', '.join(_REQUIRED)}, got {raw!r}"]
    problems = [f"field '{f}' is missing" for f in _REQUIRED if f not in raw]
    unknown = [f for f in raw if f not in _REQUIRED + _OPTIONAL]
    if unknown:
        problems.append(f"unknown field(s) {unknown}; use {', '.join(_REQUIRED + _OPTIONAL)}")
    if "labels" not in raw and "categories" not in raw:
        problems.append(
            "give 'labels' (A/D/V columns, with 'label_range') or 'categories' (a category column), or both"
        )
    if "labels" in raw and "label_range" not in raw:
        problems.append("field 'label_range' is missing: 'labels' needs the scale of its values")
    if "categories" in raw:
        from benchmark.data.categories import map_problems

        problems += map_problems(raw["categories"])
    for field in ("name", "audb", "version"):
        if field in raw and name_problem(_version_text(raw[field])):
            problems.append(f"field '{field}': {name_problem(_version_text(raw[field]))}")
    if "splits" in raw:
        problems += _mapping_problems("splits", raw["splits"], keys_are_names=True)
        if isinstance(raw["splits"], dict) and not raw["splits"]:
            problems.append("field 'splits': name at least one split and its table")
    if "labels" in raw:
        problems += _mapping_problems("labels", raw["labels"])
        if isinstance(raw["labels"], dict):
            bad = [d for d in raw["labels"] if d not in DIMENSIONS]
            if bad:
                problems.append(f"field 'labels': unknown dimension(s) {bad}; use {', '.join(DIMENSIONS)}")
            if not raw["labels"]:
                problems.append("field 'labels': map at least one dimension to a label column")
    if "label_range" in raw:
        lr = raw["label_range"]
        if not (isinstance(lr, list) and len(lr) == 2 and all(_is_number(v) for v in lr) and lr[1] > lr[0]):
            problems.append(f"field 'label_range': give [low, high], two numbers with high > low, got {lr!r}")
    for field in ("speaker", "sex"):
        if field in raw:
            problems += _mapping_problems(field, raw[field], required=("table", "column") if raw[field] else ())
    if "demo" in raw:
        problems += _demo_problems(raw)
    if "split_files" in raw:
        problems += _mapping_problems("split_files", raw["split_files"])
        if isinstance(raw["split_files"], dict) and isinstance(raw.get("splits"), dict):
            problems += [
                f"field 'split_files': '{k}' is not one of the splits"
                for k in raw["split_files"]
                if k not in raw["splits"]
            ]
    if "citation" in raw and not isinstance(raw["citation"], str):
        problems.append(f"field 'citation': give a string, got {raw['citation']!r}")
    return problems


def _demo_problems(raw: dict) -> list[str]:
    r"""Problems of an entry's ``demo`` mapping, its overrides checked as the replica's view of the entry."""
    demo = raw["demo"]
    problems: list[str] = []
    if not isinstance(demo, dict):
        problems.append(f"field 'demo': give a mapping {{name: ..., version: ...}}, got {demo!r}")
    else:
        problems += [f"field 'demo.{k}' is missing" for k in ("name", "version") if k not in demo]
        unknown_ = [k for k in demo if k not in ("name", "version", *DEMO_OVERRIDES)]
        if unknown_:
            problems.append(
                f"field 'demo': unknown field(s) {unknown_}; use name, version, {', '.join(DEMO_OVERRIDES)}"
            )
        overrides = {k: demo[k] for k in DEMO_OVERRIDES if k in demo}
        if overrides:
            merged = {k: v for k, v in raw.items() if k != "demo"} | overrides
            problems += [f"field 'demo' (the replica's view): {p}" for p in entry_problems(merged)]
        problems += [
            f"field 'demo.{k}': {name_problem(_version_text(demo[k]))}"
            for k in ("name", "version")
            if k in demo and name_problem(_version_text(demo[k]))
        ]
    return problems


def _version_text(value):
    # YAML reads 1.0 as a float; a version is its text
    return str(value) if _is_number(value) else value


def default_registry(data: str = "demo") -> Path:
    r"""The registry ``--data`` reads without ``--datasets``: ``datasets-public.yaml`` for ``public``."""
    return PROJECT_ROOT / ("datasets-public.yaml" if data == "public" else "datasets.yaml")


def load_registry(path: str | os.PathLike | None = None) -> dict[str, DatasetEntry]:
    r"""Load and validate ``datasets.yaml``; every problem is reported at once, naming entry and field."""
    path = Path(path) if path else default_registry()
    if not path.exists():
        raise DatasetConfigError(f"Dataset registry {path} not found: pass --datasets PATH.")
    raw_entries = yaml_lists.listed(yaml_lists.load_yaml(path.read_text(), path, DatasetConfigError), "datasets")
    if raw_entries is not None and not isinstance(raw_entries, list):
        raise DatasetConfigError(f"{path}: 'datasets:' must hold a list of entries.")
    valid, errors = yaml_lists.check_entries(raw_entries or [], path, entry_problems)
    entries = {raw["name"]: make_entry(raw) for raw in valid}
    if not entries and not errors:
        errors.append(f"{path}: no datasets listed under 'datasets:'")
    if errors:
        raise DatasetConfigError(yaml_lists.problem_list("Invalid dataset registry", errors))
    return entries


def make_entry(raw: dict) -> DatasetEntry:
    r"""The :class:`DatasetEntry` of a valid ``datasets.yaml`` entry (:func:`entry_problems` found none)."""
    kw = {k: raw[k] for k in _REQUIRED}
    kw["version"] = str(kw["version"])
    return DatasetEntry(
        labels=raw.get("labels") or {},
        label_range=tuple(raw.get("label_range") or (0, 1)),
        speaker=raw.get("speaker") or {},
        sex=raw.get("sex") or {},
        demo=raw.get("demo") or None,
        citation=raw.get("citation", ""),
        categories=raw.get("categories"),
        split_files=raw.get("split_files"),
        **kw,
    )
