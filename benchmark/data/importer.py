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

import csv as csvlib
import os
import typing
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.data import categories as cats
from benchmark.data.datasets import DatasetConfigError
from benchmark.data.publishing import ImportReport, check_target, place_media, publish, safe_relative, target_repository

__all__ = ["ImportReport", "build_database", "check_rows", "import_dataset", "read_csv"]

TABLE = "emotion.test"
"""The table (and split ``test``) that holds the imported labels."""


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
        given = str(row.get("file") or "").strip()
        file = safe_relative(given) if given else ""
        where = given or f"line {number}"
        bad = []
        if not given:
            bad.append("no file named")
        elif file is None:
            bad.append("path is absolute or leaves the folder (use a path relative to it, without '..')")
        elif not _inside(folder, file):
            bad.append(f"path resolves outside {folder} (a link?)")
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
            keep.append({**row, "file": file})
    return pd.DataFrame(keep, columns=table.columns).set_index("file"), problems


def _inside(folder: Path, relative: str) -> bool:
    r"""Whether ``folder/relative`` stays inside ``folder`` once links are resolved."""
    try:
        (folder / relative).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    r"""The label CSV as strings (empty cells NA), or a clear error for a missing, empty or non-UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetConfigError(f"--csv {path}: file not found.")
    try:
        table = pd.read_csv(path, dtype="string", keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as ex:
        raise DatasetConfigError(
            f"--csv {path}: not UTF-8 text (byte {ex.start}: {ex.object[ex.start : ex.start + 1]!r}). "
            f"Save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > labels-utf8.csv"
        ) from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, csvlib.Error) as ex:
        raise DatasetConfigError(f"--csv {path}: not a readable CSV ({ex}).") from None
    return table.replace("", pd.NA)


def build_database(folder: Path, rows: pd.DataFrame, build: Path, name: str, *, label_range, category_column: str):
    r"""Write an audformat database of ``rows`` (index: files relative to ``folder``) into ``build``."""
    import audformat

    db = audformat.Database(name, source=str(folder), usage=audformat.define.Usage.UNRESTRICTED)
    files = [Path(f).as_posix() for f in rows.index]
    for file in files:
        place_media(folder / file, build, file)
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
    folder = Path(folder).expanduser().resolve()
    repo = target_repository(repository)
    check_target(name, version, repo)
    if not folder.is_dir():
        raise DatasetConfigError(f"Audio folder {folder} not found.")
    table = read_csv(csv)
    rows, problems = check_rows(
        folder, table, label_range=tuple(label_range), category_column=category_column, category_map=category_map
    )
    if not len(rows):
        raise DatasetConfigError(
            f"{csv}: no row is left to import:\n  " + "\n  ".join(f"{w}: {r}" for w, r in problems)
        )
    dims = [d for d in DIMENSIONS if d in rows and rows[d].notna().any()]
    has_categories = category_column in rows and rows[category_column].notna().any()
    if not dims and not has_categories:
        raise DatasetConfigError(
            f"{csv}: no label column with values: give any of {', '.join(DIMENSIONS)} or the category column "
            f"'{category_column}' (--category-column); the CSV has {list(table.columns)}. Nothing published."
        )
    entry = _entry(name, version, rows, dims, label_range, category_column, category_map)

    def build(target: Path) -> None:
        build_database(folder, rows, target, name, label_range=label_range, category_column=category_column)

    return publish(build, entry, repo, registry, kept=len(rows), problems=problems)


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
