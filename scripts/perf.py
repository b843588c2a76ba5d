"""Throughput of the executors on one split: ``python scripts/perf.py`` (``nox -s perf``).

A developer benchmark, not a test and not a user command: in one run, on
the same files and cores, it prints files/s of

* raw onnxruntime (read, mix down, resample, ``InferenceSession.run``,
  the same threads) against the local executor (the runner, cache writes
  included), at each thread count;
* the local executor's worker processes (its default, one thread each)
  against raw onnxruntime at as many threads;
* the Ray executor with one replica against the local executor at one
  thread, and two replicas against one (one CPU each).

The figures of worker processes and of Ray are steady state: the processes
or actors are started and have loaded the model before the clock starts
(their start-up is printed apart).
Predictions go to a scratch cache, never to the user's.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python scripts/perf.py [--model wav2small] [--threads 1 2] [--processes 2] [--replicas 1 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import platform
import sys
import tempfile
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOALS = {
    "local / raw onnxruntime": 0.9,
    "local processes / raw onnxruntime": 0.95,
    "ray 1 replica / local": 0.9,
    "ray 2 replicas / ray 1": 1.7,
}
"""The executors' goals, as ratios of files/s: the local executor within 10 % of raw onnxruntime at equal
threads and its worker processes within 5 % at equal cores, the Ray executor within 10 % of the local one
at equal cores, and two Ray replicas 1.7 times one."""


def raw_onnxruntime(onnx_path: str, files: typing.Sequence[str], threads: int, sampling_rate: int = 16000) -> float:
    r"""Seconds for onnxruntime alone over ``files`` (decoding and resampling included)."""
    import audiofile
    import audresample
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as audonnx's default: threads go to files
    session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def one(file: str):
        signal, rate = audiofile.read(file, always_2d=True)
        signal = signal.mean(axis=0, keepdims=True).astype(np.float32)
        if rate != sampling_rate:
            signal = audresample.resample(signal, rate, sampling_rate)
        return session.run(None, {name: signal})

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - started


def local(model, evalset, threads: int) -> float:
    r"""Seconds for the local executor's compute path (the runner) over the split, cache writes included."""
    from benchmark import runner

    started = time.perf_counter()
    runner.predict(model, evalset, num_workers=threads, progress=False, recompute=True)
    return time.perf_counter() - started


def ray_seconds(ray, spec, cells, where, replicas: int) -> tuple[float, float]:
    r"""Start-up and steady-state seconds of the Ray executor with ``replicas`` one-CPU actors."""
    from benchmark.executors import ray as ray_executor
    from benchmark.executors.driver import Progress

    started = time.perf_counter()
    actors = ray_executor.start_actors(ray, spec, cells[0].model, replicas, 0.0)
    ray.get([a.info.remote() for a in actors])
    startup = time.perf_counter() - started
    try:
        _clear()  # the cells must be computed, not served by the scratch cache
        started = time.perf_counter()
        outcome = ray_executor.run_model(ray, actors, cells, where, Progress(cells, False), spec=spec)
        seconds = time.perf_counter() - started
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    if outcome.failed:
        raise RuntimeError(f"Ray cells failed: {outcome.failed}")
    return startup, seconds


def processes_seconds(spec, cells, where, processes: int) -> tuple[float, float]:
    r"""Start-up and steady-state seconds of the local executor's ``processes`` worker processes.

    The first pass over the cells starts the processes and loads the model in each; the second,
    from an empty scratch cache, is the steady state.
    """
    from benchmark.executors import processes as worker_processes
    from benchmark.executors.driver import Progress

    pool = worker_processes.start_pool(processes, spec.env)  # the workers read the demo data from the user's cache
    try:
        passes = []
        for _ in range(2):
            _clear()  # the cells must be computed, not served by the scratch cache
            started = time.perf_counter()
            outcome = worker_processes.run_model(
                pool, processes, cells[0].model, cells, where, spec, Progress(cells, False)
            )
            passes.append(time.perf_counter() - started)
            if outcome.failed:
                raise RuntimeError(f"cells failed on worker processes: {outcome.failed}")
    finally:
        pool.shutdown()
    return passes[0] - passes[1], passes[1]


def _clear() -> None:
    import shutil

    from benchmark.paths import cache_root

    shutil.rmtree(cache_root() / "predictions", ignore_errors=True)


def run(
    model_name: str = "wav2small",
    dataset: str = "msppodcast",
    split: str = "test-1",
    threads: typing.Sequence[int] = (1, 2),
    replicas: typing.Sequence[int] = (1, 2),
    repeats: int = 3,
    log: typing.Callable[[str], None] = print,
    processes: typing.Sequence[int] = (2,),
) -> pd.DataFrame:
    r"""Measure and print files/s, the median of ``repeats`` interleaved runs; one row per measurement.

    The runs of one repeat follow each other (raw, local, raw, local, ...),
    so a change of the machine's load between repeats moves all of them.
    """
    if repeats < 1:
        raise ValueError(f"--repeats {repeats}: use 1 or more.")
    from benchmark.data import datasets as dsets
    from benchmark.executors.driver import worker_env
    from benchmark.models.onnx import resolve
    from benchmark.paths import cache_root
    from benchmark.plan import RunSpec, plan
    from benchmark.registry import Registry, load_model

    registry = Registry.from_file()
    entry = registry[model_name]
    if entry.kind != "audonnx":
        raise ValueError(f"perf compares against raw onnxruntime: '{model_name}' is not an audonnx model.")
    spec = RunSpec(registry, dsets.load_registry(), num_workers=1)
    cells, where = plan([model_name], spec, datasets=[dataset], splits=[split], log=log)
    evalset = where[cells[0]][0]
    files = list(evalset.files)
    onnx_path = str(resolve(entry)[0] / "model.onnx")
    model = load_model(entry, registry)
    # the workers read the demo data from the user's cache, not from the scratch cache of the timed runs
    spec.env = {**worker_env(), "SER_BENCHMARK_CACHE": str(cache_root())}
    rows = []

    def record(what: str, threads_: int, seconds: float, repeat: int, **extra) -> None:
        rows.append(
            {
                "what": what,
                "threads": threads_,
                "repeat": repeat,
                "files": len(files),
                "seconds": round(seconds, 2),
                "files_per_s": round(len(files) / seconds, 1),
                **extra,
            }
        )
        log(f"  [{repeat}] {what:<28} {threads_} thread(s): {len(files) / seconds:7.1f} files/s ({seconds:.1f} s)")

    log(f"perf: {model_name} on {evalset.audb_name}/{split}, {len(files)} files; {machine()}")
    raw_onnxruntime(onnx_path, files, max(threads))  # warm the page cache: every run reads from memory
    with scratch_cache():  # predictions of the timed runs go here
        for repeat in range(1, repeats + 1):
            for n in threads:
                record("raw onnxruntime", n, raw_onnxruntime(onnx_path, files, n), repeat)
                record("local executor", n, local(model, evalset, n), repeat)
            for n in processes:
                if n not in threads:
                    record("raw onnxruntime", n, raw_onnxruntime(onnx_path, files, n), repeat)
                startup, seconds = processes_seconds(spec, cells, where, n)
                record(f"local executor, {n} processes", n, seconds, repeat, startup_s=round(startup, 1))
        ray_runs(spec, cells, where, replicas, repeats, record)
    df = pd.DataFrame(rows)
    summary = medians(df)
    log(f"median of {repeats} run(s):")
    log(summary.to_string(index=False))
    log(ratios(summary).to_string(index=False))
    log(f"after: {machine()}")
    return df


@contextlib.contextmanager
def scratch_cache() -> typing.Iterator[str]:
    r"""This process's prediction cache in a scratch folder while the block runs; the user's is restored after.

    Only this script's process sees the change; the split was loaded and the
    workers' environment (:func:`benchmark.executors.driver.worker_env`) taken before.
    """
    scratch = tempfile.TemporaryDirectory(prefix="ser-benchmark-perf-")
    saved = os.environ.get("SER_BENCHMARK_CACHE")
    os.environ["SER_BENCHMARK_CACHE"] = scratch.name
    try:
        yield scratch.name
    finally:
        if saved is None:
            os.environ.pop("SER_BENCHMARK_CACHE", None)
        else:
            os.environ["SER_BENCHMARK_CACHE"] = saved
        scratch.cleanup()


def ray_runs(spec, cells, where, replicas: typing.Sequence[int], repeats: int, record: typing.Callable) -> None:
    r"""Time the Ray executor ``repeats`` times at each count of ``replicas`` on a local cluster of one-CPU actors."""
    from benchmark.executors.ray import import_ray

    ray = import_ray()
    ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        num_cpus=max(replicas),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        for repeat in range(1, repeats + 1):
            for n in replicas:
                startup, seconds = ray_seconds(ray, spec, cells, where, n)
                record(f"ray executor, {n} replica(s)", n, seconds, repeat, startup_s=round(startup, 1))
    finally:
        if ray.is_initialized():
            ray.shutdown()


def medians(df: pd.DataFrame) -> pd.DataFrame:
    r"""Median files/s (and its range) of each measurement over the repeats.

    Examples:
        >>> df = pd.DataFrame({"what": ["local executor"] * 3, "threads": [1] * 3, "files_per_s": [9.0, 11.0, 10.0]})
        >>> medians(df).to_dict("records")
        [{'what': 'local executor', 'threads': 1, 'files_per_s': 10.0, 'min': 9.0, 'max': 11.0, 'runs': 3}]

    """
    grouped = df.groupby(["what", "threads"], sort=False)["files_per_s"]
    out = grouped.agg(files_per_s="median", min="min", max="max", runs="count").reset_index()
    return out.astype({"runs": int})


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    r"""The ratios of files/s that :data:`GOALS` sets, each with its goal.

    Examples:
        >>> df = pd.DataFrame({"what": ["raw onnxruntime", "local executor", "ray executor, 1 replica(s)"],
        ...                    "threads": [1, 1, 1], "files_per_s": [10.0, 9.5, 9.0]})
        >>> ratios(df)[["ratio", "value"]].to_dict("list")
        {'ratio': ['local / raw onnxruntime (1 thread)', 'ray 1 replica / local'], 'value': [0.95, 0.947]}

    """
    rate = {(r.what, r.threads): r.files_per_s for r in df.itertuples()}
    out = []
    for n in sorted({t for w, t in rate if w == "local executor"}):
        if ("raw onnxruntime", n) in rate:
            out.append(
                (
                    f"local / raw onnxruntime ({n} thread{'s' if n > 1 else ''})",
                    rate[("local executor", n)] / rate[("raw onnxruntime", n)],
                    GOALS["local / raw onnxruntime"],
                )
            )
    for what, n in rate:
        if what.endswith(" processes") and ("raw onnxruntime", n) in rate:
            out.append(
                (
                    f"local processes / raw onnxruntime ({n})",
                    rate[(what, n)] / rate[("raw onnxruntime", n)],
                    GOALS["local processes / raw onnxruntime"],
                )
            )
    one = rate.get(("ray executor, 1 replica(s)", 1))
    if one and ("local executor", 1) in rate:
        out.append(("ray 1 replica / local", one / rate[("local executor", 1)], GOALS["ray 1 replica / local"]))
    if one and ("ray executor, 2 replica(s)", 2) in rate:
        out.append(
            ("ray 2 replicas / ray 1", rate[("ray executor, 2 replica(s)", 2)] / one, GOALS["ray 2 replicas / ray 1"])
        )
    return pd.DataFrame(
        [(r, round(v, 3), g, "yes" if v >= g else "no") for r, v, g in out], columns=["ratio", "value", "goal", "met"]
    )


def machine() -> str:
    r"""CPU model, cores and load average: what the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fp:
            model = next((line.split(":", 1)[1].strip() for line in fp if line.startswith("model name")), model)
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{model}, {os.cpu_count()} cores, load average {load}"


def positive_int(text: str) -> int:
    r"""An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"give 1 or more, not {value}")
    return value


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""``python scripts/perf.py [--model NAME] [--dataset NAME] [--split SPLIT] [--threads N ...] ...``."""
    parser = argparse.ArgumentParser(description="files/s of the executors against raw onnxruntime (docs/scaling.md)")
    parser.add_argument("--model", default="wav2small", help="an audonnx model (default: wav2small)")
    parser.add_argument("--dataset", default="msppodcast", help="dataset (default: msppodcast, the demo replica)")
    parser.add_argument("--split", default="test-1", help="split (default: test-1)")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument(
        "--processes",
        type=positive_int,
        nargs="+",
        default=[2],
        help="worker processes of the local executor (default: 2)",
    )
    parser.add_argument("--replicas", type=positive_int, nargs="+", default=[1, 2], help="Ray replicas (default: 1 2)")
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="runs of each measurement; the median is shown (default: 3)"
    )
    args = parser.parse_args(argv)
    run(
        args.model,
        args.dataset,
        args.split,
        threads=args.threads,
        replicas=args.replicas,
        repeats=args.repeats,
        processes=args.processes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
