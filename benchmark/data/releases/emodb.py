"""EmoDB as originally released: ``wav/<SS><TTT><E><v>.wav`` and ``erkennung.txt``.

``SS`` is the speaker, ``TTT`` the text code, ``E`` the emotion's German
initial, ``v`` a version letter; ``erkennung.txt`` (ISO-8859-1, tab
separated, decimal comma) gives per file the share of listeners who
recognised the emotion (``erkannt``, %) and the rated naturalness
(``natuerlich``, %). It lists more files than ``wav/`` holds; rows
without audio are not used.

Published with the table names of audb's ``emodb`` 2.0.0: ``emotion``
(``emotion``, ``emotion.confidence``, ``emotion.naturalness`` on 0..1),
``emotion.categories.test.gold_standard`` (speakers 12, 14, 15, 16) and
``emotion.categories.train.gold_standard`` (3, 8, 9, 10, 11, 13),
``emotion.categories.ambiguous`` (confidence under 0.8), ``files``
(``duration``, ``transcription`` = text code, ``speaker`` as integer)
and the misc table ``speaker`` (``age``, ``gender``, ``language``).
The ``laryngo/`` recordings of 2.0.0 are not part of the original
release and are not built.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.data.errors import DatasetConfigError
from benchmark.data.releases.common import check_audio, publish_release

EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
"""German initial in the file name → emotion."""

SPEAKERS = {
    3: ("male", 31),
    8: ("female", 34),
    9: ("female", 21),
    10: ("male", 32),
    11: ("male", 26),
    12: ("male", 30),
    13: ("female", 32),
    14: ("female", 35),
    15: ("male", 25),
    16: ("female", 31),
}
"""Speaker → (gender, age), as corrected in emodb 1.1.1."""

TEST_SPEAKERS = (12, 14, 15, 16)
"""The speaker-independent test split of audb's ``emodb`` (since 1.2.0); the others are ``train``."""

NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])\.wav$")


def read_confidence(path: Path) -> pd.DataFrame:
    r"""``erkennung.txt`` as ``confidence`` and ``naturalness`` on 0..1, indexed by file name."""
    if not path.is_file():
        raise DatasetConfigError(f"{path} not found: an EmoDB release has erkennung.txt beside wav/.")
    rows = {}
    for line in path.read_text(encoding="latin-1").splitlines()[1:]:
        parts = [p.replace("\xa0", " ").strip() for p in line.split("\t")]
        if len(parts) < 4 or not parts[1]:
            continue
        try:
            rows[parts[1]] = (float(parts[2].replace(",", ".")) / 100, float(parts[3].replace(",", ".")) / 100)
        except ValueError:
            continue  # a malformed row leaves its file without confidence, reported below
    return pd.DataFrame.from_dict(rows, orient="index", columns=["confidence", "naturalness"])


def read(root: Path) -> tuple[pd.DataFrame, list]:
    r"""The utterance frame with the extra columns ``text``, ``confidence``, ``naturalness``; the problems."""
    audio = root / "wav"
    if not audio.is_dir():
        raise DatasetConfigError(f"{root} is not an EmoDB release folder: expected wav/ and erkennung.txt in it.")
    confidence = read_confidence(root / "erkennung.txt")
    rows, problems = [], []
    for wav in sorted(audio.iterdir()):
        file = f"wav/{wav.name}"
        match = NAME.match(wav.name)
        if not match:
            problems.append((file, "name is not <speaker><text><emotion><version>.wav"))
            continue
        speaker = int(match["speaker"])
        bad = []
        if match["emotion"] not in EMOTIONS:
            bad.append(f"emotion letter {match['emotion']!r} unknown (use {', '.join(EMOTIONS)})")
        if speaker not in SPEAKERS:
            bad.append(f"speaker {match['speaker']} is none of EmoDB's ten")
        if wav.name not in confidence.index:
            bad.append("no row in erkennung.txt")
        if bad:
            problems += [(file, b) for b in bad]
            continue
        rows.append(
            {
                "file": file,
                "source": str(wav),
                "split": "test" if speaker in TEST_SPEAKERS else "train",
                **{d: None for d in DIMENSIONS},
                "emotion": EMOTIONS[match["emotion"]],
                "speaker": speaker,
                "sex": SPEAKERS[speaker][0],
                "text": match["text"],
                **confidence.loc[wav.name].to_dict(),
            }
        )
    columns = ["file", "source", "split", *DIMENSIONS, "emotion", "speaker", "sex", "text"]
    return pd.DataFrame(rows, columns=[*columns, "confidence", "naturalness"]).set_index("file"), problems


def train_speaker_files(root: str | os.PathLike) -> pd.DataFrame:
    r"""EmoDB's train-speaker files of a release folder: ``source``, ``emotion``, ``speaker``, ``sex``.

    Reads the original layout (``wav/``, ``erkennung.txt``) with
    :func:`read`; the test speakers (:data:`TEST_SPEAKERS`) are dropped
    here, so no caller can train on or tune with them by accident.

    Raises:
        DatasetConfigError: if a file cannot be read as EmoDB or no file
            of a train speaker is there

    """
    frame, problems = read(Path(root))
    if problems:
        shown = "; ".join(f"{f}: {p}" for f, p in problems[:3])
        raise DatasetConfigError(f"{root}: {len(problems)} file(s) not readable as EmoDB ({shown}).")
    train = frame[frame["split"] == "train"]
    if train.empty:
        raise DatasetConfigError(f"{root}: no file of EmoDB's train speakers (03, 08, 09, 10, 11, 13) found.")
    return train[["source", "emotion", "speaker", "sex"]]


def real_speech_folder(spec: str, option: str = "--real-speech") -> Path:
    r"""The EmoDB release folder named by a real-speech setting ``emodb=PATH``.

    Only EmoDB's original release is read this way (its train speakers,
    :func:`train_speaker_files`).

    Raises:
        DatasetConfigError: naming ``option``, if ``spec`` is not
            ``emodb=PATH`` with a ``wav/`` folder under ``PATH``

    Examples:
        >>> real_speech_folder("crema-d=/data")
        Traceback (most recent call last):
        ...
        benchmark.data.errors.DatasetConfigError: option --real-speech: give emodb=PATH, PATH an EmoDB release folder with wav/; got 'crema-d=/data'

    """
    corpus, _, path = spec.partition("=")
    folder = Path(path).expanduser()
    if corpus != "emodb" or not path or not (folder / "wav").is_dir():
        raise DatasetConfigError(
            f"option {option}: give emodb=PATH, PATH an EmoDB release folder with wav/; got {spec!r}"
        )
    return folder.resolve()


def add_tables(db, frame: pd.DataFrame) -> None:
    r"""``emotion``, ``emotion.categories.ambiguous``, ``files`` and the misc table ``speaker`` of emodb 2.0.0."""
    import audformat
    import audiofile

    db.schemes["confidence"] = audformat.Scheme("float", minimum=0, maximum=1)
    db.schemes["naturalness"] = audformat.Scheme("float", minimum=0, maximum=1)
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    db.schemes["age"] = audformat.Scheme("int", minimum=0)
    db.schemes["language"] = audformat.Scheme("str")
    ids = sorted(SPEAKERS)
    db["speaker"] = audformat.MiscTable(pd.Index(ids, name="speaker", dtype="Int64"))
    for column, values in (
        ("age", [SPEAKERS[s][1] for s in ids]),
        ("gender", [SPEAKERS[s][0] for s in ids]),
        ("language", ["deu"] * len(ids)),
    ):
        db["speaker"][column] = audformat.Column(scheme_id=column)
        db["speaker"][column].set(values)
    db.schemes["speaker"] = audformat.Scheme("int", labels="speaker")
    db.schemes["duration"] = audformat.Scheme("time")
    db.schemes["transcription"] = audformat.Scheme("str")
    db.schemes["emotion"] = audformat.Scheme("str", labels=sorted(EMOTIONS.values()))
    index = audformat.filewise_index(list(frame.index))
    db["files"] = audformat.Table(index)
    durations = [pd.to_timedelta(audiofile.duration(s), unit="s") for s in frame["source"]]
    for column, scheme, values in (
        ("duration", "duration", durations),
        ("speaker", "speaker", frame["speaker"].astype("int64").to_list()),
        ("transcription", "transcription", frame["text"].to_list()),
    ):
        db["files"][column] = audformat.Column(scheme_id=scheme)
        db["files"][column].set(values)
    db["emotion"] = audformat.Table(index)
    for column, scheme in (("emotion", "emotion"), ("emotion.confidence", "confidence")):
        db["emotion"][column] = audformat.Column(scheme_id=scheme)
        db["emotion"][column].set(frame[column.replace("emotion.", "")].to_list())
    db["emotion"]["emotion.naturalness"] = audformat.Column(scheme_id="naturalness")
    db["emotion"]["emotion.naturalness"].set(frame["naturalness"].to_list())
    ambiguous = frame[frame["confidence"] < 0.8]
    db["emotion.categories.ambiguous"] = audformat.Table(audformat.filewise_index(list(ambiguous.index)))
    db["emotion.categories.ambiguous"]["emotion"] = audformat.Column(scheme_id="emotion")
    db["emotion.categories.ambiguous"]["emotion"].set(ambiguous["emotion"].to_list())


def entry(name: str, version: str) -> dict:
    r"""The registry entry: the same tables as the ``emodb`` entry of audb's public repository."""
    return {
        "name": name,
        "audb": name,
        "version": str(version),
        "splits": {"test": "emotion.categories.test.gold_standard"},
        "categories": {"column": "emotion"},
        "speaker": {"table": "files", "column": "speaker"},
        "sex": {"table": "speaker", "column": "gender"},
        "citation": "Burkhardt et al., Interspeech 2005 (EmoDB), imported from the original release",
    }


def import_release(path: str | os.PathLike, version: str, *, name: str, repository=None, registry="datasets-own.yaml"):
    r"""Read, check and publish the EmoDB release at ``path`` (see the module's docstring)."""
    root = Path(path).expanduser().resolve()
    frame, problems = read(root)
    frame = check_audio(frame, problems)
    if not (frame["split"] == "test").any():
        raise DatasetConfigError(f"{root}: no usable file of the test speakers; nothing published ({problems[:3]}).")
    return publish_release(
        frame,
        problems,
        entry(name, version),
        source=str(root),
        add_tables=add_tables,
        repository=repository,
        registry=registry,
        usage="unrestricted",
    )
