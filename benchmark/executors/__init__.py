"""Executors: how a run's cells are predicted.

``local`` (the default) predicts the cells on this machine, model by
model: in this process with ``processes=1``, else on worker processes
that each hold a copy of the model (:mod:`benchmark.executors.processes`).
``ray`` hands them to Ray actors that each hold one loaded model replica
(:mod:`benchmark.executors.ray`). Either
way the worker that holds the model perturbs a condition's signals in
memory (:func:`benchmark.plan.signal_source`), the driver alone writes the
prediction cache, and the analyses then score the stored predictions
(:func:`benchmark.suite.score_model`).
"""

from __future__ import annotations

import time
import typing

from benchmark import interrupts, runner
from benchmark.executors.driver import Progress, usable_cores
from benchmark.plan import Cell, Outcome, RunSpec, cache_condition, plan, signal_cache, signal_source

EXECUTORS = ("local", "ray")

__all__ = [
    "EXECUTORS",
    "check_executor",
    "default_processes",
    "execute",
    "predict_cells",
    "run_local",
    "shared_conditions",
]


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
    processes: int = 1,
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
            (:class:`~benchmark.executors.driver.ClusterUnreachableError` after that)
        replicas: model replicas (Ray actors) per model
        gpus_per_replica: GPUs per replica, fractional allowed
            (default: 1 for entries with ``params.device`` on CUDA, else 0)
        processes: ``local`` only: worker processes, each with a copy of
            the model (1: predict in this process)
        progress: show the driver's progress bar
        log: where messages go
        on_result: called in the driver with ``(cell, answer)`` after each
            stored shard (``ray``, and ``local`` with several processes)

    Returns:
        model name → :class:`benchmark.plan.Outcome`, for
        :func:`benchmark.suite.run_suite`

    """
    check_executor(executor, replicas, address, address_timeout, processes)
    cells, where = plan(models, spec, datasets=datasets, splits=splits, tests=tests, log=log)
    return execute(
        cells,
        where,
        spec,
        executor=executor,
        address=address,
        replicas=replicas,
        gpus_per_replica=gpus_per_replica,
        processes=processes,
        progress=progress,
        log=log,
        on_result=on_result,
    )


def check_executor(
    executor: str, replicas: int = 1, address: str | None = None, address_timeout: float = 30.0, processes: int = 1
) -> None:
    r"""Refuse an unknown executor, a count below 1, a missing Ray or an unreachable cluster (before any work)."""
    if executor not in EXECUTORS:
        raise ValueError(f"Unknown executor '{executor}'; use one of {', '.join(EXECUTORS)}.")
    if replicas < 1:
        raise ValueError(f"--replicas must be at least 1, got {replicas}.")
    if processes < 1:
        raise ValueError(f"--processes must be at least 1, got {processes}.")
    if executor == "ray":  # before the plan, which can take minutes: a missing Ray or cluster fails at once
        from benchmark.executors import ray as ray_executor

        ray_executor.import_ray()
        if address:
            ray_executor.check_address(address, address_timeout)


MAX_PROCESSES = 4
"""Most worker processes ``--processes auto`` starts: each holds a copy of the model."""


def default_processes(entries: typing.Iterable) -> int:
    r"""Worker processes of ``--processes auto``: one per usable core, at most :data:`MAX_PROCESSES`.

    One (this process) when a model of the run sits on a GPU
    (``params.device`` ``cuda…``): copies of it would share one device.

    Examples:
        >>> import types
        >>> default_processes([types.SimpleNamespace(params={"device": "cuda"})])
        1

    """
    if any(str((e.params or {}).get("device", "cpu")).startswith("cuda") for e in entries):
        return 1
    return max(1, min(usable_cores(), MAX_PROCESSES))


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
    processes: int = 1,
    progress: bool = True,
    log: typing.Callable[[str], None] = print,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> dict[str, Outcome]:
    r"""Predict planned ``cells`` into the cache (arguments as :func:`predict_cells`).

    The perturbed-signal store (:attr:`RunSpec.signal_cache_mb`) is kept
    only where two models share a condition; for one model it is off.
    """
    check_executor(executor, replicas, processes=processes)
    if not shared_conditions(cells):
        spec.signal_cache_mb = 0.0
    bar = Progress(cells, progress)
    try:
        if executor == "local" and processes > 1:
            from benchmark.executors import processes as worker_processes

            return worker_processes.run(cells, where, spec, bar, processes=processes, on_result=on_result)
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
        interrupts.check()
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
