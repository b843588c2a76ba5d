"""Import a folder of audio files and a CSV of labels as a versioned audb dataset.

``python -m benchmark import-dataset FOLDER --csv labels.csv --name NAME --version V``
checks the CSV row by row, builds an audformat database of the good
rows, publishes it to a local file-system audb repository (versioned,
with checksums) and writes the dataset's entry into a registry file.
From then on it is a normal dataset: ``python -m benchmark run
--datasets FILE --repository NAME=HOST ...``.

CSV columns: ``file`` (path relative to FOLDER, required) and any of
``arousal``, ``dominance``, ``valence`` (numbers in ``--label-range``),
a category column (``--category-column``, default ``emotion``),
``speaker`` and ``sex`` (``female`` / ``male``). Any other column is
reported and ignored. Bad rows (a missing or unreadable file, a label
that is no number or lies out of range, a duplicate file, an unknown
category) are reported one by one and left out; the import fails only
if no row is left.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import typing
from pathlib import Path

import pandas as pd
import yaml

from benchmark import DIMENSIONS
from benchmark.data import categories as cats
from benchmark.data.datasets import DatasetConfigError, entry_problems, parse_repository
from benchmark.paths import cache_dir, name_problem

TABLE = "emotion.test"
"""The table (and split ``test``) that holds the imported labels."""


@dataclasses.dataclass
class ImportReport:
    r"""What an import did: the entry written, the rows kept and every problem, row by row."""

    entry: dict
    repository: typing.Any
    registry: Path
    kept: int = 0
    problems: list = dataclasses.field(default_factory=list)  # (file or row, reason)

    def lines(self) -> list[str]:
        out = [
            f"{self.entry['name']} {self.entry['version']}: {self.kept} file(s) published to "
            f"{self.repository.host}/{self.repository.name}; entry written to {self.registry}"
        ]
        out += [f"  left out {where}: {why}" for where, why in self.problems]
        return out


def check_rows(
    folder: Path,
    table: pd.DataFrame,
    *,
    label_range=(0.0, 1.0),
    category_column: str = "emotion",
    category_map: dict | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    r"""The good rows of ``table`` (index: ``file``) and a problem per bad row or column.

    Examples:
        >>> rows = pd.DataFrame({"file": ["a.wav"], "arousal": ["x"]})
        >>> check_rows(Path("/nowhere"), rows)[1]
        [('a.wav', 'file not found in /nowhere'), ('a.wav', "arousal 'x' is no number")]

    """
    import audiofile

    problems: list[tuple[str, str]] = []
    if "file" not in table.columns:
        raise DatasetConfigError(
            f"The CSV needs a column 'file' (paths relative to {folder}); it has {list(table.columns)}."
        )
    known = {"file", *DIMENSIONS, category_column, "speaker", "sex"}
    problems += [
        (
            f"column '{c}'",
            f"unknown column, ignored; use file, {', '.join(DIMENSIONS)}, {category_column}, speaker, sex",
        )
        for c in table.columns
        if c not in known
    ]
    lo, hi = label_range
    keep, seen = [], set()
    for number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        file = str(row.get("file") or "").strip()
        where = file or f"line {number}"
        bad = []
        if not file:
            bad.append("no file named")
        elif file in seen:
            bad.append("duplicate file (first row kept)")
        elif not (folder / file).is_file():
            bad.append(f"file not found in {folder}")
        else:
            try:
                audiofile.duration(str(folder / file))
            except Exception as ex:  # any decoder error: the file cannot be scored
                bad.append(f"not readable as audio ({type(ex).__name__})")
        for dim in DIMENSIONS:
            if dim in table.columns and pd.notna(row.get(dim)) and str(row.get(dim)).strip() != "":
                value = pd.to_numeric(row[dim], errors="coerce")
                if pd.isna(value):
                    bad.append(f"{dim} {row[dim]!r} is no number")
                elif not lo <= value <= hi:
                    bad.append(f"{dim} {value} outside --label-range [{lo}, {hi}]")
        if category_column in table.columns and pd.notna(row.get(category_column)):
            _, unknown = cats.placement([str(row[category_column])], category_map)
            if unknown:
                bad.append(f"{category_column} '{row[category_column]}' has no place on A/D/V (add it to the map)")
        if (
            "sex" in table.columns
            and pd.notna(row.get("sex"))
            and str(row["sex"]).strip().lower() not in ("female", "male")
        ):
            bad.append(f"sex {row['sex']!r}: use female or male")
        problems += [(where, b) for b in bad]
        if file:
            seen.add(file)
        if not bad:
            keep.append(row)
    return pd.DataFrame(keep, columns=table.columns).set_index("file"), problems


def build_database(folder: Path, rows: pd.DataFrame, build: Path, name: str, *, label_range, category_column: str):
    r"""Write an audformat database of ``rows`` (index: files relative to ``folder``) into ``build``."""
    import audformat

    db = audformat.Database(name, source=str(folder), usage=audformat.define.Usage.UNRESTRICTED)
    files = [Path(f).as_posix() for f in rows.index]
    for file in files:
        (build / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / file, build / file)
    index = audformat.filewise_index(files)
    if "speaker" in rows:
        speakers = rows["speaker"].astype("string")
        names = sorted(speakers.dropna().unique())
        if "sex" in rows:
            db.schemes["sex"] = audformat.Scheme("str", labels=["female", "male"])
            sex = rows.groupby(speakers.to_numpy())["sex"].first().str.strip().str.lower()
            db["speaker"] = audformat.MiscTable(pd.Index(names, name="speaker", dtype="string"))
            db["speaker"]["sex"] = audformat.Column(scheme_id="sex")
            db["speaker"]["sex"].set(sex.reindex(names).to_list())
            db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")
        else:
            db.schemes["speaker"] = audformat.Scheme("str")
        db["files"] = audformat.Table(index)
        db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
        db["files"]["speaker"].set(speakers.to_list())
    db[TABLE] = audformat.Table(index)
    dims = [d for d in DIMENSIONS if d in rows and rows[d].notna().any()]
    if dims:
        db.schemes["dimension"] = audformat.Scheme("float", minimum=label_range[0], maximum=label_range[1])
        for dim in dims:
            db[TABLE][dim] = audformat.Column(scheme_id="dimension")
            db[TABLE][dim].set(pd.to_numeric(rows[dim], errors="coerce").to_list())
    if category_column in rows and rows[category_column].notna().any():
        values = rows[category_column].astype("string")
        db.schemes["category"] = audformat.Scheme("str", labels=sorted(values.dropna().unique()))
        db[TABLE][category_column] = audformat.Column(scheme_id="category")
        db[TABLE][category_column].set(values.to_list())
    db.save(str(build))
    return db, dims


def import_dataset(
    folder: str | os.PathLike,
    csv: str | os.PathLike,
    name: str,
    version: str,
    *,
    repository: str | None = None,
    registry: str | os.PathLike = "datasets-own.yaml",
    label_range: typing.Sequence[float] = (0.0, 1.0),
    category_column: str = "emotion",
    category_map: dict | None = None,
) -> ImportReport:
    r"""Check, build, publish and register a folder-and-CSV corpus (see the module's docstring).

    Args:
        folder: folder holding the audio files
        csv: the label table (column ``file`` relative to ``folder``)
        name: audb name and registry name of the dataset
        version: version to publish (an existing version is refused)
        repository: ``NAME=HOST`` of a file-system audb repository
            (default: ``local`` in the benchmark's cache folder); created if missing
        registry: the ``datasets.yaml``-like file the entry is written into
            (created or updated; an entry of the same name is replaced)
        label_range: scale of the A/D/V columns
        category_column: the CSV column holding categories
        category_map: places of categories the default map lacks

    Raises:
        benchmark.data.datasets.DatasetConfigError: nothing to import,
            a bad name or version, or the version exists already

    """
    import audb

    folder, registry = Path(folder).expanduser().resolve(), Path(registry)
    for what, value in (("--name", name), ("--version", version)):
        if name_problem(value):
            raise DatasetConfigError(f"{what}: {name_problem(value)}")
    if not folder.is_dir():
        raise DatasetConfigError(f"Audio folder {folder} not found.")
    table = pd.read_csv(csv, dtype="string", keep_default_na=False).replace("", pd.NA)
    rows, problems = check_rows(
        folder, table, label_range=tuple(label_range), category_column=category_column, category_map=category_map
    )
    if not len(rows):
        raise DatasetConfigError(
            f"{csv}: no row is left to import:\n  " + "\n  ".join(f"{w}: {r}" for w, r in problems)
        )
    repo = parse_repository(repository or f"local={cache_dir('audb-own')}")
    if repo.backend != "file-system":
        raise DatasetConfigError(f"--repository {repository}: import publishes to a file-system repository only.")
    Path(repo.host, repo.name).mkdir(parents=True, exist_ok=True)
    saved = list(audb.config.REPOSITORIES)
    audb.config.REPOSITORIES = [repo]  # else audb asks the public repository over the network first
    try:
        existing = audb.versions(name)
        if version in existing:
            raise DatasetConfigError(
                f"{name} {version} is already published in {repo.host}/{repo.name}: choose a new --version "
                f"(published: {', '.join(existing)})."
            )
        with tempfile.TemporaryDirectory() as tmp:
            _, dims = build_database(
                folder, rows, Path(tmp), name, label_range=label_range, category_column=category_column
            )
            audb.publish(
                tmp, version, repo, previous_version=None, verbose=False, cache_root=str(cache_dir("audb-publish"))
            )
    finally:
        audb.config.REPOSITORIES = saved
    entry = _entry(name, version, rows, dims, label_range, category_column, category_map)
    problems_ = entry_problems(entry)
    if problems_:  # a bug here, not the user's: the entry is made from checked input
        raise DatasetConfigError(f"generated entry for {name} is invalid: {problems_}")
    _write_entry(registry, entry)
    return ImportReport(entry, repo, registry, kept=len(rows), problems=problems)


def _entry(name, version, rows, dims, label_range, category_column, category_map) -> dict:
    entry: dict = {"name": name, "audb": name, "version": str(version), "splits": {"test": TABLE}}
    if dims:
        entry["labels"] = {d: d for d in dims}
        entry["label_range"] = [float(label_range[0]), float(label_range[1])]
    if category_column in rows and rows[category_column].notna().any():
        entry["categories"] = {"column": category_column, **({"map": category_map} if category_map else {})}
    if "speaker" in rows:
        entry["speaker"] = {"table": "files", "column": "speaker"}
        if "sex" in rows:
            entry["sex"] = {"table": "speaker", "column": "sex"}
    return entry


def _write_entry(path: Path, entry: dict) -> None:
    r"""Add ``entry`` to the registry file at ``path`` (replacing one of the same name), atomically."""
    from benchmark.results import atomic_write_text

    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    entries = [e for e in data.get("datasets") or [] if not (isinstance(e, dict) and e.get("name") == entry["name"])]
    data["datasets"] = [*entries, entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
