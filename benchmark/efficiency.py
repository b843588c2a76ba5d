"""Efficiency of a model: latency on one CPU thread, memory, size.

For an audonnx model folder: median milliseconds to process a 5 s clip
on **one** onnxruntime thread, its interquartile range, the real-time
factor (``× real time = 5000 / ms``), the peak resident memory of a
fresh process that loads the model and runs one clip, the number of
elements in the ONNX initializers and the ONNX file size.

For any other :class:`benchmark.models.base.Predictor` (baselines,
torch models): the same timing of the predictor call with one torch
thread; the ONNX fields stay empty.

A teacher whose weights are not available here but whose registry
entry has a ``config`` (e.g. w2v2-L-robust-12) is timed as its
architecture with seeded random weights: speed does not depend on the
weight values. Such a row says so (``weights: random``) and carries the
architecture's hash, never the trained model's.

Peak RSS is that of the whole child process (interpreter, numpy and
the runtime included), read in the child from ``/proc/self/status``
(``VmHWM``). ``resource.getrusage`` is only the fallback off Linux: on
Linux its ``ru_maxrss`` survives fork + exec and reports the parent's
peak when the parent was larger. Timings run on the
calling machine: compare rows only within the same ``cpu``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLING_RATE = 16000
COLUMNS = (
    "model",
    "model_sha256",
    "parameters",
    "onnx_bytes",
    "ms_per_5s",
    "ms_per_5s_iqr",
    "xrt",
    "peak_rss_mb",
    "threads",
    "repeats",
    "runtime",
    "cpu",
    "weights",
)
"""Columns of the result table ``efficiency``, in order."""

_CHILD = r"""
import json, os, resource, sys
spec = json.loads(sys.argv[1])
import numpy as np
signal = np.random.default_rng(0).standard_normal(int(spec["seconds"] * 16000)).astype(np.float32) * 0.1
if "folder" in spec:
    import audonnx, onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = audonnx.load(spec["folder"], session_options=options)
    model(signal[np.newaxis], 16000)
else:
    from benchmark.registry import Registry, load_model
    predictor = load_model(spec["model"], Registry.from_file(spec["registry"]))
    if "torch" in sys.modules:  # only torch-based predictors pay for importing it
        sys.modules["torch"].set_num_threads(1)
    predictor(signal, 16000)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    # Linux carries ru_maxrss over fork + exec, so a child of a big parent
    # reports the parent's size; VmHWM belongs to the child's own memory map
    with open("/proc/self/status") as fp:
        peak_kb = next(int(line.split()[1]) for line in fp if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    if sys.platform == "darwin":  # bytes on macOS
        peak_kb = peak_kb / 1024
print(json.dumps({"peak_rss_kb": peak_kb}))
"""


def cpu_name() -> str:
    r"""CPU model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def noise_clip(seconds: float, seed: int = 0) -> np.ndarray:
    r"""Reproducible Gaussian noise clip at 16 kHz (speech content does not change the cost)."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32)


def onnx_stats(folder: str | os.PathLike) -> dict:
    r"""Weight elements and bytes of the ``.onnx`` files in a model folder.

    Counts the elements of every initializer and of every ``Constant``
    node: the exporter stores the frozen front end (DFT and mel
    matrices) as constants, and folds BatchNorm into the convolutions,
    so the figure differs from :func:`benchmark.students.count_parameters`.
    In an int8 model it also includes quantisation scales and zero points.
    """
    import onnx

    parameters = 0
    size = 0
    for path in sorted(Path(folder).glob("*.onnx")):
        size += path.stat().st_size
        graph = onnx.load(str(path)).graph
        tensors = list(graph.initializer) + [
            attribute.t
            for node in graph.node
            if node.op_type == "Constant"
            for attribute in node.attribute
            if attribute.name == "value"
        ]
        parameters += sum(int(np.prod(t.dims, dtype=np.int64)) for t in tensors)
    return {"parameters": parameters, "onnx_bytes": size}


def peak_rss_mb(spec: dict, timeout: float = 600.0) -> float:
    r"""Peak RSS in MB of a fresh Python process that loads and runs a model once.

    Args:
        spec: ``{'folder': PATH}`` for an audonnx folder, or
            ``{'registry': PATH, 'model': NAME}`` for a registry entry;
            plus ``'seconds'``, the clip length
        timeout: seconds before the child is killed

    """
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Memory probe failed for {spec}:\n{result.stderr[-2000:]}")
    kb = json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_kb"]
    return kb / 1024.0


def _predictor_runtime() -> str:
    r"""Python and the inference libraries a predictor has loaded, with versions."""
    parts = [f"python {platform.python_version()}"]
    for name in ("torch", "onnxruntime"):
        module = sys.modules.get(name)
        if module is not None:
            parts.append(f"{name} {module.__version__}")
    return ", ".join(parts)


def _time(call: typing.Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    r"""Wall-clock milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000.0 * (time.perf_counter() - start))
    return times


def _summary(times: list[float], seconds: float) -> dict:
    q25, median, q75 = np.percentile(times, [25, 50, 75])
    # normalised to a 5 s clip, whatever length was timed
    scale = 5.0 / seconds
    return {
        "ms_per_5s": float(median) * scale,
        "ms_per_5s_iqr": float(q75 - q25) * scale,
        "xrt": 1000.0 * seconds / float(median),
    }


def measure(
    model_folder_or_predictor,
    *,
    repeats: int = 20,
    seconds: float = 5.0,
    child: dict | None = None,
) -> dict:
    r"""Efficiency figures of an audonnx model folder or a predictor.

    Args:
        model_folder_or_predictor: folder with ``model.yaml`` and ``model.onnx``,
            or a :class:`benchmark.models.base.Predictor`
        repeats: timed runs (after 2 untimed warm-up runs)
        seconds: clip length; timings are reported per 5 s of audio
        child: how a fresh process can rebuild a predictor for the memory
            probe, ``{'registry': PATH, 'model': NAME}``; without it a
            predictor's ``peak_rss_mb`` is NaN (folders need none)

    Returns:
        dict with the value columns of :data:`COLUMNS`
        (all but ``model`` and ``model_sha256``)

    """
    from benchmark.models.base import Predictor

    signal = noise_clip(seconds)
    if isinstance(model_folder_or_predictor, Predictor):
        predictor = model_folder_or_predictor
        # torch is set to one thread only if the predictor uses it: a numpy
        # baseline should not pay for importing it
        torch = sys.modules.get("torch")
        threads_before = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(1)
        try:
            times = _time(lambda: predictor(signal, SAMPLING_RATE), repeats)
        finally:
            if torch is not None:
                torch.set_num_threads(threads_before)
        runtime = _predictor_runtime()
        stats = {"parameters": np.nan, "onnx_bytes": np.nan}
        rss = peak_rss_mb({**child, "seconds": seconds}) if child else np.nan
    else:
        import audonnx
        import onnxruntime

        folder = str(model_folder_or_predictor)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        model = audonnx.load(folder, session_options=options)
        times = _time(lambda: model(signal[np.newaxis], SAMPLING_RATE), repeats)
        stats = onnx_stats(folder)
        rss = peak_rss_mb({"folder": folder, "seconds": seconds})
        runtime = f"onnxruntime {onnxruntime.__version__}"
    return {
        **stats,
        **_summary(times, seconds),
        "peak_rss_mb": rss,
        "threads": 1,
        "repeats": repeats,
        "runtime": runtime,
        "cpu": cpu_name(),
    }


def _onnx_path(entry) -> Path | None:
    r"""Local artefact (folder or file) of an audonnx registry entry, if it has one."""
    if entry.kind != "audonnx" or "path" not in entry.source:
        return None
    return entry.resolve(entry.source["path"])


def run(model_names: typing.Iterable[str], registry=None, *, repeats: int = 20, seconds: float = 5.0) -> pd.DataFrame:
    r"""Measure registered models and upsert the result table ``efficiency``.

    audonnx entries with a local ``path`` are timed as ONNX folders;
    every other entry is loaded with :func:`benchmark.registry.load_model`
    and its predictor call is timed.

    Args:
        model_names: registry names
        registry: :class:`benchmark.registry.Registry`, default the project's ``models.yaml``
        repeats: timed runs per model
        seconds: clip length

    Returns:
        the rows written, one per model, columns :data:`COLUMNS`

    """
    from benchmark.hashing import artifact_sha256
    from benchmark.models.download import WeightsUnavailableError
    from benchmark.registry import Registry, load_model
    from benchmark.results import write_rows

    registry = registry if registry is not None else Registry.from_file()
    rows = []
    for name in model_names:
        entry = registry[name]
        path = _onnx_path(entry)
        if path is not None:
            figures = measure(path if path.is_dir() else path.parent, repeats=repeats, seconds=seconds)
            # the registry's checksum of the same path, so rows join with the other tables
            sha = artifact_sha256(path, entry.kind)
        else:
            weights = ""
            try:
                predictor = load_model(entry, registry)
                child = {"registry": str(registry.path), "model": name} if registry.path else None
            except WeightsUnavailableError:
                if not entry.config:
                    raise
                predictor, child, weights = architecture(entry), None, "random"
            figures = measure(predictor, repeats=repeats, seconds=seconds, child=child)
            figures["weights"] = weights
            if weights == "random":
                figures["parameters"] = sum(p.numel() for p in predictor.model.parameters())
            sha = predictor.artifact_hash
        rows.append({"model": name, "model_sha256": sha, **figures})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if len(df):
        write_rows("efficiency", df)
    return df


def architecture(entry):
    r"""A predictor of ``entry``'s architecture with seeded random weights, built from its registry ``config``."""
    from benchmark.registry import ARCHITECTURE_KINDS

    if entry.kind not in ARCHITECTURE_KINDS:
        raise ValueError(f"Model '{entry.name}': kind '{entry.kind}' cannot be built from a config.")
    from benchmark.models import w2v2

    return w2v2.from_config(entry)
