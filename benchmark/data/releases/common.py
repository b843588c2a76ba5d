"""What the release importers share: the utterance frame, audio checks and the gold-standard tables.

A release is read into one frame indexed by the file's path inside the
published database, with the columns of :data:`COLUMNS`: where its audio
is, its split, arousal/dominance/valence on 0..1, an audEERING category
name, speaker and sex (empty when unknown). :func:`publish_release`
builds the tables every layout shares from it and publishes.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.data.errors import DatasetConfigError
from benchmark.data.publishing import ImportReport, place_media, publish, target_repository

COLUMNS = ("source", "split", *DIMENSIONS, "emotion", "speaker", "sex")


def unit_scale(value, lo: float, hi: float) -> float | None:
    r"""``value`` (text or number) mapped from ``lo..hi`` to 0..1, or None if it is no number in range.

    Examples:
        >>> unit_scale("4.0", 1, 7), unit_scale("3,5", 1, 5), unit_scale("8", 1, 7), unit_scale("x", 1, 7)
        (0.5, 0.625, None, None)

    """
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        return None
    if not (lo <= number <= hi):
        return None
    return (number - lo) / (hi - lo)


def check_audio(frame: pd.DataFrame, problems: list) -> pd.DataFrame:
    r"""The rows of ``frame`` whose audio exists and is readable; each other row added to ``problems``."""
    import audiofile

    keep = []
    for file, source in frame["source"].items():
        if not Path(source).is_file():
            problems.append((file, f"audio not found: {source}"))
            continue
        try:
            audiofile.duration(str(source))
        except Exception as ex:  # any decoder error: the file cannot be scored
            problems.append((file, f"audio not readable ({type(ex).__name__})"))
            continue
        keep.append(file)
    return frame.loc[keep]


def add_gold_tables(db, frame: pd.DataFrame) -> list[str]:
    r"""``emotion.dimensions.<split>.gold_standard`` and ``emotion.categories.<split>.gold_standard`` per split.

    Returns the splits that have a dimensions table.
    """
    import audformat

    for dim in DIMENSIONS:
        db.schemes[dim] = audformat.Scheme("float", minimum=0, maximum=1)
    names = sorted(frame["emotion"].dropna().unique())
    if names:
        db.schemes["emotion"] = audformat.Scheme("str", labels=names)
    with_dims = []
    for split, part in frame.groupby("split", sort=True):
        dims = part.dropna(subset=list(DIMENSIONS), how="all")
        if len(dims):
            table = f"emotion.dimensions.{split}.gold_standard"
            db[table] = audformat.Table(audformat.filewise_index(list(dims.index)))
            for dim in DIMENSIONS:
                db[table][dim] = audformat.Column(scheme_id=dim)
                db[table][dim].set(dims[dim].astype("float64").to_numpy())
            with_dims.append(split)
        cats = part.dropna(subset=["emotion"])
        if len(cats):
            table = f"emotion.categories.{split}.gold_standard"
            db[table] = audformat.Table(audformat.filewise_index(list(cats.index)))
            db[table]["emotion"] = audformat.Column(scheme_id="emotion")
            db[table]["emotion"].set(cats["emotion"].astype("string").to_list())
    return with_dims


def add_media(build: Path, frame: pd.DataFrame) -> None:
    r"""Link or copy each row's audio to its path in ``build``."""
    for file, source in frame["source"].items():
        place_media(Path(source), build, file)


def publish_release(
    frame: pd.DataFrame,
    problems: list,
    entry: dict,
    *,
    source: str,
    add_tables: typing.Callable,
    repository: str | None,
    registry: str | os.PathLike,
    usage: str = "research",
) -> ImportReport:
    r"""Publish the usable rows of ``frame`` with the shared gold tables and those of ``add_tables(db, frame)``."""
    import audformat

    if not len(frame):
        raise DatasetConfigError(
            f"{source}: no usable utterance found; nothing published. Problems:\n  "
            + "\n  ".join(f"{w}: {r}" for w, r in problems[:50])
        )
    repo = target_repository(repository)

    def build(target: Path) -> None:
        db = audformat.Database(entry["audb"], source=source, usage=usage)
        add_tables(db, frame)
        add_gold_tables(db, frame)
        add_media(target, frame)
        db.save(str(target))

    return publish(build, entry, repo, registry, kept=len(frame), problems=problems)


def sex_name(value) -> str | None:
    r"""``female`` / ``male`` from the spellings releases use, None for unknown or empty.

    Examples:
        >>> sex_name("Female"), sex_name("M"), sex_name("Unknown"), sex_name(None)
        ('female', 'male', None, None)

    """
    text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip().lower()
    return {"female": "female", "f": "female", "male": "male", "m": "male"}.get(text)
