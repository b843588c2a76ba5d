"""Signals the runner takes from memory instead of reading files (a robustness condition's perturbed audio).

A :class:`SignalSource` gives a file's signal exactly as reading the file
would (``(channels, samples)`` at its ``sampling_rate``); the runner then
resamples and mixes it down as it does a file it reads
(:func:`benchmark.runner.iter_chunks`).
"""

from __future__ import annotations

import concurrent.futures
import typing

import numpy as np


class SkipFile(Exception):
    r"""A source has no signal for a file (e.g. too short to crop); the message is the skip reason."""


class SignalSource(typing.Protocol):
    r"""``source(file)`` → ``(channels, samples)`` at ``source.sampling_rate``, or :class:`SkipFile`."""

    sampling_rate: int

    def __call__(self, file: str) -> np.ndarray: ...


def unreadable(ex: BaseException) -> str:
    r"""The skip reason of a file whose signal could not be processed.

    Examples:
        >>> unreadable(ValueError("bad header\nmore"))
        'unreadable audio: ValueError: bad header'

    """
    return f"unreadable audio: {type(ex).__name__}: {str(ex).splitlines()[0][:160] if str(ex) else ''}"


def take(
    source: SignalSource,
    files: typing.Sequence[str],
    skips: dict[str, str],
    apply: typing.Callable[[np.ndarray, int, str], typing.Any],
    num_workers: int = 1,
) -> dict[str, typing.Any]:
    r"""``apply(signal, rate, file)`` to each file's signal from ``source``, on ``num_workers`` threads.

    A file the source has no signal for, or whose ``apply`` raises, is
    left out and its reason put in ``skips``: an error of one file never
    stops the others.

    Examples:
        >>> class Ones:
        ...     sampling_rate = 8000
        ...
        ...     def __call__(self, file):
        ...         if file == "short":
        ...             raise SkipFile("too short")
        ...         return np.ones((1, 4))
        >>> skips = {}
        >>> take(Ones(), ["a", "short"], skips, lambda x, sr, f: (x.sum(), sr))
        {'a': (np.float64(4.0), 8000)}
        >>> skips
        {'short': 'too short'}

    """

    def one(file: str):
        try:
            signal = source(file)
        except SkipFile as ex:
            skips[file] = str(ex)
            return None
        try:
            return apply(signal, source.sampling_rate, file)
        except Exception as ex:  # as a file read: an error of this file, never of the chunk
            skips[file] = unreadable(ex)
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        out = dict(zip(files, pool.map(one, files), strict=True))
    return {f: value for f, value in out.items() if value is not None}
