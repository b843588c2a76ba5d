"""The Ray executor: one actor per model replica holds the loaded model.

Each actor loads its model once, rebuilds a cell's inputs on its own
node (audb with the run's repositories), perturbs a condition's signals
in memory as it predicts them, predicts the files the driver asks for and
returns plain arrays. The driver writes the prediction cache, so no shared
filesystem is needed for results.

Faults: an actor whose process dies is restarted by Ray
(``max_restarts=-1``) and its in-flight cells are retried
(``max_task_retries``); a cell that still fails, or raises, is reported
with its error and the other cells go on. Ctrl-C kills the actors and
keeps every cell already written to the cache.
"""

from __future__ import annotations

import os
import socket
import time
import typing
import urllib.parse

import numpy as np

from benchmark.executors.driver import ClusterUnreachableError, Progress, cache_of, store, todo_positions, worker_env
from benchmark.plan import Cell, Outcome, RunSpec, cache_condition, signal_cache

TASK_RETRIES = 3
"""Retries of a cell whose actor process died (Ray's ``max_task_retries``)."""

IN_FLIGHT = 2
"""Shards queued per actor, so the next one starts while the driver stores the last."""

MIN_SHARD = 64
"""Fewest files in a shard of a cell (one task)."""

INSTALL_HINT = "pip install 'ser-benchmark[ray]' (or: pip install -c constraints.txt 'ray[client]==2.60.0')"

DEFAULT_PORTS = {"ray": 10001, "": 6379}
"""Ports Ray listens on when an address gives none: the Ray Client server (``ray://``), the GCS (``HOST``)."""


def import_ray():
    r"""Import Ray, or say how to install it."""
    try:
        import ray
    except ImportError as ex:
        raise ImportError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from ex
    return ray


def endpoint(address: str) -> tuple[str, int] | None:
    r"""Host and port that ``address`` makes Ray connect to; ``None`` for ``'auto'`` (Ray finds it).

    Examples:
        >>> endpoint("ray://head.example:10001"), endpoint("10.0.0.5"), endpoint("auto")
        (('head.example', 10001), ('10.0.0.5', 6379), None)

    """
    if address in ("auto", "local"):
        return None
    parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parsed.port
    except ValueError:
        raise ClusterUnreachableError(
            f"--address {address}: the port is not a number; give HOST:PORT, ray://HOST:PORT or auto."
        ) from None
    if not parsed.hostname:
        raise ClusterUnreachableError(f"--address {address}: no host; give HOST:PORT, ray://HOST:PORT or auto.")
    return parsed.hostname, port or DEFAULT_PORTS.get(parsed.scheme, DEFAULT_PORTS[""])


def check_address(address: str, timeout: float) -> None:
    r"""Make sure something listens at ``address`` before Ray is asked to join it.

    ``ray.init`` retries an address that does not answer without end; a
    TCP connection attempt fails within ``timeout`` seconds instead.

    Raises:
        ClusterUnreachableError: naming the address and what to check

    """
    where = endpoint(address)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as ex:
        reason = "no answer" if isinstance(ex, TimeoutError) else f"{type(ex).__name__}: {ex.strerror or ex}"
    client = address.startswith("ray://")
    raise ClusterUnreachableError(
        f"cannot reach the Ray cluster at {address} ({host}:{port}: {reason}, waited up to {timeout:g} s). Check that "
        + (
            "the head node runs the Ray Client server (`ray start --head` starts it on port 10001)"
            if client
            else "`ray start --head --port=PORT` runs there and PORT is its GCS port (default 6379)"
        )
        + ", that the host name and port are right and that no firewall blocks the port; to wait longer pass "
        "--ray-timeout SECONDS (or set SER_BENCHMARK_RAY_TIMEOUT); without --address a cluster is started on "
        "this machine."
    )


class Worker:
    r"""A Ray actor: one loaded model replica."""

    def __init__(self, spec: RunSpec, model_name: str):
        os.environ.update(spec.env)
        from benchmark.registry import load_model

        self.spec = spec
        self.model = load_model(spec.registry[model_name], spec.registry)
        self.loaded: dict = {}
        self.inputs: dict = {}
        self.cache = signal_cache(spec)

    def info(self) -> dict:
        r"""Artefact hash of the loaded model, process id and node."""
        import ray

        from benchmark import runner

        batch_size = self.spec.batch_size if runner.batches(self.model) else 1
        return {
            "artifact_hash": self.model.artifact_hash,
            "sampling_rate": self.model.sampling_rate,
            "batch_size": batch_size,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def run(self, cell: Cell, positions: list[int]) -> dict:
        r"""Predict the files at ``positions`` of ``cell``'s inputs.

        Returns:
            ``values`` (A/D/V per file), ``skips`` (position → reason),
            ``seconds``, ``pid``, ``node``

        """
        import ray

        from benchmark import plan, runner

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
        return {
            "values": values,
            "skips": skips,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }


def default_gpus(entry) -> float:
    r"""GPUs per replica from the entry's ``params.device`` (``cuda…``: 1, else 0)."""
    return 1.0 if str((entry.params or {}).get("device", "cpu")).startswith("cuda") else 0.0


def run(
    cells: typing.Sequence[Cell],
    where: dict,
    spec: RunSpec,
    bar: Progress,
    *,
    address: str | None = None,
    replicas: int = 1,
    gpus_per_replica: float | None = None,
    log: typing.Callable[[str], None] = print,
    on_result: typing.Callable[[Cell, dict], None] | None = None,
) -> dict[str, Outcome]:
    r"""Predict ``cells`` on a Ray cluster, model by model, ``replicas`` actors each.

    A cluster started here is shut down at the end; one that was already
    connected (``ray.init`` by the caller) or joined by ``address`` is left running
    (only this run's actors are killed).
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # "local": a new cluster here, never one that a `ray start` on this machine left behind
        local = {} if address else {"_node_ip_address": "127.0.0.1"}  # one machine: keep the traffic on loopback
        ray.init(
            address=address or "local", include_dashboard=False, log_to_driver=False, configure_logging=False, **local
        )
    spec.env = {**worker_env(), **spec.env}
    outcomes: dict[str, Outcome] = {}
    try:
        for model_name in dict.fromkeys(c.model for c in cells):
            actors = start_actors(ray, spec, model_name, replicas, gpus_per_replica)
            try:
                mine = [c for c in cells if c.model == model_name]
                outcomes[model_name] = run_model(ray, actors, mine, where, bar, on_result, spec=spec)
            finally:
                for actor in actors:
                    ray.kill(actor, no_restart=True)
    finally:
        if started_here:
            ray.shutdown()
    return outcomes


def start_actors(ray, spec: RunSpec, model_name: str, replicas: int, gpus_per_replica: float | None) -> list:
    r"""``replicas`` actors of ``model_name``: one CPU each, GPUs as asked or from the entry."""
    entry = spec.registry[model_name]
    gpus = default_gpus(entry) if gpus_per_replica is None else float(gpus_per_replica)
    remote = ray.remote(Worker)
    return [
        remote.options(
            num_cpus=1,
            num_gpus=gpus,
            max_restarts=-1,
            max_task_retries=TASK_RETRIES,
            runtime_env={"env_vars": spec.env},
        ).remote(spec, model_name)
        for _ in range(replicas)
    ]


def shards(positions: list[int], replicas: int) -> list[list[int]]:
    r"""A cell's files in contiguous shards, so every replica gets work even from one big cell.

    Examples:
        >>> [len(s) for s in shards(list(range(600)), 2)]
        [150, 150, 150, 150]
        >>> [len(s) for s in shards(list(range(40)), 2)]
        [40]

    """
    size = max(MIN_SHARD, -(-len(positions) // (IN_FLIGHT * replicas)))
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def run_model(ray, actors, cells, where, bar: Progress, on_result=None, *, spec: RunSpec) -> Outcome:
    r"""Predict the cells of one model on its actors; the driver stores each answer as it comes."""
    outcome = Outcome()
    try:
        info = ray.get(actors[0].info.remote())
    except Exception as ex:  # the model cannot be loaded: every cell of it fails with that error
        for cell in cells:
            outcome.add(cell, 0, 0.0, f"model could not be loaded on a worker: {_first_line(ex)}")
            bar.cell(cell.n_files)
        return outcome
    outcome.loaded(info["artifact_hash"], info["sampling_rate"], info["batch_size"])
    queue, left, todo = [], {}, {}
    for cell in cells:
        evalset, _, files = where[cell]
        condition = cache_condition(cell.condition_dict, spec)
        cache = cache_of(cell.model, info["artifact_hash"], evalset, condition, info["batch_size"])
        positions = todo_positions(cache, files)
        parts = shards(positions, len(actors)) if positions else []
        queue += [(cell, cache, files, part) for part in parts]
        left[cell], todo[cell] = len(parts), len(positions)
        if not parts:
            outcome.add(cell, 0, 0.0)
            bar.cell(cell.n_files)
    in_flight: dict = {}
    load = [0] * len(actors)

    def submit() -> None:
        while queue:
            free = min(range(len(actors)), key=lambda i: load[i])
            if load[free] >= IN_FLIGHT:
                return
            cell, cache, files, positions = queue.pop(0)
            ref = actors[free].run.remote(cell, positions)
            in_flight[ref] = (free, cell, cache, files, positions)
            load[free] += 1

    submit()
    while in_flight:
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        free, cell, cache, files, positions = in_flight.pop(ready[0])
        load[free] -= 1
        left[cell] -= 1
        try:
            answer = ray.get(ready[0])
        except Exception as ex:  # retries exhausted, or the cell raised: report it, go on
            outcome.add(cell, 0, 0.0, _first_line(ex))
            bar.files(len(positions))
        else:
            store(cache, files[positions], answer["values"], answer["skips"])
            outcome.add(cell, len(positions), answer["seconds"])
            bar.files(len(positions))
            if on_result is not None:
                on_result(cell, answer)
        if not left[cell]:
            bar.cell(cell.n_files - todo[cell])  # the files the cache already held
        submit()
    return outcome


def _first_line(ex: BaseException) -> str:
    r"""The cause of a Ray error in one line (Ray wraps it in a traceback)."""
    cause = getattr(ex, "cause", None) or ex
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]
