"""Speaker and sex per file, from the tables a ``datasets.yaml`` entry names.

``speaker: {table, column}`` names a table holding the speaker per
file (a filewise table such as ``files``, or ``files.{split}``:
``{split}`` is replaced by the split's name). ``column: file`` in a
table that has no such column makes each file its own speaker (a corpus
with one speaker per recording, such as CMU-MOSI).

``sex: {table, column}`` names either a misc table indexed by speaker
(``speaker`` with ``gender``) or a filewise table holding the sex per
file (``files.test-1`` with ``gender``). ``map:`` (optional) reads the
column through audformat's scheme mapping instead
(``db[table][column].get(map=...)``), for a speaker scheme whose labels
carry the sex.

Every lookup is strict: a declared table or column that does not
exist, a lookup that matches no file, sex values other than
female/male and a speaker with two sexes are errors naming the table,
the column and what was found; never an empty column that later reads
as "needs files of both sexes".
"""

from __future__ import annotations

import pandas as pd

from benchmark.data.errors import DatasetConfigError

SEXES = ("female", "male")


def table_name(template: str, split: str) -> str:
    r"""``template`` with ``{split}`` replaced by ``split``.

    Examples:
        >>> table_name("files.{split}", "test-1"), table_name("files", "test-1")
        ('files.test-1', 'files')

    """
    return template.replace("{split}", split)


def _where(name: str, table: str, column: str) -> str:
    return f"{name}: table '{table}', column '{column}'"


def _column(db, spec: dict, split: str, what: str, name: str) -> tuple[str, str]:
    table, column = table_name(spec["table"], split), spec["column"]
    if table not in db:
        raise DatasetConfigError(
            f"{name}: the {what} table '{table}' declared in datasets.yaml does not exist "
            f"(tables: {', '.join(sorted(db)) or 'none'}). Fix '{what}: table:'."
        )
    if column not in db[table].columns and not (what == "speaker" and column == "file"):
        raise DatasetConfigError(
            f"{_where(name, table, column)}: no such column for '{what}' "
            f"(columns: {', '.join(db[table].columns) or 'none'}). Fix '{what}: column:'."
        )
    return table, column


def _is_filewise(db, table: str) -> bool:
    import audformat

    return isinstance(db[table], audformat.Table) and db[table].is_filewise


def _per_file(db, table: str, column: str, files: pd.Index, spec: dict, what: str, name: str) -> pd.Series:
    r"""``db[table][column]`` for each of ``files`` (a filewise table, or a segmented one taken per file).

    Raises if the table lists none of ``files``: the lookup would leave every file without a value.
    """
    series = db[table][column].get(map=spec["map"]) if spec.get("map") else db[table][column].get()
    if isinstance(series.index, pd.MultiIndex):
        series = series.groupby(level="file").first()
    if len(files) and not files.isin(series.index).any():
        raise DatasetConfigError(
            f"{_where(name, table, column)}: the {what} lookup matches none of the split's {len(files)} files "
            f"(the table lists {len(series)} other files, e.g. {list(series.index[:2])}; column dtype "
            f"{series.dtype}). Name a table that lists this split's files."
        )
    return series.reindex(files)


def _text(values: pd.Series) -> pd.Series:
    r"""Ids as text, so ``3`` (int) and ``'3'`` (str) name the same speaker; ``3.0`` reads as ``'3'``."""

    def one(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    return pd.Series([one(v) for v in values], index=values.index, dtype="string")


def speaker_per_file(db, entry, name: str, split: str, files: pd.Index) -> pd.Series | None:
    r"""Speaker per file (text), or None where the entry names no speaker."""
    spec = entry.speaker
    if not spec:
        return None
    table, column = _column(db, spec, split, "speaker", name)
    if column == "file" and column not in db[table].columns:
        return pd.Series(files.astype("string"), index=files, dtype="string")
    if not _is_filewise(db, table) and not isinstance(db[table].df.index, pd.MultiIndex):
        raise DatasetConfigError(
            f"{_where(name, table, column)}: the speaker table must be indexed by file; "
            f"it is indexed by '{db[table].df.index.name}'. Name the table that holds the speaker per file."
        )
    return _text(_per_file(db, table, column, files, spec, "speaker", name))


def sex_per_file(db, entry, name: str, split: str, files: pd.Index, speaker: pd.Series | None) -> pd.Series | None:
    r"""Sex per file (``female`` / ``male``), or None where the entry names no sex."""
    spec = entry.sex
    if not spec:
        return None
    table, column = _column(db, spec, split, "sex", name)
    if _is_filewise(db, table) or spec.get("map"):
        sex = _text(_per_file(db, table, column, files, spec, "sex", name))
    else:
        if speaker is None:
            raise DatasetConfigError(
                f"{_where(name, table, column)}: a sex table indexed by speaker needs 'speaker' in the entry."
            )
        mapping = db[table][column].get()
        keys = _text(pd.Series(mapping.index, index=mapping.index))
        lookup = dict(zip(keys, _text(mapping)))
        sex = pd.Series([lookup.get(s, pd.NA) if pd.notna(s) else pd.NA for s in speaker], index=files, dtype="string")
        ids = speaker.dropna()
        if len(ids) and not ids.isin(list(lookup)).any():
            raise DatasetConfigError(
                f"{_where(name, table, column)}: the sex lookup by speaker matches none of the split's "
                f"{ids.nunique()} speakers: speaker ids {sorted(ids.unique())[:3]} vs the index of '{table}' "
                f"(dtype {mapping.index.dtype}: {list(mapping.index[:3])}). Make the ids agree in type and spelling."
            )
    sex = sex.str.lower()
    other = sorted(set(sex.dropna()) - set(SEXES))
    if other:
        raise DatasetConfigError(
            f"{_where(name, table, column)}: sex values {other} are neither female nor male. "
            "Map them in the data (or leave them empty for unknown)."
        )
    if speaker is not None:
        _check_one_sex(speaker, sex, name, table, column)
    return sex


def _check_one_sex(speaker: pd.Series, sex: pd.Series, name: str, table: str, column: str) -> None:
    both = pd.DataFrame({"speaker": speaker, "sex": sex}).dropna()
    counts = both.groupby("speaker")["sex"].nunique()
    twice: list[str] = sorted(counts[counts > 1].index)
    if twice:
        raise DatasetConfigError(
            f"{_where(name, table, column)}: speaker(s) {twice[:5]} have files labelled both female and male. "
            "Fix the labels, or the speaker ids."
        )
