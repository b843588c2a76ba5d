"""The local executor on several cores: worker processes, each with its own copy of the model.

Threads share one interpreter, and much of a robustness cell's work
(perturbing a signal, framing it, building audinterface's index) holds
Python's global lock: on 2 cores, 2 threads kept the CPUs 78 % busy.
Worker processes do not share that lock. Each is started fresh
(``spawn``: a forked onnxruntime or torch state is not safe), loads the
model of the shard it is handed once, rebuilds the cell's inputs itself
(:class:`~benchmark.executors.worker.CellWorker`) and returns plain
arrays; the driver alone writes the prediction cache
(:class:`~benchmark.executors.driver.Ledger`), so the cache and the
result tables are the same bytes as from one process.

Ctrl-C: the workers ignore it; the driver cancels the shards not yet
started, stops the workers and keeps every shard already stored.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import typing

from benchmark import interrupts
from benchmark.executors.driver import Ledger, Progress, unloadable, usable_cores
from benchmark.executors.worker import CellWorker
from benchmark.plan import Cell, Outcome, RunSpec

_WORKER: CellWorker | None = None  # this worker process's loaded model


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What caps a worker's torch / OpenMP threads; read when torch loads, after the worker starts."""


def _start(env: dict, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers
    os.environ.update(env)
    for name in THREAD_VARIABLES:  # N processes with a thread per core each would ask for N × cores threads
        os.environ.setdefault(name, str(threads))


def _worker(spec: RunSpec, model_name: str) -> CellWorker:
    global _WORKER
    if _WORKER is None or _WORKER.model_name != model_name:
        _WORKER = None  # free the previous model before the next one loads
        _WORKER = CellWorker(spec, model_name)
    return _WORKER


def _info(spec: RunSpec, model_name: str) -> dict:
    return _worker(spec, model_name).info()


def _run(spec: RunSpec, model_name: str, cell: Cell, positions: list[int]) -> dict:
    return _worker(spec, model_name).run(cell, positions)


def run(
    cells: typing.Sequence[Cell],
    where: dict,
    spec: RunSpec,
    bar: Progress,
    *,
    processes: int,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> dict[str, Outcome]:
    r"""Predict ``cells`` on ``processes`` worker processes, model after model.

    Args:
        cells: the plan's cells
        where: the plan's ``cell → (evalset, originals, files)``
        spec: the run's settings (each process runs ``spec.num_workers`` threads)
        bar: the driver's progress bar
        processes: worker processes
        on_result: called in the driver with ``(cell, answer)`` after each stored shard

    Returns:
        model name → :class:`~benchmark.plan.Outcome`

    """
    pool = start_pool(processes, spec.env)
    outcomes: dict[str, Outcome] = {}
    try:
        for model_name in dict.fromkeys(c.model for c in cells):
            mine = [c for c in cells if c.model == model_name]
            outcomes[model_name] = run_model(pool, processes, model_name, mine, where, spec, bar, on_result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # a running shard would otherwise finish first
            child.terminate()
        raise
    pool.shutdown()
    return outcomes


def start_pool(processes: int, env: dict | None = None) -> concurrent.futures.ProcessPoolExecutor:
    r"""A pool of ``processes`` fresh (spawned) worker processes that leave Ctrl-C to the driver.

    They inherit this process's environment, updated with ``env`` (e.g.
    :attr:`RunSpec.env`). Unless the environment sets them, each caps its
    torch / OpenMP threads (:data:`THREAD_VARIABLES`) at its share of the cores,
    so a transformers teacher on N processes does not ask for N threads per core.
    """
    context = multiprocessing.get_context("spawn")
    threads = max(1, usable_cores() // processes)
    return concurrent.futures.ProcessPoolExecutor(
        processes, mp_context=context, initializer=_start, initargs=(dict(env or {}), threads)
    )


def run_model(
    pool: concurrent.futures.Executor,
    processes: int,
    model_name: str,
    cells: typing.Sequence[Cell],
    where: dict,
    spec: RunSpec,
    bar: Progress,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> Outcome:
    r"""Predict the cells of one model on the pool's processes; the driver stores each answer as it comes."""
    try:
        info = _answer(pool.submit(_info, spec, model_name))
    except WorkerDied:
        raise
    except Exception as ex:  # the model cannot be loaded: every cell of it fails with that error
        return unloadable(cells, bar, ex)
    ledger = Ledger(cells, where, spec, info, processes, bar, on_result)
    pending = {
        pool.submit(_run, spec, model_name, cell, positions): (cell, positions) for cell, positions in ledger.jobs
    }
    while pending:
        done, _ = concurrent.futures.wait(pending, timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED)
        interrupts.check()
        for future in done:
            cell, positions = pending.pop(future)
            try:
                answer, error = _answer(future), None
            except WorkerDied:
                raise
            except Exception as ex:
                answer, error = None, ex
            ledger.answered(cell, positions, answer, error)
    return ledger.outcome


class WorkerDied(RuntimeError):
    r"""A worker process ended without an answer (killed, e.g. out of memory); the pool cannot go on."""


def _answer(future: concurrent.futures.Future):
    r"""The future's result; a dead worker process becomes :class:`WorkerDied`, which names the way out."""
    try:
        return future.result()
    except concurrent.futures.process.BrokenProcessPool as ex:
        raise WorkerDied(
            f"a worker process of the local executor died ({ex}); what it stored is kept and a rerun resumes "
            "from there. If memory ran out, run fewer copies of the model: --processes 1"
        ) from ex
