"""Reading and writing the audio of perturbed copies."""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

import numpy as np

from benchmark.analyses.perturbations.conditions import SAMPLING_RATE
from benchmark.atomic import atomic_path


def read_mono(path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    r"""Read a file as mono ``(1, samples)`` float32 at ``sampling_rate``."""
    import audiofile
    import audresample

    signal, rate = audiofile.read(str(path), always_2d=True)
    if signal.shape[0] > 1:
        signal = audresample.remix(signal, mixdown=True)
    if rate != sampling_rate:
        signal = audresample.resample(signal, rate, sampling_rate)
    return np.ascontiguousarray(signal, dtype="float32")


class DecodedAudio:
    r"""The mono signals of recently read files, at most ``max_mb`` megabytes (least recently used go first).

    A robustness run perturbs the same files under every condition of a split, one condition
    after the other: kept here, each file is decoded once per split, not once per condition.
    An entry is keyed by the file's path, size and modification time and the rate, so a file
    that changed is read again; callers get a copy, so a transform that writes into its input
    cannot change what is kept.

    Examples:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> write_wav(path, np.ones((1, 800), dtype="float32"), 8000)
        >>> audio = DecodedAudio(max_mb=1)
        >>> audio.read(path).shape, audio.read(path).shape, audio.hits
        ((1, 1600), (1, 1600), 1)

    """

    def __init__(self, max_mb: float = 256.0):
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.hits = 0
        self._kept: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
        r""":func:`read_mono` of ``path``, from memory where it was read before."""
        try:
            stat = os.stat(path)
        except OSError:
            return read_mono(path, sampling_rate)  # fails with the reader's own message
        key = (os.fspath(path), int(sampling_rate), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept.copy()
        signal = read_mono(path, sampling_rate)
        if signal.nbytes <= self.max_bytes:
            with self._lock:
                if key not in self._kept:
                    self._kept[key] = signal.copy()
                    self._bytes += signal.nbytes
                while self._bytes > self.max_bytes:
                    _, dropped = self._kept.popitem(last=False)
                    self._bytes -= dropped.nbytes
        return signal


DECODED = DecodedAudio()
r"""The decoded originals the perturbations of this process share."""


def write_wav(path: str | os.PathLike, signal: np.ndarray, sampling_rate: int) -> None:
    r"""Write a 32-bit float WAV atomically (temporary file + rename).

    scipy's writer, not libsndfile's: libsndfile adds a PEAK chunk with a
    time stamp to float files, so the same audio would not give the same bytes.
    """
    import scipy.io.wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(signal, dtype="<f4")
    data = data[0] if data.ndim == 2 and data.shape[0] == 1 else data.T
    with atomic_path(path) as tmp:
        scipy.io.wavfile.write(tmp, int(sampling_rate), data)
