"""Executors: how a run's cells are predicted.

``local`` (the default) predicts the cells in this process, model by
model, each model loaded once. ``ray`` hands them to Ray actors that each
hold one loaded model replica (:mod:`benchmark.executors.ray`). Either
way the worker that holds the model perturbs a condition's signals in
memory (:func:`benchmark.plan.signal_source`), the driver alone writes the
prediction cache, and the analyses then score the stored predictions
(:func:`benchmark.suite.score_model`).
"""

from __future__ import annotations

import os
import time
import types
import typing

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, prediction_cache, runner
from benchmark.plan import Cell, Outcome, RunSpec, cache_condition, plan, signal_cache, signal_source

EXECUTORS = ("local", "ray")


class ClusterUnreachableError(ConnectionError):
    r"""The Ray cluster named by ``--address`` does not answer; the message names it and what to check."""


class Progress:
    r"""The driver's one progress bar: files done, files/s, cells done."""

    def __init__(self, cells: typing.Sequence[Cell], enabled: bool = True):
        from tqdm import tqdm

        self.n_cells, self.done_cells = len(cells), 0
        self.bar = tqdm(
            total=sum(c.n_files for c in cells),
            unit="file",
            desc="predict",
            leave=False,
            dynamic_ncols=True,
            disable=not enabled or not cells,
        )
        self.bar.set_postfix_str(f"cells 0/{self.n_cells}")

    def files(self, n: int) -> None:
        self.bar.update(n)

    def cell(self, files_left: int = 0) -> None:
        r"""A cell finished; ``files_left``: its files not yet counted (served by the cache)."""
        self.done_cells += 1
        if files_left:
            self.bar.update(files_left)
        self.bar.set_postfix_str(f"cells {self.done_cells}/{self.n_cells}")

    def close(self) -> None:
        self.bar.close()


def predict_cells(
    models: typing.Sequence[str],
    spec: RunSpec,
    *,
    executor: str = "local",
    datasets: typing.Sequence[str] | None = None,
    splits: typing.Sequence[str] | None = None,
    tests: typing.Sequence[str] = (),
    address: str | None = None,
    address_timeout: float = 30.0,
    replicas: int = 1,
    gpus_per_replica: float | None = None,
    progress: bool = True,
    log: typing.Callable[[str], None] = print,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> dict[str, Outcome]:
    r"""Plan the cells of ``models`` and predict them into the cache (:func:`execute`).

    Args:
        models: ``models.yaml`` names
        spec: registries, data source, seed and options of the run
        executor: ``'local'`` or ``'ray'``
        datasets: dataset names (default: all)
        splits: split names (default: every evaluation split)
        tests: test families (robustness adds a cell per condition)
        address: Ray cluster (``None``: start one on this machine;
            ``'auto'``, ``'HOST:PORT'`` or ``'ray://HOST:PORT'``: join one)
        address_timeout: seconds to wait for the cluster at ``address``
            (:class:`ClusterUnreachableError` after that)
        replicas: model replicas (Ray actors) per model
        gpus_per_replica: GPUs per replica, fractional allowed
            (default: 1 for entries with ``params.device`` on CUDA, else 0)
        progress: show the driver's progress bar
        log: where messages go
        on_result: called in the driver after each cell (``ray`` only)

    Returns:
        model name → :class:`benchmark.plan.Outcome`, for
        :func:`benchmark.suite.run_suite`

    """
    check_executor(executor, replicas, address, address_timeout)
    cells, where = plan(models, spec, datasets=datasets, splits=splits, tests=tests, log=log)
    return execute(
        cells,
        where,
        spec,
        executor=executor,
        address=address,
        replicas=replicas,
        gpus_per_replica=gpus_per_replica,
        progress=progress,
        log=log,
        on_result=on_result,
    )


def check_executor(executor: str, replicas: int = 1, address: str | None = None, address_timeout: float = 30.0) -> None:
    r"""Refuse an unknown executor, a replica count below 1, a missing Ray or an unreachable cluster (before any work)."""
    if executor not in EXECUTORS:
        raise ValueError(f"Unknown executor '{executor}'; use one of {', '.join(EXECUTORS)}.")
    if replicas < 1:
        raise ValueError(f"--replicas must be at least 1, got {replicas}.")
    if executor == "ray":  # before the plan, which can take minutes: a missing Ray or cluster fails at once
        from benchmark.executors import ray as ray_executor

        ray_executor.import_ray()
        if address:
            ray_executor.check_address(address, address_timeout)


def shared_conditions(cells: typing.Sequence[Cell]) -> bool:
    r"""Whether two models of ``cells`` predict the same perturbed signals (a signal cache pays).

    Examples:
        >>> shared_conditions([Cell("a", "d", "test", '{"x": 1}', 5), Cell("b", "d", "test", '{"x": 1}', 5)])
        True
        >>> shared_conditions([Cell("a", "d", "test", '{"x": 1}', 5), Cell("a", "d", "test", "", 5)])
        False

    """
    seen: dict = {}
    for cell in cells:
        if cell.condition and cell.n_files:
            seen.setdefault((cell.dataset, cell.split, cell.condition), set()).add(cell.model)
    return any(len(m) > 1 for m in seen.values())


def execute(
    cells: typing.Sequence[Cell],
    where: dict,
    spec: RunSpec,
    *,
    executor: str = "local",
    address: str | None = None,
    replicas: int = 1,
    gpus_per_replica: float | None = None,
    progress: bool = True,
    log: typing.Callable[[str], None] = print,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> dict[str, Outcome]:
    r"""Predict planned ``cells`` into the cache (arguments as :func:`predict_cells`).

    The perturbed-signal store (:attr:`RunSpec.signal_cache_mb`) is kept
    only where two models share a condition; for one model it is off.
    """
    check_executor(executor, replicas)
    if not shared_conditions(cells):
        spec.signal_cache_mb = 0.0
    bar = Progress(cells, progress)
    try:
        if executor == "local":
            return run_local(cells, where, spec, bar)
        from benchmark.executors import ray as ray_executor

        return ray_executor.run(
            cells,
            where,
            spec,
            bar,
            address=address,
            replicas=replicas,
            gpus_per_replica=gpus_per_replica,
            log=log,
            on_result=on_result,
        )
    finally:
        bar.close()


def run_local(cells: typing.Sequence[Cell], where: dict, spec: RunSpec, bar: Progress) -> dict[str, Outcome]:
    r"""Predict ``cells`` in this process: each model loaded once, the runner's own threads."""
    from benchmark.registry import load_model

    outcomes: dict[str, Outcome] = {}
    sources: dict = {}  # (dataset, split, condition) → its signal source, shared by the models
    cache = signal_cache(spec)
    model = None
    for cell in cells:
        outcome = outcomes.setdefault(cell.model, Outcome())
        if model is None or model.name != cell.model:
            model = load_model(spec.registry[cell.model], spec.registry)
            outcome.loaded(model.artifact_hash, model.sampling_rate, spec.batch_size if runner.batches(model) else 1)
        evalset, _, files = where[cell]
        started, computed, error = time.perf_counter(), 0, None
        try:
            key = (cell.dataset, cell.split, cell.condition)
            if key not in sources:
                sources[key] = signal_source(cell.condition_dict, evalset, spec, cache)
            pred, _ = runner.predict(
                model,
                evalset,
                files,
                condition=cache_condition(cell.condition_dict, spec),
                num_workers=spec.num_workers,
                progress=False,
                on_progress=bar.files,
                batch_size=spec.batch_size,
                source=sources[key],
            )
            computed = int(pred.attrs.get("computed", 0))
        except Exception as ex:  # one failing cell must not stop the others
            error = f"{type(ex).__name__}: {ex}"
        outcome.add(cell, computed, time.perf_counter() - started, error)
        bar.cell(cell.n_files - computed)
    return outcomes


def cache_of(
    model_name: str, artifact_hash: str, evalset, condition: dict | None, batch_size: int = 1
) -> prediction_cache.PredictionCache:
    r"""The prediction cache of a cell, for a driver that does not hold the model.

    ``batch_size``: files per ``predict_batch`` call, 1 for a model that does not batch.
    """
    stub = types.SimpleNamespace(name=model_name, artifact_hash=artifact_hash)
    return prediction_cache.PredictionCache(stub, evalset, condition, batch_size)


def todo_positions(cache: prediction_cache.PredictionCache, files: pd.Index) -> list[int]:
    r"""Positions in ``files`` that the cache holds neither a prediction nor a skip for."""
    pred, skips = cache.load()
    done = pred.index.union(skips.index)
    return np.flatnonzero(~pd.Index(files).astype("string").isin(done)).tolist()


def store(cache: prediction_cache.PredictionCache, files: pd.Index, values: np.ndarray, skips: dict[int, str]) -> None:
    r"""Add a worker's answer for ``files`` to the cache (the driver is its only writer).

    Args:
        cache: the cell's cache
        files: the driver's paths of the computed files
        values: A/D/V per file, shape ``(len(files), 3)``
        skips: position in ``files`` → reason

    """
    files = pd.Index(files, name="file").astype("string")
    scored = np.array([i not in skips for i in range(len(files))], dtype=bool)
    new = pd.DataFrame(
        np.asarray(values, dtype="float64").reshape(len(files), len(DIMENSIONS))[scored],
        index=files[scored],
        columns=list(DIMENSIONS),
    )
    new_skips = pd.DataFrame(
        {"reason": pd.Series([skips[i] for i in sorted(skips)], dtype="string")},
        index=pd.Index([files[i] for i in sorted(skips)], name="file", dtype="string"),
    )
    pred, old_skips = cache.load()
    pred = pd.concat([pred, new]) if len(pred) else new
    old_skips = pd.concat([old_skips, new_skips]) if len(old_skips) else new_skips
    cache.save(pred, old_skips)


def worker_env() -> dict[str, str]:
    r"""Environment a worker process needs to see the driver's caches and this package."""
    from benchmark.paths import PROJECT_ROOT

    env = {
        k: os.environ[k]
        for k in (
            "SER_BENCHMARK_CACHE",
            "AUDB_CACHE_ROOT",
            "AUDB_SHARED_CACHE_ROOT",
            "OMP_NUM_THREADS",
            "HF_HUB_OFFLINE",
        )
        if k in os.environ
    }
    # A source checkout (not an installed wheel) must win over any other install on the worker's path.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env
