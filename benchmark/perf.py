"""Throughput of the executors on one split: ``python -m benchmark perf`` (``nox -s perf``).

A benchmark, not a test: in one run, on the same files and cores, it
prints files/s of

* raw onnxruntime (read, mix down, resample, ``InferenceSession.run``,
  the same threads) against the local executor (the runner, cache writes
  included), at each thread count;
* the Ray executor with one replica against the local executor at one
  thread, and two replicas against one (one CPU each).

Ray's figures are steady state: the actors are started and have loaded
the model before the clock starts (their start-up is printed apart).
Predictions go to a scratch cache, never to the user's.
"""

from __future__ import annotations

import concurrent.futures
import os
import platform
import tempfile
import time
import typing

import numpy as np
import pandas as pd

GOALS = {"local / raw onnxruntime": 0.9, "ray 1 replica / local": 0.9, "ray 2 replicas / ray 1": 1.7}
"""Goals of issue 27 (ratios of files/s)."""


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
    from benchmark.executors import Progress
    from benchmark.executors import ray as ray_executor

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
) -> pd.DataFrame:
    r"""Measure and print files/s, the median of ``repeats`` interleaved runs; one row per measurement.

    The runs of one repeat follow each other (raw, local, raw, local, ...),
    so a change of the machine's load between repeats moves all of them.
    """
    if repeats < 1:
        raise ValueError(f"--repeats {repeats}: use 1 or more.")
    from benchmark.data import datasets as dsets
    from benchmark.executors import worker_env
    from benchmark.executors.ray import import_ray
    from benchmark.models.onnx import resolve
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
    spec.env = worker_env()  # the workers read the demo data from the user's cache
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
    scratch = tempfile.TemporaryDirectory(prefix="ser-benchmark-perf-")
    saved = os.environ.get("SER_BENCHMARK_CACHE")
    os.environ["SER_BENCHMARK_CACHE"] = scratch.name  # predictions of the timed runs go here
    ray = None
    try:
        for repeat in range(1, repeats + 1):
            for n in threads:
                record("raw onnxruntime", n, raw_onnxruntime(onnx_path, files, n), repeat)
                record("local executor", n, local(model, evalset, n), repeat)
        ray = import_ray()
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            num_cpus=max(replicas),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        for repeat in range(1, repeats + 1):
            for n in replicas:
                startup, seconds = ray_seconds(ray, spec, cells, where, n)
                record(f"ray executor, {n} replica(s)", n, seconds, repeat, startup_s=round(startup, 1))
    finally:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        if saved is None:
            os.environ.pop("SER_BENCHMARK_CACHE", None)
        else:
            os.environ["SER_BENCHMARK_CACHE"] = saved
        scratch.cleanup()
    df = pd.DataFrame(rows)
    summary = medians(df)
    log(f"median of {repeats} run(s):")
    log(summary.to_string(index=False))
    log(ratios(summary).to_string(index=False))
    log(f"after: {machine()}")
    return df


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
    r"""The issue's ratios of files/s, each with its goal.

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
