"""One loaded model that predicts shards of cells: the body of a worker process and of a Ray actor.

A worker rebuilds a cell's inputs itself (the split through audb, the
robustness subset, the condition's in-memory perturbation), checks that
it sees the files the driver planned, and returns plain arrays. It never
writes the prediction cache: the driver does
(:class:`benchmark.executors.driver.Ledger`).
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmark import plan
from benchmark.plan import Cell, RunSpec


class CellWorker:
    r"""A model loaded once, predicting the files of cells it is handed.

    Args:
        spec: the run's settings
        model_name: the ``models.yaml`` name of the model to load

    """

    def __init__(self, spec: RunSpec, model_name: str):
        from benchmark.registry import load_model

        self.spec = spec
        self.model_name = model_name
        self.model = load_model(spec.registry[model_name], spec.registry)
        self.loaded: dict = {}
        self.inputs: dict = {}
        self.cache = plan.signal_cache(spec)

    def info(self) -> dict:
        r"""Artefact hash, rate and batch size of the loaded model, and the process id."""
        from benchmark import runner

        batch_size = self.spec.batch_size if runner.batches(self.model) else 1
        return {
            "artifact_hash": self.model.artifact_hash,
            "sampling_rate": self.model.sampling_rate,
            "batch_size": batch_size,
            "pid": os.getpid(),
        }

    def run(self, cell: Cell, positions: list[int]) -> dict:
        r"""Predict the files at ``positions`` of ``cell``'s inputs.

        Returns:
            ``values`` (A/D/V per file), ``skips`` (position → reason),
            ``seconds``, ``pid``

        Raises:
            benchmark.plan.CellFailed: this process sees other files than the driver planned

        """
        from benchmark import runner

        started = time.perf_counter()
        if cell not in self.inputs:  # a cell comes in shards: rebuild its inputs once
            evalset = plan.load_evalset(self.spec, cell.dataset, cell.split, self.loaded)
            originals, files = plan.cell_inputs(cell.condition_dict, evalset, self.spec)
            digest = plan.files_digest(originals, evalset.root, evalset.fingerprint)
            source = plan.signal_source(cell.condition_dict, evalset, self.spec, self.cache)
            self.inputs = {cell: (originals, files, digest, source)}
        originals, files, digest, source = self.inputs[cell]
        if len(originals) != cell.n_files or digest != cell.digest:
            raise plan.CellFailed(
                f"{cell}: this node sees {len(originals)} files (digest {digest}), the driver planned "
                f"{cell.n_files} (digest {cell.digest}); every node must load the same dataset version "
                "from the same audb repository (see docs/scaling.md)"
            )
        todo = files[positions]
        where = {f: i for i, f in enumerate(todo.astype("string"))}
        values = np.full((len(todo), 3), np.nan)
        skips: dict[int, str] = {}
        for _, pred, chunk_skips in runner.iter_chunks(
            self.model, todo, num_workers=self.spec.num_workers, batch_size=self.spec.batch_size, source=source
        ):
            for file, row in zip(pred.index, pred.to_numpy(), strict=True):
                values[where[file]] = row
            for file, reason in chunk_skips["reason"].items():
                skips[where[file]] = str(reason)
        return {"values": values, "skips": skips, "seconds": time.perf_counter() - started, "pid": os.getpid()}
