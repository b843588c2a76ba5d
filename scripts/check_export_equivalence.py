"""Check that a re-exported (or rewritten) ONNX model computes the same function as the old one.

Usage (from the repository root)::

    python scripts/check_export_equivalence.py OLD NEW --audio SPEC [--audio SPEC ...] [--files 20] [--tolerance 1e-5]

``OLD`` and ``NEW`` are model folders (with ``model.onnx``) or ``.onnx``
files, e.g. ``git show HEAD~1:weights/wav2small/model.onnx > /tmp/old.onnx``
against ``weights/wav2small``. Every ``--audio`` spec is what the
benchmark's ``--data`` options accept: ``demo`` (the embedded demo pool),
a folder, an audio file, a list file or a glob; ``--files`` files are
taken evenly spread from each, read as mono and resampled to 16 kHz.

Prints the largest absolute output difference per spec and overall, and
exits 1 when it exceeds ``--tolerance``: a rewrite that moves any output
by more than that is a new function, whose results must be recomputed.
"""

from __future__ import annotations

import argparse
import sys
import typing

import numpy as np

from benchmark import DataError, onnx_max_abs_difference, resolve_files

SAMPLING_RATE = 16000


def read_signals(files: typing.Sequence[str]) -> typing.Iterator[np.ndarray]:
    r"""Mono float32 signals at 16 kHz (the channel mean; resampled where needed)."""
    import audiofile
    import audresample

    for path in files:
        signal, rate = audiofile.read(path, always_2d=True)
        signal = signal.mean(axis=0, keepdims=True).astype(np.float32)
        if rate != SAMPLING_RATE:
            signal = audresample.resample(signal, rate, SAMPLING_RATE)
        yield signal[0]


def spread(files: typing.Sequence[str], count: int) -> list[str]:
    r"""``count`` files evenly spread over ``files`` (all of them if there are fewer).

    Examples:
        >>> spread(["a", "b", "c", "d", "e"], 2)
        ['a', 'c']

    """
    step = max(1, len(files) // count)
    return list(files[::step][:count])


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="model folder or .onnx file: the reference")
    parser.add_argument("new", help="model folder or .onnx file: the candidate")
    parser.add_argument("--audio", action="append", required=True, metavar="SPEC", help="audio to compare on")
    parser.add_argument("--files", type=int, default=20, help="files per --audio spec (default: 20)")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest allowed difference (default: 1e-5)")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error(f"--files must be at least 1, got {args.files}.")
    worst = 0.0
    for spec in args.audio:
        try:
            files, description = resolve_files(spec, option="--audio")
        except DataError as error:
            parser.error(str(error))
        chosen = spread(files, args.files)
        try:
            differences = onnx_max_abs_difference(args.old, args.new, read_signals(chosen))
        except FileNotFoundError as error:
            parser.error(str(error))
        worst = max(worst, *differences)
        print(f"{description}: {len(chosen)} files, max abs difference {max(differences):.3g}")
    verdict = "same function" if worst <= args.tolerance else "DIFFERENT function"
    print(f"overall max abs difference {worst:.3g} (tolerance {args.tolerance:g}): {verdict}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
