"""Segmented gold standards (CMU-MOSI's ``sentiment``): each segment scored on its own.

A split whose table is segmented (``file``, ``start``, ``end``) is cut
with audinterface's segmented processing
(:meth:`audinterface.Process.process_index` on the segmented index) and
each segment is stored once as a WAV file in the benchmark's cache
(``segments/<name>/<version>/<checksum>/<file>/<start>-<end>.wav``,
times in microseconds, ``checksum`` the first 16 characters of audb's
checksum of the recording, so other bytes under the same version are
cut anew). From then on a segment is a file like any other: the
model predicts it on its own, robustness perturbs it, fairness groups it
by the speaker and sex of the recording it comes from, and its cached
prediction is keyed by the segment's content.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pandas as pd

from benchmark.paths import cache_dir


def segment_root(name: str, version: str) -> Path:
    r"""Where the segments of ``name`` ``version`` are stored."""
    return cache_dir("segments", name, version)


def segment_path(file: str, start: pd.Timedelta, end: pd.Timedelta) -> str:
    r"""The relative path of a segment of ``file`` (times in whole microseconds).

    Examples:
        >>> segment_path("Audio/x.wav", pd.Timedelta(seconds=1.5), pd.Timedelta(seconds=2))
        'Audio/x/1500000-2000000.wav'

    """
    stem = PurePosixPath(file).with_suffix("")
    us = ["end" if pd.isna(t) else str(int(round(t / pd.Timedelta(microseconds=1)))) for t in (start, end)]
    return f"{stem}/{us[0]}-{us[1]}.wav"


def cut(index: pd.MultiIndex, db_root: str, name: str, version: str, checksums: dict) -> tuple[pd.Series, dict]:
    r"""Write each segment of ``index`` (relative to ``db_root``) once; its path and a checksum per segment.

    Returns:
        the segment's relative path per row of ``index``, and the checksum of
        each segment (the recording's audb checksum plus the times), keyed by
        that path, so the data fingerprint is the same on every machine

    """
    import audinterface
    import audiofile

    root = segment_root(name, version)

    def relative(file, start, end) -> str:
        return f"{(checksums.get(file) or 'unknown')[:16]}/{segment_path(file, start, end)}"

    paths = pd.Series([relative(f, s, e) for f, s, e in index], index=index, dtype="string")
    todo = index[[not (root / p).is_file() for p in paths]]
    if len(todo):
        signals = audinterface.Process().process_index(todo, root=db_root)
        for (file, start, end), signal in signals.items():
            target = root / relative(file, start, end)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.wav")
            audiofile.write(str(partial), signal, audiofile.sampling_rate(os.path.join(db_root, file)))
            os.replace(partial, target)  # a reader never sees half a segment
    sums = {p: f"{checksums.get(f, '')}:{p}" for (f, _, _), p in zip(index, paths)}
    return paths, sums
