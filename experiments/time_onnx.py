"""Time ONNX models side by side on one thread: wall and CPU milliseconds per 5 s clip, interleaved.

Usage (from the repository root)::

    python experiments/time_onnx.py weights/wav2small weights/mobilenetv4-conv-small [--rounds 30] [--seconds 5]

Loads every model (a folder with ``model.onnx`` or an ``.onnx`` file)
into one process with the session options of ``benchmark efficiency``
(one onnxruntime thread, default graph optimisations), then runs them in
turn on the same seeded noise clip, ``--rounds`` times after one warm-up
round. Prints the median and interquartile range of the wall time and of
the process CPU time per model, and each median relative to the first
model's.

Complements ``benchmark efficiency``, which times one model after the
other by wall clock: on a machine shared with other work, the wall time
of a run depends on what else runs at that moment, while the CPU time
the process itself used hardly does, and interleaving gives every model
the same conditions. Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import typing

import numpy as np

from benchmark import noise_clip, onnx_file


def time_models(models: typing.Sequence[str], rounds: int, seconds: float) -> dict[str, dict[str, list[float]]]:
    r"""Per model: ``'wall'`` and ``'cpu'`` milliseconds of every round, scaled to a 5 s clip."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sessions = {m: onnxruntime.InferenceSession(str(onnx_file(m)), options) for m in models}
    signal = noise_clip(seconds)[np.newaxis]
    feeds = {m: {s.get_inputs()[0].name: signal} for m, s in sessions.items()}
    scale = 5000.0 / seconds  # seconds per run → milliseconds per 5 s
    times = {m: {"wall": [], "cpu": []} for m in models}
    for round_ in range(rounds + 1):
        for m, session in sessions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            session.run(None, feeds[m])
            if round_:  # the first round warms up
                times[m]["wall"].append(scale * (time.perf_counter() - wall))
                times[m]["cpu"].append(scale * (time.process_time() - cpu))
    return times


def table(times: dict[str, dict[str, list[float]]]) -> str:
    r"""Markdown table: median (IQR) wall and CPU ms per 5 s, and the ratio to the first model."""
    first = next(iter(times.values()))
    reference = {clock: float(np.median(first[clock])) for clock in ("wall", "cpu")}
    lines = [
        "| model | wall ms (IQR) | CPU ms (IQR) | wall ratio | CPU ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for model, clocks in times.items():
        cells = []
        for clock in ("wall", "cpu"):
            q25, median, q75 = np.percentile(clocks[clock], [25, 50, 75])
            cells.append(f"{median:.2f} ({q75 - q25:.2f})")
        ratios = [f"{np.median(clocks[c]) / reference[c]:.2f}" for c in ("wall", "cpu")]
        lines.append(f"| {model} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders (with model.onnx) or .onnx files")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds over all models (default: 30)")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length (default: 5)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds positive.")
    for model in args.models:
        try:
            onnx_file(model)
        except FileNotFoundError as error:
            parser.error(str(error))
    before = os.getloadavg()
    times = time_models(args.models, args.rounds, args.seconds)
    print(table(times))
    after = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs; load average before {before[0]:.2f}, after {after[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
