"""The dataset registry (``datasets.yaml``) and loading of evaluation splits via audb.

Every split is loaded with :func:`audb.load` at a pinned version, from
the real corpora (``data="real"``, audb repositories configured by the
user) or from their embedded synthetic replicas (``data="demo"``, the
default, published on first use into a local file-system repository).
Evaluation code cannot tell the two apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import socket
import typing
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import yaml

from benchmark import DIMENSIONS
from benchmark.paths import PROJECT_ROOT, cache_dir, name_problem


class DatasetConfigError(ValueError):
    r"""A dataset is unknown, misconfigured, or no repository can serve it."""


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    r"""One ``datasets.yaml`` entry."""

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
        if data not in ("demo", "real"):
            raise DatasetConfigError(f"Unknown data source '{data}': use 'demo' or 'real'.")
        return data if self.has_replica else "real"

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


@dataclasses.dataclass
class EvalSet:
    r"""A loaded evaluation split: audio files, gold labels on 0..1, speaker and sex.

    All series share the filewise index :attr:`files` (absolute paths).
    :attr:`fingerprint` identifies the content (see :func:`data_fingerprint`);
    when not given it is computed from the files on disk.
    """

    dataset: str  # registry name, e.g. 'msppodcast'
    audb_name: str  # what audb loaded, e.g. 'demo-msppodcast'
    version: str
    split: str
    table: str
    truth: pd.DataFrame  # index: files; columns: the dimensions this set has, on 0..1
    speaker: pd.Series | None
    sex: pd.Series | None
    root: str
    fingerprint: str = ""
    category: pd.Series | None = None  # categorical label per file, if the entry declares categories
    places: dict | None = None  # category → {dimension: 'high'|'low'} (benchmark.data.categories.placement)

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = data_fingerprint(self.truth, self.speaker, self.sex, self.root, category=self.category)

    @property
    def files(self) -> pd.Index:
        return self.truth.index

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in DIMENSIONS if d in self.truth.columns)

    def provenance(self) -> dict:
        return {
            "dataset": self.audb_name,
            "dataset_version": self.version,
            "split": self.split,
            "table": self.table,
            "data_fingerprint": self.fingerprint[:12],
        }

    def subset(self, files: pd.Index) -> EvalSet:
        r"""The same split restricted to ``files`` (kept in the given order).

        The fingerprint stays the split's: the subset's rows and cached
        predictions belong to the same data.
        """
        return dataclasses.replace(
            self,
            truth=self.truth.loc[files],
            speaker=None if self.speaker is None else self.speaker.loc[files],
            sex=None if self.sex is None else self.sex.loc[files],
            category=None if self.category is None else self.category.loc[files],
        )


def data_fingerprint(
    truth: pd.DataFrame,
    speaker: pd.Series | None,
    sex: pd.Series | None,
    root: str,
    checksums: typing.Mapping[str, str] | None = None,
    category: pd.Series | None = None,
) -> str:
    r"""SHA-256 of everything a split's scores depend on.

    Per file: its path relative to ``root``, the checksum of its bytes,
    its gold labels, speaker and sex. A dataset *version* names the
    content only as long as nobody publishes other content under the
    same version; the fingerprint tells builds apart regardless, and it
    is the same on every machine that has the same data.

    Args:
        truth: gold labels, index: absolute file paths
        speaker: speaker per file, or None
        sex: sex per file, or None
        root: database root the paths are relative to
        checksums: MD5 of each file's bytes by relative path, as audb
            records them (see :func:`audb.dependencies`); files missing
            here are read and hashed
        category: categorical label per file, or None (then the
            fingerprint is the one of a split without categories)

    Examples:
        >>> truth = pd.DataFrame({"arousal": [0.5]}, index=pd.Index(["/no/such.wav"], name="file"))
        >>> data_fingerprint(truth, None, None, "/no")[:12]
        '1b280d7f39d3'

    """
    checksums = checksums or {}
    rows = []
    speakers = speaker.reindex(truth.index) if speaker is not None else [None] * len(truth)
    sexes = sex.reindex(truth.index) if sex is not None else [None] * len(truth)
    cats = category.reindex(truth.index) if category is not None else [None] * len(truth)
    for (file, labels), spk, sx, cat in zip(truth.iterrows(), speakers, sexes, cats):
        relative = Path(os.path.relpath(str(file), root) if root else str(file)).as_posix()
        checksum = checksums.get(relative) or _md5(str(file))
        values = ",".join(f"{name}={float(v)!r}" for name, v in labels.items())
        row = f"{relative}\t{checksum}\t{values}\t{_text(spk)}\t{_text(sx)}"
        rows.append(row if category is None else f"{row}\t{_text(cat)}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _md5(path: str) -> str:
    try:
        with open(path, "rb") as fp:
            return hashlib.md5(fp.read()).hexdigest()
    except OSError:
        return "unreadable"


_REQUIRED = ("name", "audb", "version", "splits")
_OPTIONAL = ("labels", "label_range", "speaker", "sex", "demo", "citation", "categories")


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
        demo = raw["demo"]
        if not isinstance(demo, dict):
            problems.append(f"field 'demo': give a mapping {{name: ..., version: ...}}, got {demo!r}")
        else:
            problems += [f"field 'demo.{k}' is missing" for k in ("name", "version") if k not in demo]
            problems += [
                f"field 'demo.{k}': {name_problem(_version_text(demo[k]))}"
                for k in ("name", "version")
                if k in demo and name_problem(_version_text(demo[k]))
            ]
    if "citation" in raw and not isinstance(raw["citation"], str):
        problems.append(f"field 'citation': give a string, got {raw['citation']!r}")
    return problems


def _version_text(value):
    # YAML reads 1.0 as a float; a version is its text
    return str(value) if _is_number(value) else value


def load_registry(path: str | os.PathLike | None = None) -> dict[str, DatasetEntry]:
    r"""Load and validate ``datasets.yaml``; every problem is reported at once, naming entry and field."""
    path = Path(path) if path else PROJECT_ROOT / "datasets.yaml"
    if not path.exists():
        raise DatasetConfigError(f"Dataset registry {path} not found: pass --datasets PATH.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as ex:
        raise DatasetConfigError(f"{path}: not valid YAML: {ex}") from None
    raw_entries = data.get("datasets") if isinstance(data, dict) else None
    if raw_entries is not None and not isinstance(raw_entries, list):
        raise DatasetConfigError(f"{path}: 'datasets:' must hold a list of entries.")
    errors, entries = [], {}
    for i, raw in enumerate(raw_entries or []):
        label = (
            f"entry '{raw.get('name')}'"
            if isinstance(raw, dict) and isinstance(raw.get("name"), str)
            else f"entry #{i + 1}"
        )
        problems = entry_problems(raw)
        if not problems and raw["name"] in entries:
            problems.append("duplicate name")
        errors += [f"{path}: {label}: {p}" for p in problems]
        if problems or errors:
            continue
        kw = {k: raw[k] for k in _REQUIRED}
        kw["version"] = str(kw["version"])
        entries[raw["name"]] = DatasetEntry(
            labels=raw.get("labels") or {},
            label_range=tuple(raw.get("label_range") or (0, 1)),
            speaker=raw.get("speaker") or {},
            sex=raw.get("sex") or {},
            demo=raw.get("demo") or None,
            citation=raw.get("citation", ""),
            categories=raw.get("categories"),
            **kw,
        )
    if not entries and not errors:
        errors.append(f"{path}: no datasets listed under 'datasets:'")
    if errors:
        raise DatasetConfigError("Invalid dataset registry:\n  - " + "\n  - ".join(errors))
    return entries


def parse_repository(spec: str):
    r"""Parse ``NAME=HOST`` or ``NAME=HOST:BACKEND`` (backend default ``file-system``).

    Examples:
        >>> r = parse_repository("data-local=/srv/audb")
        >>> (r.name, r.host, r.backend)
        ('data-local', '/srv/audb', 'file-system')

    """
    import audb

    if "=" not in spec:
        raise DatasetConfigError(
            f"Cannot parse repository '{spec}': use NAME=HOST[:BACKEND], e.g. data-local=/srv/audb"
        )
    name, rest = spec.split("=", 1)
    backend = "file-system"
    for candidate in ("file-system", "artifactory", "s3", "minio"):
        if rest.endswith(":" + candidate):
            rest, backend = rest[: -len(candidate) - 1], candidate
    return audb.Repository(name, rest, backend)


def _reachable(repo, timeout: float = 2.0) -> bool:
    if repo.backend == "file-system":
        return Path(repo.host, repo.name).is_dir()
    url = repo.host if "://" in repo.host else "https://" + repo.host
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def configure_repositories(entry: DatasetEntry, data: str, repositories: typing.Sequence | None = None) -> list:
    r"""Set :data:`audb.config.REPOSITORIES` explicitly and return them.

    ``demo``: the local demo repository (built on first use).
    ``real``: ``repositories`` if given, else audb's user configuration
    (``~/.config/audb.yaml``). Unreachable repositories are dropped up
    front, so a machine without network fails at once with a message
    instead of audb's ~20 s silent time-out.
    """
    import audb

    name, version = entry.coordinates(data)
    if entry.source(data) == "demo":
        from benchmark.data import demo

        repos = [demo.repository(databases=[name])]  # only the corpus asked for is built
    else:
        repos = list(repositories) if repositories else _user_repositories()
    reachable = [r for r in repos if _reachable(r)]
    if not reachable:
        tried = ", ".join(f"{r.name} ({r.backend}: {r.host})" for r in repos) or "none configured"
        raise DatasetConfigError(
            f"Cannot load dataset '{entry.name}' ({name} {version}): no reachable audb repository "
            f"(tried: {tried}). Configure one in ~/.config/audb.yaml (repositories: - name, host, "
            f"backend) or pass --repository NAME=HOST[:BACKEND]"
            + (
                "; or run on the embedded replicas with --data demo."
                if entry.has_replica
                else f". '{entry.name}' has no embedded replica: it is always loaded from its repository."
            )
        )
    audb.config.REPOSITORIES = reachable
    return reachable


def _user_repositories() -> list:
    import audb

    config = Path("~/.config/audb.yaml").expanduser()
    if not config.exists():
        return []  # audb's built-in public default is not reachable from here; never wait on it
    raw = yaml.safe_load(config.read_text()) or {}
    return [audb.Repository(r["name"], r["host"], r["backend"]) for r in raw.get("repositories") or []]


def load_split(
    dataset: str | DatasetEntry,
    split: str,
    *,
    data: str = "demo",
    repositories: typing.Sequence | None = None,
    registry: dict[str, DatasetEntry] | None = None,
) -> EvalSet:
    r"""Load one evaluation split with audb at its pinned version.

    Args:
        dataset: registry name (e.g. ``'msppodcast'``) or entry
        split: a key of the entry's ``splits`` (e.g. ``'test-1'``);
            for ``data='demo'`` also ``'train'``
        data: ``'demo'`` (embedded replicas) or ``'real'``
        repositories: audb repositories for ``data='real'``
        registry: dataset registry (default: the project's ``datasets.yaml``)

    """
    import audb

    if isinstance(dataset, str):
        registry = registry if registry is not None else load_registry()
        if dataset not in registry:
            raise DatasetConfigError(
                f"Unknown dataset '{dataset}'. Registered: {', '.join(registry)}. Add it to datasets.yaml."
            )
        entry = registry[dataset]
    else:
        entry = dataset
    tables = dict(entry.splits)
    if entry.source(data) == "demo":
        tables.setdefault("train", "emotion.dimensions.train.gold_standard")
    if split not in tables:
        raise DatasetConfigError(f"Dataset '{entry.name}' has no split '{split}'; available: {', '.join(tables)}.")
    table = tables[split]
    name, version = entry.coordinates(data)
    repos = configure_repositories(entry, data, repositories)
    available, errors = _versions(name, repos)
    if version not in available and errors:
        raise DatasetConfigError(
            f"Dataset '{entry.name}': cannot look up {name} {version}; the repository failed: "
            + "; ".join(errors)
            + ". Check its name, host and backend (--repository NAME=HOST[:BACKEND] "
            "or ~/.config/audb.yaml)."
        )
    if version not in available:
        raise DatasetConfigError(
            f"Dataset '{entry.name}': its data cannot be found: {name} version {version} not found in "
            f"{', '.join(r.name for r in repos)} (available: {', '.join(available) or 'none'}). "
            "Publish it there or pin an available version in datasets.yaml."
        )
    header = audb.info.header(name, version=version, load_tables=False, cache_root=str(cache_dir("audb")))
    if table not in header:
        raise DatasetConfigError(
            f"Dataset '{entry.name}': split '{split}' names table '{table}', which {name} {version} does not have. "
            f"Tables: {', '.join(header) or 'none'}. Fix 'splits' in datasets.yaml."
        )
    want = [table]
    for extra in (entry.speaker.get("table"), entry.sex.get("table"), (entry.categories or {}).get("table")):
        if extra and extra not in want and extra in header:
            want.append(extra)
    try:
        db = audb.load(
            name,
            version=version,
            tables=want,
            full_path=True,
            verbose=False,
            cache_root=str(cache_dir("audb")),
        )
    except FileNotFoundError as ex:  # audb fetches what the cache lacks: the repository lacks it too
        raise DatasetConfigError(
            f"Dataset '{entry.name}': {name} {version} cannot be loaded: a file is missing from its repository "
            f"({ex.filename or ex}). Publish the version again from its build folder, or restore the repository."
        ) from None
    deps = audb.dependencies(name, version=version, cache_root=str(cache_dir("audb")), verbose=False)
    checksums = deps()["checksum"].to_dict()
    return _evalset_from_db(db, entry, name, version, split, table, checksums)


def _versions(name: str, repos: list) -> tuple[list[str], list[str]]:
    r"""Versions of ``name`` in ``repos`` and the errors of repositories that could not be asked.

    :func:`audb.versions` skips a repository that raises (unregistered
    backend, refused access) and so reports "not found"; here each
    repository is asked in turn and its error kept as the cause.
    """
    import audeer

    found, errors = [], []
    for repo in repos:
        try:
            interface = repo.create_backend_interface()
            with interface.backend:
                found += interface.versions(interface.join("/", name, "db.yaml"), suppress_backend_errors=True)
        except Exception as ex:
            cause = ex.__cause__ or ex.__context__
            detail = f" (caused by {type(cause).__name__}: {cause})" if cause is not None else ""
            errors.append(f"{repo.name} ({repo.backend}: {repo.host}): {type(ex).__name__}: {ex}{detail}")
    return audeer.sort_versions(list(dict.fromkeys(found))), errors


def _check_range(values: pd.Series, entry: DatasetEntry, name: str, table: str, column: str) -> None:
    r"""Raise if gold labels lie outside the declared ``label_range`` (a wrong range gives wrong scores)."""
    lo, hi = entry.label_range
    numbers = pd.to_numeric(values, errors="coerce")
    outside = numbers[(numbers < lo) | (numbers > hi)]
    if len(outside):
        file, value = outside.index[0], outside.iloc[0]
        raise DatasetConfigError(
            f"Dataset '{entry.name}' ({name}/{table}): {len(outside)} label(s) in column '{column}' lie outside "
            f"label_range [{lo}, {hi}], e.g. {value!r} for {file}. Fix 'label_range' in datasets.yaml."
        )


def _evalset_from_db(db, entry: DatasetEntry, name, version, split, table, checksums=None) -> EvalSet:
    if table not in db:
        raise DatasetConfigError(f"{name} {version} has no table '{table}' (tables: {', '.join(db)}).")
    df = db[table].get()
    if isinstance(df.index, pd.MultiIndex):
        raise DatasetConfigError(f"{name}/{table}: segmented tables are not supported; use a filewise table.")
    truth = pd.DataFrame(index=df.index)
    for dim, column in entry.labels.items():
        if column not in df.columns:
            raise DatasetConfigError(f"{name}/{table}: label column '{column}' (for {dim}) not found.")
        _check_range(df[column], entry, name, table, column)
        truth[dim] = entry.scale(df[column])
    truth = truth[[d for d in DIMENSIONS if d in truth.columns]]
    category, places = _categories(db, entry, name, table, truth.index)
    speaker = sex = None
    sp = entry.speaker
    if sp.get("table") in db and sp.get("column") in db[sp["table"]].columns:
        speaker = db[sp["table"]][sp["column"]].get().reindex(truth.index).astype("string")
        sx = entry.sex
        if sx.get("table") in db and sx.get("column") in db[sx["table"]].columns:
            mapping = db[sx["table"]][sx["column"]].get()
            sex = speaker.map(lambda s: mapping.get(s, pd.NA) if pd.notna(s) else pd.NA).astype("string")
    truth.index.name = "file"
    fingerprint = data_fingerprint(truth, speaker, sex, db.root, checksums, category=category)
    return EvalSet(entry.name, name, version, split, table, truth, speaker, sex, db.root, fingerprint, category, places)


def _categories(db, entry: DatasetEntry, name: str, table: str, files: pd.Index):
    r"""The category per file and where each category lies, or ``(None, None)`` without ``categories``.

    The categories checked are those of audformat's scheme of the column
    where it lists labels, else those found in the data. Any without a
    place (entry's ``map``, else the default) is an error naming it.
    """
    from benchmark.data import categories as cats

    spec = entry.categories
    if not spec:
        return None, None
    source = spec.get("table", table)
    column = spec["column"]
    if source not in db or column not in db[source].columns:
        raise DatasetConfigError(
            f"Dataset '{entry.name}' ({name}): category column '{column}' not found in table '{source}'. "
            "Fix 'categories' in datasets.yaml."
        )
    values = db[source][column].get().reindex(files).astype("string")
    names = sorted(values.dropna().unique())
    scheme_id = db[source][column].scheme_id
    labels = db.schemes[scheme_id].labels if scheme_id in db.schemes else None
    if isinstance(labels, (list, dict)) and labels:
        names = sorted({str(x) for x in labels} | set(names))
    places, unknown = cats.placement(names, spec.get("map"))
    if unknown:
        raise DatasetConfigError(
            f"Dataset '{entry.name}' ({name}/{source}.{column}): categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{unknown} ha{'s' if len(unknown) == 1 else 've'} no place on arousal/dominance/valence. Add them to "
            "'categories: map:' in datasets.yaml, e.g. {"
            + f"{unknown[0]}: {{arousal: high, valence: negative}}"
            + "}, or map them to {} to leave them out on purpose. Known names: "
            + ", ".join(cats.DEFAULT_MAP)
            + "."
        )
    return values, places
