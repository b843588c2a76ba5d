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
import os
import socket
import typing
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import yaml

from benchmark import DIMENSIONS
from benchmark.paths import PROJECT_ROOT, cache_dir


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
    demo: dict
    citation: str = ""

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
        if data == "demo":
            return self.demo["name"], str(self.demo["version"])
        if data == "real":
            return self.audb, str(self.version)
        raise DatasetConfigError(f"Unknown data source '{data}': use 'demo' or 'real'.")


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

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = data_fingerprint(self.truth, self.speaker, self.sex, self.root)

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

    def subset(self, files: pd.Index) -> "EvalSet":
        r"""The same split restricted to ``files`` (kept in the given order).

        The fingerprint stays the split's: the subset's rows and cached
        predictions belong to the same data.
        """
        return dataclasses.replace(
            self,
            truth=self.truth.loc[files],
            speaker=None if self.speaker is None else self.speaker.loc[files],
            sex=None if self.sex is None else self.sex.loc[files],
        )


def data_fingerprint(
    truth: pd.DataFrame,
    speaker: pd.Series | None,
    sex: pd.Series | None,
    root: str,
    checksums: typing.Mapping[str, str] | None = None,
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

    Examples:
        >>> truth = pd.DataFrame({"arousal": [0.5]}, index=pd.Index(["/no/such.wav"], name="file"))
        >>> data_fingerprint(truth, None, None, "/no")[:12]
        '1b280d7f39d3'

    """
    checksums = checksums or {}
    rows = []
    speakers = speaker.reindex(truth.index) if speaker is not None else [None] * len(truth)
    sexes = sex.reindex(truth.index) if sex is not None else [None] * len(truth)
    for (file, labels), spk, sx in zip(truth.iterrows(), speakers, sexes):
        relative = Path(os.path.relpath(str(file), root) if root else str(file)).as_posix()
        checksum = checksums.get(relative) or _md5(str(file))
        values = ",".join(f"{name}={float(v)!r}" for name, v in labels.items())
        rows.append(f"{relative}\t{checksum}\t{values}\t{_text(spk)}\t{_text(sx)}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _md5(path: str) -> str:
    try:
        with open(path, "rb") as fp:
            return hashlib.md5(fp.read()).hexdigest()
    except OSError:
        return "unreadable"


_REQUIRED = ("name", "audb", "version", "splits", "labels", "label_range", "speaker", "sex", "demo")


def load_registry(path: str | os.PathLike | None = None) -> dict[str, DatasetEntry]:
    r"""Load and validate ``datasets.yaml``; every problem is reported at once."""
    path = Path(path) if path else PROJECT_ROOT / "datasets.yaml"
    if not path.exists():
        raise DatasetConfigError(f"Dataset registry {path} not found: pass --datasets PATH.")
    data = yaml.safe_load(path.read_text()) or {}
    errors, entries = [], {}
    for i, raw in enumerate(data.get("datasets") or []):
        label = f"entry '{raw.get('name')}'" if isinstance(raw, dict) and raw.get("name") else f"entry #{i + 1}"
        missing = [f for f in _REQUIRED if not isinstance(raw, dict) or f not in raw]
        if missing:
            errors += [f"{path}: {label}: field '{f}' is missing" for f in missing]
            continue
        bad = [d for d in raw["labels"] if d not in DIMENSIONS]
        if bad:
            errors.append(f"{path}: {label}: field 'labels': unknown dimension(s) {bad}; use {DIMENSIONS}")
        lr = raw["label_range"]
        if not (isinstance(lr, list) and len(lr) == 2 and lr[1] > lr[0]):
            errors.append(f"{path}: {label}: field 'label_range': give [low, high] with high > low")
        if raw["name"] in entries:
            errors.append(f"{path}: {label}: duplicate name")
        if errors:
            continue
        kw = {k: raw[k] for k in _REQUIRED}
        kw["label_range"] = tuple(lr)
        kw["version"] = str(kw["version"])
        entries[raw["name"]] = DatasetEntry(citation=raw.get("citation", ""), **kw)
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
    if data == "demo":
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
            f"backend) or pass --repository NAME=HOST[:BACKEND]; or run on the embedded "
            f"replicas with --data demo."
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
    if data == "demo":
        tables.setdefault("train", "emotion.dimensions.train.gold_standard")
    if split not in tables:
        raise DatasetConfigError(
            f"Dataset '{entry.name}' has no split '{split}'; available: {', '.join(tables)}."
        )
    table = tables[split]
    name, version = entry.coordinates(data)
    repos = configure_repositories(entry, data, repositories)
    available = _versions(name, repos)
    if version not in available:
        raise DatasetConfigError(
            f"Dataset '{entry.name}': {name} version {version} not found in "
            f"{', '.join(r.name for r in repos)} (available: {', '.join(available) or 'none'}). "
            "Publish it there or pin an available version in datasets.yaml."
        )
    want = [table]
    for extra in (entry.speaker.get("table"), entry.sex.get("table")):
        if extra and extra not in want:
            want.append(extra)
    db = audb.load(
        name,
        version=version,
        tables=want,
        full_path=True,
        verbose=False,
        cache_root=str(cache_dir("audb")),
    )
    deps = audb.dependencies(name, version=version, cache_root=str(cache_dir("audb")), verbose=False)
    checksums = deps()["checksum"].to_dict()
    return _evalset_from_db(db, entry, name, version, split, table, checksums)


def _versions(name: str, repos: list) -> list[str]:
    import audb

    try:
        return list(audb.versions(name))
    except Exception:  # a repository that errors is treated as not holding the dataset
        return []


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
        truth[dim] = entry.scale(df[column])
    truth = truth[[d for d in DIMENSIONS if d in truth.columns]]
    speaker = sex = None
    sp = entry.speaker
    if sp.get("table") in db and sp.get("column") in db[sp["table"]].columns:
        speaker = db[sp["table"]][sp["column"]].get().reindex(truth.index).astype("string")
        sx = entry.sex
        if sx.get("table") in db and sx.get("column") in db[sx["table"]].columns:
            mapping = db[sx["table"]][sx["column"]].get()
            sex = speaker.map(lambda s: mapping.get(s, pd.NA) if pd.notna(s) else pd.NA).astype("string")
    truth.index.name = "file"
    fingerprint = data_fingerprint(truth, speaker, sex, db.root, checksums)
    return EvalSet(entry.name, name, version, split, table, truth, speaker, sex, db.root, fingerprint)
