"""MSP-Podcast as UT Dallas distributes it: ``Audios/*.wav`` and ``Labels/labels_consensus.csv``.

The consensus table has one row per file: ``FileName`` (with ``.wav``),
``EmoClass`` (one letter), ``EmoAct``/``EmoVal``/``EmoDom`` (rater means
on 1..7), ``SpkrID`` and ``Gender`` (``Unknown`` when unknown) and
``Split_Set``. Older releases spell the file ``labels_concensus.csv``
and some copies use ``Audio/`` or ``label/``: all are accepted.

Published as audEERING's ``msppodcast`` tables: A/D/V mapped to 0..1 by
(x - 1) / 6 in ``emotion.dimensions.<split>.gold_standard``, the
categories in ``emotion.categories.<split>.gold_standard``, and speaker
and gender per file in ``files.<split>`` (as ser-tests reads them).
Splits: ``Test1`` → ``test-1``, ``Test2`` → ``test-2``, ``Test3`` →
``test-3`` (labels hidden in 1.11: its rows have none), ``Development``
(or ``Validation``) → ``development``, ``Train`` → ``train``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.data.errors import DatasetConfigError
from benchmark.data.releases.common import check_audio, publish_release, sex_name, unit_scale

SPLITS = {
    "train": "train",
    "development": "development",
    "validation": "development",
    "test1": "test-1",
    "test2": "test-2",
    "test3": "test-3",
}
"""``Split_Set`` (lower case) → published split name."""

CLASSES = {
    "A": "anger",
    "S": "sadness",
    "H": "happiness",
    "U": "surprise",
    "F": "fear",
    "D": "disgust",
    "C": "contempt",
    "N": "neutral",
    "O": "other",
    "X": None,  # no agreement among raters: no category
}
"""``EmoClass`` letter → audEERING's category name."""

COLUMNS = {"EmoAct": "arousal", "EmoDom": "dominance", "EmoVal": "valence"}
EVALUATED = ("test-1", "test-2", "test-3", "development")
"""Splits the registry entry offers (``train`` is published, not evaluated)."""


def find(root: Path) -> tuple[Path, Path]:
    r"""The consensus CSV and the audio folder of the release at ``root`` (either spelling, either casing)."""
    labels = [
        root / d / f"labels_{s}.csv" for d in ("Labels", "labels", "Label", "label") for s in ("consensus", "concensus")
    ]
    found = [p for p in labels if p.is_file()]
    audio = [root / d for d in ("Audios", "Audio", "audios", "audio") if (root / d).is_dir()]
    if not found or not audio:
        raise DatasetConfigError(
            f"{root} is not an MSP-Podcast release folder: expected Labels/labels_consensus.csv "
            "(or labels_concensus.csv) and Audios/. Pass the folder that holds them."
        )
    return found[0], audio[0]


def read(root: Path) -> tuple[pd.DataFrame, list]:
    r"""The utterance frame (see :mod:`benchmark.data.releases.common`) and every row that cannot be used."""
    csv, audio = find(root)
    try:
        table = pd.read_csv(csv, dtype="string", keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError) as ex:
        raise DatasetConfigError(f"{csv}: not a readable UTF-8 CSV ({ex}).") from None
    missing = [c for c in ("FileName", "Split_Set", *COLUMNS) if c not in table.columns]
    if missing:
        raise DatasetConfigError(f"{csv}: column(s) {missing} missing; it has {list(table.columns)}.")
    rows, problems = [], []
    for number, row in enumerate(table.to_dict("records"), start=2):
        name = str(row["FileName"]).strip()
        name = name if name.lower().endswith(".wav") else f"{name}.wav"
        where = name if name != ".wav" else f"{csv.name} line {number}"
        bad = []
        if "/" in name or "\\" in name or name.startswith("."):
            bad.append("FileName must be a plain file name")
        split = SPLITS.get(str(row["Split_Set"]).strip().lower())
        if split is None:
            bad.append(f"Split_Set {row['Split_Set']!r} unknown (use {', '.join(sorted(set(SPLITS)))})")
        values = {}
        for column, dim in COLUMNS.items():
            text = str(row[column]).strip()
            values[dim] = unit_scale(text, 1, 7) if text else None
            if text and values[dim] is None:
                bad.append(f"{column} {text!r} is no number in 1..7")
        code = str(row.get("EmoClass", "") or "").strip().upper()
        if code and code not in CLASSES:
            bad.append(f"EmoClass {code!r} unknown (use {', '.join(CLASSES)})")
        if all(v is None for v in values.values()) and CLASSES.get(code) is None and not bad:
            bad.append("no label (EmoAct/EmoVal/EmoDom empty and no category)")
        if bad:
            problems += [(where, b) for b in bad]
            continue
        speaker = str(row.get("SpkrID", "") or "").strip()
        rows.append(
            {
                "file": f"{audio.name}/{name}",
                "source": str(audio / name),
                "split": split,
                **values,
                "emotion": CLASSES.get(code),
                "speaker": speaker if speaker and speaker.lower() != "unknown" else None,
                "sex": sex_name(row.get("Gender")),
            }
        )
    frame = pd.DataFrame(rows, columns=["file", "source", "split", *DIMENSIONS, "emotion", "speaker", "sex"])
    duplicated = frame["file"].duplicated()
    problems += [(f, "listed twice (first row kept)") for f in frame.loc[duplicated, "file"]]
    return frame[~duplicated].set_index("file"), problems


def add_files_tables(db, frame: pd.DataFrame) -> None:
    r"""``files.<split>``: speaker and gender per file (empty where the release says ``Unknown``)."""
    import audformat

    db.schemes["speaker"] = audformat.Scheme("str")
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    for split, part in frame.groupby("split", sort=True):
        table = f"files.{split}"
        db[table] = audformat.Table(audformat.filewise_index(list(part.index)))
        db[table]["speaker"] = audformat.Column(scheme_id="speaker")
        db[table]["speaker"].set(part["speaker"].astype("string").to_list())
        db[table]["gender"] = audformat.Column(scheme_id="gender")
        db[table]["gender"].set(part["sex"].astype("string").to_list())


def entry(name: str, version: str, splits: list[str], with_categories: bool) -> dict:
    r"""The registry entry of an imported release (the same fields as audEERING's ``msppodcast``)."""
    out = {
        "name": name,
        "audb": name,
        "version": str(version),
        "splits": {s: f"emotion.dimensions.{s}.gold_standard" for s in EVALUATED if s in splits},
        "labels": {d: d for d in DIMENSIONS},
        "label_range": [0, 1],
        "speaker": {"table": "files.{split}", "column": "speaker"},
        "sex": {"table": "files.{split}", "column": "gender"},
        "citation": "Lotfian & Busso, IEEE TAC 2019 (MSP-Podcast), imported from the release folder",
    }
    if with_categories:
        out["categories"] = {"column": "emotion", "table": "emotion.categories.{split}.gold_standard"}
    return out


def import_release(path: str | os.PathLike, version: str, *, name: str, repository=None, registry="datasets-own.yaml"):
    r"""Read, check and publish the MSP-Podcast release at ``path`` (see the module's docstring)."""
    root = Path(path).expanduser().resolve()
    frame, problems = read(root)
    frame = check_audio(frame, problems)
    dims = frame.dropna(subset=list(DIMENSIONS), how="all")
    splits = sorted(set(dims["split"]))
    if not any(s in EVALUATED for s in splits):
        raise DatasetConfigError(
            f"{root}: no Test1, Test2 or Development file with labels is usable; nothing published "
            f"({len(problems)} problem(s), e.g. {problems[:3]})."
        )
    return publish_release(
        frame,
        problems,
        entry(name, version, splits, frame["emotion"].notna().any()),
        source=str(root),
        add_tables=add_files_tables,
        repository=repository,
        registry=registry,
    )
