"""The driver's side of every executor: its progress bar, the prediction cache it alone writes, a worker's environment.

Shared by the local dispatcher (:mod:`benchmark.executors`), the worker
processes (:mod:`benchmark.executors.processes`) and the Ray executor
(:mod:`benchmark.executors.ray`). :class:`Ledger` is the bookkeeping of
the latter two: a model's cells cut into shards, each worker's answer
stored as it comes.
"""

from __future__ import annotations

import os
import types
import typing

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, prediction_cache
from benchmark.plan import Cell, Outcome, RunSpec, cache_condition

IN_FLIGHT = 2
"""Shards queued per worker, so the next one starts while the driver stores the last."""

MIN_SHARD = 64
"""Fewest files in a shard of a cell (one task)."""


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


def usable_cores() -> int:
    r"""Cores this process may run on (its CPU affinity where the system has one).

    Examples:
        >>> usable_cores() >= 1
        True

    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def shards(positions: list[int], workers: int) -> list[list[int]]:
    r"""A cell's files in contiguous shards, so every worker gets work even from one big cell.

    Examples:
        >>> [len(s) for s in shards(list(range(600)), 2)]
        [150, 150, 150, 150]
        >>> [len(s) for s in shards(list(range(40)), 2)]
        [40]

    """
    size = max(MIN_SHARD, -(-len(positions) // (IN_FLIGHT * workers)))
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def first_line(ex: BaseException) -> str:
    r"""The cause of a worker's error in one line (Ray wraps it in a traceback).

    Examples:
        >>> first_line(ValueError("bad file\nmore"))
        'ValueError: more'

    """
    cause = getattr(ex, "cause", None) or ex
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]


class Ledger:
    r"""The driver's account of one model's cells on worker processes or actors.

    Cuts every cell into :func:`shards` of the files its cache lacks
    (:attr:`jobs`: ``(cell, positions)``, in order), stores each answer in
    the cell's cache as it comes (:meth:`answered`) and keeps the model's
    :class:`~benchmark.plan.Outcome` and the progress bar. A cell the cache
    already holds is counted done at once.

    Args:
        cells: the model's cells
        where: the plan's ``cell → (evalset, originals, files)``
        spec: the run's settings
        info: what the worker that loaded the model reported
            (``artifact_hash``, ``sampling_rate``, ``batch_size``)
        workers: processes or actors that share the shards
        bar: the driver's progress bar
        on_result: called with ``(cell, answer)`` after each stored answer

    """

    def __init__(
        self,
        cells: typing.Sequence[Cell],
        where: dict,
        spec: RunSpec,
        info: dict,
        workers: int,
        bar: Progress,
        on_result: typing.Callable[[Cell, dict], None] | None = None,
    ):
        self.outcome, self.bar, self.on_result = Outcome(), bar, on_result
        self.outcome.loaded(info["artifact_hash"], info["sampling_rate"], info["batch_size"])
        self.jobs: list[tuple[Cell, list[int]]] = []
        self._caches, self._left, self._todo = {}, {}, {}
        for cell in cells:
            evalset, _, files = where[cell]
            condition = cache_condition(cell.condition_dict, spec)
            cache = cache_of(cell.model, info["artifact_hash"], evalset, condition, info["batch_size"])
            positions = todo_positions(cache, files)
            parts = shards(positions, workers) if positions else []
            self.jobs += [(cell, part) for part in parts]
            self._caches[cell] = (cache, files)
            self._left[cell], self._todo[cell] = len(parts), len(positions)
            if not parts:
                self.outcome.add(cell, 0, 0.0)
                bar.cell(cell.n_files)

    def answered(self, cell: Cell, positions: list[int], answer: dict | None, error: BaseException | None) -> None:
        r"""Store a worker's ``answer`` for ``positions`` of ``cell``, or record its ``error``."""
        self._left[cell] -= 1
        if error is not None:  # retries exhausted, or the cell raised: report it, go on
            self.outcome.add(cell, 0, 0.0, first_line(error))
        else:
            cache, files = self._caches[cell]
            store(cache, files[positions], answer["values"], answer["skips"])
            self.outcome.add(cell, len(positions), answer["seconds"])
            if self.on_result is not None:
                self.on_result(cell, answer)
        self.bar.files(len(positions))
        if not self._left[cell]:
            self.bar.cell(cell.n_files - self._todo[cell])  # the files the cache already held


def unloadable(cells: typing.Sequence[Cell], bar: Progress, error: BaseException) -> Outcome:
    r"""The outcome of a model no worker could load: every cell of it fails with that error."""
    outcome = Outcome()
    for cell in cells:
        outcome.add(cell, 0, 0.0, f"model could not be loaded on a worker: {first_line(error)}")
        bar.cell(cell.n_files)
    return outcome
