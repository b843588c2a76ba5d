"""IEMOCAP as USC distributes it: ``IEMOCAP_full_release/Session1..5``.

Per utterance the audio is ``SessionN/sentences/wav/<dialog>/<utt>.wav``
and its labels are a line of ``SessionN/dialog/EmoEvaluation/<dialog>.txt``
(top-level files only; the sub-folders hold per-rater files)::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

with the bracket holding valence, arousal (activation), dominance means
on 1..5. Published as audEERING's ``iemocap`` tables: A/D/V mapped to
0..1 by (x - 1) / 4 in ``emotion.dimensions.{train,test}.gold_standard``,
categories in ``emotion.categories.{train,test}.gold_standard``
(``exc`` joins ``happiness`` as in the common four-class protocol;
``xxx``, no majority, has no category), ``files`` with the speaker
(``Ses01F``: session and the sex letter of the utterance's speaker) and
a misc table ``speaker`` with ``gender``. Session 5 is ``test`` and
sessions 1-4 ``train`` unless another test session is chosen (one fold
of leave-one-session-out).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.data.errors import DatasetConfigError
from benchmark.data.releases.common import check_audio, publish_release, unit_scale

LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<utt>Ses\S+)\s+(?P<code>\S+)\s+"
    r"\[\s*(?P<v>[^,\]]*),\s*(?P<a>[^,\]]*),\s*(?P<d>[^,\]]*)\]\s*$"
)
"""A summary line of an EmoEvaluation file (tabs or spaces between the fields)."""

CODES = {
    "ang": "anger",
    "hap": "happiness",
    "exc": "happiness",
    "sad": "sadness",
    "neu": "neutral",
    "fru": "frustration",
    "fea": "fear",
    "sur": "surprise",
    "dis": "disgust",
    "oth": "other",
    "xxx": None,
}
"""Category code → audEERING's category name (None: no majority)."""


def find(path: Path) -> Path:
    r"""The ``IEMOCAP_full_release`` folder at or inside ``path``."""
    for root in (path, path / "IEMOCAP_full_release"):
        if any((root / f"Session{n}").is_dir() for n in range(1, 6)):
            return root
    raise DatasetConfigError(
        f"{path} is not an IEMOCAP release: expected Session1 .. Session5 in it "
        "(or in its IEMOCAP_full_release/ folder)."
    )


def speaker_of(utt: str) -> tuple[str, str] | None:
    r"""Speaker id and sex of an utterance id: session and the sex letter of its last ``_`` part.

    Examples:
        >>> speaker_of("Ses01F_impro04_M012"), speaker_of("Ses05M_script01_1b_F003"), speaker_of("x")
        (('Ses01M', 'male'), ('Ses05F', 'female'), None)

    """
    match = re.match(r"^Ses(\d\d)[FM]_.*_([FM])[\dX]{2,3}$", utt)
    if not match:
        return None
    session, letter = match.groups()
    return f"Ses{session}{letter}", "female" if letter == "F" else "male"


def read(root: Path, test_session: int = 5) -> tuple[pd.DataFrame, list]:
    r"""The utterance frame (see :mod:`benchmark.data.releases.common`) and every line that cannot be used."""
    rows, problems = [], []
    for session in range(1, 6):
        folder = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        if not folder.is_dir():
            problems.append((f"Session{session}", f"{folder} not found: session left out"))
            continue
        for txt in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt"):
            rows_, problems_ = _read_summary(txt, root, session, test_session)
            rows += rows_
            problems += problems_
    frame = pd.DataFrame(rows, columns=["file", "source", "split", *DIMENSIONS, "emotion", "speaker", "sex"])
    duplicated = frame["file"].duplicated()
    problems += [(f, "listed twice (first line kept)") for f in frame.loc[duplicated, "file"]]
    return frame[~duplicated].set_index("file"), problems


def _read_summary(txt: Path, root: Path, session: int, test_session: int) -> tuple[list, list]:
    rows, problems = [], []
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("["):
            continue  # header, rater lines, blank lines
        match = LINE.match(line.strip())
        if not match:
            problems.append((f"{txt.name}", f"line not understood: {line.strip()[:80]!r}"))
            continue
        utt, code = match["utt"], match["code"].lower()
        dialog = utt.rsplit("_", 1)[0]
        file = f"Session{session}/sentences/wav/{dialog}/{utt}.wav"
        bad = []
        values = {
            dim: unit_scale(match[key], 1, 5) for dim, key in (("valence", "v"), ("arousal", "a"), ("dominance", "d"))
        }
        bad += [
            f"{dim} {match[k]!r} is no number in 1..5"
            for dim, k in (("valence", "v"), ("arousal", "a"), ("dominance", "d"))
            if values[dim] is None
        ]
        if code not in CODES:
            bad.append(f"category code {code!r} unknown (use {', '.join(CODES)})")
        who = speaker_of(utt)
        if who is None:
            bad.append("utterance id not understood (speaker unknown)")
        if bad:
            problems += [(file, b) for b in bad]
            continue
        rows.append(
            {
                "file": file,
                "source": str(root / file),
                "split": "test" if session == test_session else "train",
                **values,
                "emotion": CODES[code],
                "speaker": who[0],
                "sex": who[1],
            }
        )
    return rows, problems


def add_speaker_tables(db, frame: pd.DataFrame) -> None:
    r"""``files`` with the speaker per file, and the misc table ``speaker`` with ``gender``."""
    import audformat

    sexes = frame.groupby("speaker")["sex"].first()
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    db["speaker"] = audformat.MiscTable(pd.Index(list(sexes.index), name="speaker", dtype="string"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(sexes.to_list())
    db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")
    db["files"] = audformat.Table(audformat.filewise_index(list(frame.index)))
    db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
    db["files"]["speaker"].set(frame["speaker"].to_list())


def entry(name: str, version: str, test_session: int) -> dict:
    r"""The registry entry of an imported release."""
    return {
        "name": name,
        "audb": name,
        "version": str(version),
        "splits": {"test": "emotion.dimensions.test.gold_standard"},
        "labels": {d: d for d in DIMENSIONS},
        "label_range": [0, 1],
        "speaker": {"table": "files", "column": "speaker"},
        "sex": {"table": "speaker", "column": "gender"},
        "categories": {"column": "emotion", "table": "emotion.categories.{split}.gold_standard"},
        "citation": f"Busso et al., LRE 2008 (IEMOCAP), imported from the release folder; test = Session {test_session}",
    }


def import_release(
    path: str | os.PathLike,
    version: str,
    *,
    name: str,
    repository=None,
    registry="datasets-own.yaml",
    test_session: int = 5,
):
    r"""Read, check and publish the IEMOCAP release at ``path`` with ``test_session`` as the ``test`` split."""
    if test_session not in range(1, 6):
        raise DatasetConfigError(f"--test-session {test_session}: choose a session from 1 to 5.")
    root = find(Path(path).expanduser().resolve())
    frame, problems = read(root, test_session)
    frame = check_audio(frame, problems)
    if not (frame["split"] == "test").any():
        raise DatasetConfigError(
            f"{root}: no usable utterance of Session {test_session} (the test split); nothing published "
            f"({len(problems)} problem(s), e.g. {problems[:3]})."
        )
    return publish_release(
        frame,
        problems,
        entry(name, version, test_session),
        source=str(root),
        add_tables=add_speaker_tables,
        repository=repository,
        registry=registry,
    )
