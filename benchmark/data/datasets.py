"""Loading of evaluation splits via audb (the registry itself: :mod:`benchmark.data.entries`).

Every split is loaded with audb at a pinned version, from the real
corpora (``data="real"`` or ``"public"``, audb repositories configured
by the user or given with ``--repository``) or from their embedded
synthetic replicas (``data="demo"``, the default, published on first
use into a local file-system repository). Only the split's table and
the tables it needs are loaded (metadata only), then only the split's
media. Evaluation code cannot tell the sources apart.
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

from benchmark import DIMENSIONS
from benchmark.data import speakers
from benchmark.data.entries import (
    DATA_CHOICES,
    DatasetEntry,
    default_registry,
    entry_problems,
    load_registry,
)
from benchmark.data.errors import DatasetConfigError
from benchmark.paths import cache_dir

__all__ = [
    "DATA_CHOICES",
    "DatasetConfigError",
    "DatasetEntry",
    "EvalSet",
    "default_registry",
    "entry_problems",
    "load_registry",
    "load_split",
    "parse_repository",
]


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
    ``real``: ``repositories`` if given (``--repository``, in that
    order), else audb's configured repositories as they stand
    (:data:`audb.config.REPOSITORIES`: ``~/.config/audb.yaml`` or audb's
    default ``audb-public``). Unreachable repositories are dropped up
    front, so a machine without network fails at once with a message
    instead of audb's ~20 s silent time-out. :func:`load_split` restores
    audb's configuration after loading.
    """
    import audb

    name, version = entry.coordinates(data)
    if entry.source(data) == "demo":
        from benchmark.data import demo

        repos = [demo.repository(databases=[name])]  # only the corpus asked for is built
    else:
        repos = list(repositories) if repositories else list(audb.config.REPOSITORIES)
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
    entry = entry.resolved(data)
    tables = dict(entry.splits)
    if entry.source(data) == "demo":
        tables.setdefault("train", "emotion.dimensions.train.gold_standard")
    if split not in tables:
        raise DatasetConfigError(f"Dataset '{entry.name}' has no split '{split}'; available: {', '.join(tables)}.")
    table = tables[split]
    name, version = entry.coordinates(data)
    saved = list(audb.config.REPOSITORIES)
    try:
        repos = configure_repositories(entry, data, repositories)
        return _load(entry, name, version, split, table, repos)
    finally:
        audb.config.REPOSITORIES = saved  # audb's configuration is the user's: restored after each load


def _load(entry: DatasetEntry, name: str, version: str, split: str, table: str, repos: list) -> EvalSet:
    r"""Load ``table`` of ``name`` ``version`` from ``repos`` (already set in audb's configuration)."""
    import audb

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
    db = _load_metadata(name, version, entry, split, table, header)
    files = _split_files(_rows(db, entry, split, table).index)
    try:
        audb.load_media(name, list(files), version=version, cache_root=str(cache_dir("audb")), verbose=False)
    except FileNotFoundError as ex:  # audb fetches what the cache lacks: the repository lacks it too
        raise DatasetConfigError(
            f"Dataset '{entry.name}': {name} {version} cannot be loaded: a file is missing from its repository "
            f"({ex.filename or ex}). Publish the version again from its build folder, or restore the repository."
        ) from None
    deps = audb.dependencies(name, version=version, cache_root=str(cache_dir("audb")), verbose=False)
    checksums = deps()["checksum"].to_dict()
    return _evalset_from_db(db, entry, name, version, split, table, checksums)


def _load_metadata(name: str, version: str, entry: DatasetEntry, split: str, table: str, header):
    r"""The split's table and the speaker, sex and category tables it needs, without media.

    Only the split's media is loaded afterwards (:func:`audb.load_media`),
    so one test split of a large corpus never downloads the rest.
    """
    import audb

    want = [table]
    restrict = (entry.split_files or {}).get(split)
    if restrict:
        if restrict not in header:
            raise DatasetConfigError(
                f"Dataset '{entry.name}': split_files names table '{restrict}' for split '{split}', which "
                f"{name} {version} does not have. Tables: {', '.join(header)}."
            )
        want.append(restrict)
    for spec in (entry.speaker, entry.sex, entry.categories or {}):
        extra = speakers.table_name(spec["table"], split) if spec.get("table") else None
        if extra and extra not in want and extra in header:
            want.append(extra)
    return audb.load(
        name,
        version=version,
        tables=want,
        only_metadata=True,
        full_path=False,
        verbose=False,
        cache_root=str(cache_dir("audb")),
    )


def _rows(db, entry: DatasetEntry, split: str, table: str) -> pd.DataFrame:
    r"""The split's table, restricted to the files of ``split_files`` if the entry names them."""
    df = db[table].get()
    restrict = (entry.split_files or {}).get(split)
    if restrict:
        keep = db[restrict].files
        files = df.index.get_level_values("file") if isinstance(df.index, pd.MultiIndex) else df.index
        df = df[files.isin(keep)]
    return df


def _split_files(index: pd.Index) -> pd.Index:
    r"""The distinct files of a filewise or segmented ``index``, relative to the database root."""
    files = index.get_level_values("file") if isinstance(index, pd.MultiIndex) else index
    return pd.Index(files.unique(), name="file")


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


def _evalset_from_db(db, entry: DatasetEntry, name, version, split, table, checksums=None) -> EvalSet:
    from benchmark.data.scales import check_range

    if table not in db:
        raise DatasetConfigError(f"{name} {version} has no table '{table}' (tables: {', '.join(db)}).")
    df = _rows(db, entry, split, table)
    root, lookup = db.root, df.index
    if isinstance(df.index, pd.MultiIndex):  # each segment becomes a file of its own
        from benchmark.data import segments

        paths, checksums = segments.cut(df.index, db.root, name, version, checksums or {})
        root, lookup = str(segments.segment_root(name, version)), df.index.get_level_values("file")
        files = pd.Index([os.path.join(root, p) for p in paths], name="file")
    else:
        files = pd.Index([os.path.join(root, f) for f in df.index], name="file")
    truth = pd.DataFrame(index=files)
    for dim, column in entry.labels.items():
        if column not in df.columns:
            raise DatasetConfigError(f"{name}/{table}: label column '{column}' (for {dim}) not found.")
        scheme = db.schemes.get(db[table][column].scheme_id) if db[table][column].scheme_id else None
        declared = (scheme.minimum, scheme.maximum) if scheme is not None else None
        values = pd.Series(df[column].to_numpy(), index=files)
        check_range(values, entry, name, table, column, declared)
        truth[dim] = entry.scale(values)
    truth = truth[[d for d in DIMENSIONS if d in truth.columns]]
    category, places = _categories(db, entry, name, table, split, df.index)
    speaker = speakers.speaker_per_file(db, entry, name, split, lookup)
    sex = speakers.sex_per_file(db, entry, name, split, lookup, speaker)
    speaker, sex, category = (
        None if s is None else pd.Series(s.to_numpy(), index=files, dtype=s.dtype) for s in (speaker, sex, category)
    )
    truth.index.name = "file"
    fingerprint = data_fingerprint(truth, speaker, sex, root, checksums, category=category)
    return EvalSet(entry.name, name, version, split, table, truth, speaker, sex, root, fingerprint, category, places)


def _categories(db, entry: DatasetEntry, name: str, table: str, split: str, files: pd.Index):
    r"""The category per file and where each category lies, or ``(None, None)`` without ``categories``.

    The categories checked are those of audformat's scheme of the column
    where it lists labels, else those found in the data. Any without a
    place (entry's ``map``, else the default) is an error naming it.
    """
    from benchmark.data import categories as cats

    spec = entry.categories
    if not spec:
        return None, None
    source = speakers.table_name(spec.get("table", table), split)
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


def check_splits(splits: typing.Sequence[str] | None, entries: typing.Sequence) -> dict[str, list[str]]:
    r"""Splits to run per dataset; every requested split must exist in at least one of them.

    A split that only some datasets have runs on those (``--split test-1``
    picks MSP-Podcast's first test set); a split none has is an error.

    Raises:
        DatasetConfigError: listing the valid splits

    """
    chosen = {e.name: [s for s in (splits or e.splits) if s in e.splits] for e in entries}
    unknown = [s for s in (splits or []) if not any(s in e.splits for e in entries)]
    if unknown:
        valid = "; ".join(f"{e.name}: {', '.join(e.splits)}" for e in entries)
        raise DatasetConfigError(f"Unknown split(s) {', '.join(map(repr, unknown))}. Splits: {valid}.")
    return chosen
