"""The training audio: where it is found, its content hashes, how it is read."""

from __future__ import annotations

import dataclasses
import os
import typing

import audiofile
import audresample
import numpy as np

from benchmark import DataError, sha256_file, sha256_text

SAMPLING_RATE = 16000


@dataclasses.dataclass
class Pool:
    r"""Audio files of the unlabeled training pool, deduplicated by content.

    Attributes:
        files: absolute paths, sorted by content hash (so the order does
            not depend on where the files live or how they were listed)
        hashes: SHA-256 of each file's bytes
        missing: ``(path, reason)`` for listed files that do not exist
        duplicates: number of files dropped because their bytes repeat another

    """

    files: list[str]
    hashes: list[str]
    missing: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    duplicates: int = 0

    @property
    def sha256(self) -> str:
        r"""Hash of the pool's content (the sorted file hashes)."""
        return sha256_text("\n".join(self.hashes))

    def split(self, fraction: float, minimum: int = 2) -> tuple[Pool, Pool]:
        r"""Split into (train, held-out) deterministically by content hash.

        The held-out part does not depend on the seed, so runs with
        different seeds are validated on the same files.

        Examples:
            >>> p = Pool([f"f{i}" for i in range(10)], [f"{i:02d}" for i in range(10)])
            >>> train, held = p.split(0.2)
            >>> len(train.files), held.files
            (8, ['f0', 'f1'])

        """
        n = len(self.files)
        k = 0 if fraction <= 0 or n < 2 * minimum else min(n - minimum, max(minimum, int(round(fraction * n))))
        # files are sorted by their own hash: the first k are a pseudo-random, content-defined subset
        held = Pool(self.files[:k], self.hashes[:k])
        train = Pool(self.files[k:], self.hashes[k:], self.missing, self.duplicates)
        return train, held


def scan_pool(files: typing.Sequence[str]) -> Pool:
    r"""Hash the files' bytes; missing files are reported, duplicates dropped."""
    by_hash: dict[str, str] = {}
    missing = []
    for f in files:
        try:
            digest = sha256_file(f)
        except OSError as ex:
            missing.append((str(f), f"cannot open: {ex.strerror or ex}"))
            continue
        by_hash.setdefault(digest, str(f))
    hashes = sorted(by_hash)
    return Pool([by_hash[h] for h in hashes], hashes, missing, len(files) - len(missing) - len(hashes))


def read_audio(path: str) -> np.ndarray:
    r"""Read a file as mono float32 at 16 kHz (channels averaged).

    Raises:
        RuntimeError: if the file cannot be decoded or holds no samples

    """
    try:
        signal, sampling_rate = audiofile.read(path, always_2d=True, dtype="float32")
    except Exception as ex:  # soundfile/ffmpeg raise many types for broken files
        raise RuntimeError(f"cannot decode: {type(ex).__name__}: {ex}") from None
    if signal.size == 0:
        raise RuntimeError("no samples")
    signal = signal.mean(axis=0, keepdims=True)
    if sampling_rate != SAMPLING_RATE:
        signal = audresample.resample(signal, sampling_rate, SAMPLING_RATE)
    signal = np.ascontiguousarray(signal[0], dtype=np.float32)
    if not np.isfinite(signal).all():
        raise RuntimeError("samples are not finite")
    return signal


class AudioFiles(typing.Sequence[np.ndarray]):
    r"""Audio files as a sequence of signals, each read (:func:`read_audio`) when it is indexed.

    Whole files are read one at a time where they are used, not held: the
    refit's 4,000 files of a user's own pool may be hours of audio.
    Slicing and ``+`` give :class:`AudioFiles` again; nothing is read until
    a signal is indexed.

    Args:
        files: paths of files that :func:`read_audio` could read

    Examples:
        >>> files = AudioFiles(["a.wav", "b.wav"]) + AudioFiles(["c.wav"])
        >>> len(files), files[1:].files
        (3, ['b.wav', 'c.wav'])

    """

    def __init__(self, files: typing.Iterable[str]):
        self.files = [str(f) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    @typing.overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @typing.overload
    def __getitem__(self, index: slice) -> AudioFiles: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return AudioFiles(self.files[index])
        path = self.files[index]
        try:
            return read_audio(path)
        except RuntimeError as ex:
            raise DataError(
                f"{path}: {ex}. It was read when the run started: was it changed "
                "or removed since? Restore it, or run again to leave it out."
            ) from None

    def __add__(self, other: AudioFiles) -> AudioFiles:
        return AudioFiles(self.files + other.files)

    def __repr__(self) -> str:
        return f"AudioFiles({len(self.files)} files)"


def as_stored(signal: np.ndarray) -> np.ndarray:
    r"""Round a crop to float16 and back: what is stored is what the teacher hears.

    Examples:
        >>> as_stored(np.array([0.1], dtype=np.float32)).tolist()
        [0.0999755859375]

    """
    return np.clip(signal, -65504.0, 65504.0).astype(np.float16).astype(np.float32)


def relative_skips(skips: typing.Sequence[tuple[str, str]], files: typing.Sequence[str]) -> list[dict]:
    r"""Skipped files relative to the pool's common folder (no machine-specific prefix)."""
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:
        base = ""
    return [{"file": os.path.relpath(f, base) if base else f, "reason": r} for f, r in skips]
