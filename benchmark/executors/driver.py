"""The driver's side of every executor: its progress bar, the prediction cache it alone writes, a worker's environment.

Shared by the local dispatcher (:mod:`benchmark.executors`) and the Ray
executor (:mod:`benchmark.executors.ray`).
"""

from __future__ import annotations

import os
import types
import typing

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, prediction_cache
from benchmark.plan import Cell


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
