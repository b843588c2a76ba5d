"""Audio files named by a spec: the embedded demo pool, a folder, a file, a list or a glob.

Used wherever the benchmark needs plain audio without labels: the babble
talkers of the robustness analysis and the training pool of the
distillation.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


LIST_EXTENSIONS = (".txt", ".lst", ".csv")


class DataError(ValueError):
    r"""The audio a spec names cannot be found, or there is none."""


def resolve_files(data: str, demo_database: str = "demo-pool", option: str = "--data") -> tuple[list[str], str]:
    r"""Audio files named by ``data``, and a short description of the source.

    ``data`` is ``'demo'`` (the embedded unlabeled demo database
    ``demo_database``), a folder (searched recursively for audio files), a
    single audio file, a list file (``.txt``/``.lst``/``.csv``: one path
    per line, relative to the list file, ``#`` comments allowed; a CSV
    uses its first column), or a glob pattern (``'data/**/*.wav'``).
    ``option`` names the setting in the error for a spec that finds no audio.
    """
    if data == "demo":
        from benchmark.data import demo  # slow to import (seconds); only for the demo pool

        return [str(f) for f in demo.pool_files(demo_database)], f"demo ({demo_database} {demo.DEMO_VERSION})"
    path = Path(os.path.expanduser(data))
    if path.is_dir():
        files = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        return files, f"folder {path}"
    if path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        return _read_list(path), f"list {path}"
    if path.is_file():
        return [str(path.resolve())], f"file {path}"
    files = sorted(str(Path(p).resolve()) for p in glob.glob(os.path.expanduser(data), recursive=True))
    files = [f for f in files if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
    if not files:
        raise DataError(
            f"No audio found for {option} '{data}': give 'demo', a folder, an audio file, a list file "
            f"({', '.join(LIST_EXTENSIONS)}; one path per line) or a glob pattern such as 'audio/**/*.wav'."
        )
    return files, f"glob {data}"


def _read_list(path: Path) -> list[str]:
    files = []
    for i, line in enumerate(path.read_text().splitlines()):
        line = line.strip()
        if path.suffix.lower() == ".csv":
            line = line.split(",")[0].strip().strip('"')
            if i == 0 and Path(line).suffix.lower() not in AUDIO_EXTENSIONS:
                continue  # a header row
        if not line or line.startswith("#"):
            continue
        p = Path(os.path.expanduser(line))
        files.append(str((p if p.is_absolute() else path.parent / p).resolve()))
    return files
