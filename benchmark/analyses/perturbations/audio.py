"""Reading and writing the audio of perturbed copies."""

from __future__ import annotations

import os
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
