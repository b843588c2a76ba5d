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
import typing
import urllib.parse

from benchmark.executors.driver import IN_FLIGHT, ClusterUnreachableError, Ledger, Progress, unloadable, worker_env
from benchmark.executors.worker import CellWorker
from benchmark.plan import Cell, Outcome, RunSpec

TASK_RETRIES = 3
"""Retries of a cell whose actor process died (Ray's ``max_task_retries``)."""

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


class Worker(CellWorker):
    r"""A Ray actor: one loaded model replica; its answers also name its node."""

    def __init__(self, spec: RunSpec, model_name: str):
        os.environ.update(spec.env)
        super().__init__(spec, model_name)

    def info(self) -> dict:
        r"""Artefact hash of the loaded model, process id and node."""
        import ray

        return {**super().info(), "node": ray.get_runtime_context().get_node_id()}

    def run(self, cell: Cell, positions: list[int]) -> dict:
        r"""Predict the files at ``positions`` of ``cell``'s inputs (:meth:`CellWorker.run`), on this node."""
        import ray

        return {**super().run(cell, positions), "node": ray.get_runtime_context().get_node_id()}


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


def run_model(ray, actors, cells, where, bar: Progress, on_result=None, *, spec: RunSpec) -> Outcome:
    r"""Predict the cells of one model on its actors; the driver stores each answer as it comes."""
    try:
        info = ray.get(actors[0].info.remote())
    except Exception as ex:  # the model cannot be loaded: every cell of it fails with that error
        return unloadable(cells, bar, ex)
    ledger = Ledger(cells, where, spec, info, len(actors), bar, on_result)
    queue = list(ledger.jobs)
    in_flight: dict = {}
    load = [0] * len(actors)

    def submit() -> None:
        while queue:
            free = min(range(len(actors)), key=lambda i: load[i])
            if load[free] >= IN_FLIGHT:
                return
            cell, positions = queue.pop(0)
            in_flight[actors[free].run.remote(cell, positions)] = (free, cell, positions)
            load[free] += 1

    submit()
    while in_flight:
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        free, cell, positions = in_flight.pop(ready[0])
        load[free] -= 1
        try:
            answer, error = ray.get(ready[0]), None
        except Exception as ex:
            answer, error = None, ex
        ledger.answered(cell, positions, answer, error)
        submit()
    return ledger.outcome
