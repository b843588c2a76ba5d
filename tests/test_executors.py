"""Executors on a real Ray cluster: same bytes as a local run, retries, failures, two nodes.

One local Ray cluster (2 CPUs, no dashboard) serves the module; the
two-node test starts its own head and worker node on loopback with
``ray start --block`` and stops exactly those two processes. Ray keeps its
session files (and the address file ``ray start`` leaves) in a private
``RAY_TMPDIR``, and each test predicts into a private copy of the demo
corpora. Only the tests that need Ray skip where it is not installed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import interrupt_and_resume, same_tree

from benchmark import cli
from benchmark.data import datasets as dsets
from benchmark.executors import predict_cells
from benchmark.executors.driver import todo_positions
from benchmark.plan import RunSpec, plan
from benchmark.registry import Registry

OPTIONS = {"bootstrap": 20, "max_files": 10, "conditions": ["gain", "babble-20db"]}


@pytest.fixture(scope="module")
def _cluster():
    r"""Ray, with the module's settings in the environment (restored afterwards) and its files in a private folder."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    # short: Ray's Unix sockets live below it, and a socket path may not exceed 107 bytes
    private = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # loopback tests; see docs/scaling.md for real clusters
        mp.setenv("RAY_TMPDIR", private)
        yield ray
        if ray.is_initialized():
            ray.shutdown()
    shutil.rmtree(private, ignore_errors=True)


@pytest.fixture()
def ray_cluster(_cluster):
    r"""The module's local cluster (restarted if a test left it)."""
    ray = _cluster
    if not ray.is_initialized():
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


def _spec(**kw) -> RunSpec:
    return RunSpec(Registry.from_file(), dsets.load_registry(), options=dict(OPTIONS), **kw)


def _set_aside_predictions(cache: Path, name: str) -> Path:
    target = cache.parent / f"{cache.name}-{name}"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(cache / "predictions", target)
    return target


def test_local_and_ray_write_identical_results(own_demo, ray_cluster, tmp_path, monkeypatch):
    args = [
        "run",
        "--model",
        "constant",
        "random-gaussian",
        "wav2small",
        "--no-docs",
        "--no-progress",
        "--bootstrap",
        "20",
        "--max-files",
        "10",
        "--conditions",
        "gain",
        "babble-20db",
    ]
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "local"))
    assert cli.main(args + ["--executor", "local"]) == 0
    local_cache = _set_aside_predictions(own_demo, "local")
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "ray"))
    assert cli.main(args + ["--executor", "ray"]) == 0
    assert same_tree(local_cache, own_demo / "predictions") == []
    local, remote = tmp_path / "local", tmp_path / "ray"
    # at the tests' demo scale the sexes are below fairness_min_files: the speaker tables carry fairness here
    assert {p.name for p in local.glob("*.csv")} >= {
        "correctness.csv",
        "robustness.csv",
        "fairness_speaker.csv",
        "runs.csv",
    }
    differ = [f for f in same_tree(local, remote) if not f.endswith(("runs.csv", ".lock"))]
    assert differ == []
    runs_local, runs_ray = pd.read_csv(local / "runs.csv"), pd.read_csv(remote / "runs.csv")
    # wall time is measured, not computed; everything else, the counts of computed files included, is equal
    pd.testing.assert_frame_equal(runs_local.drop(columns="wall_seconds"), runs_ray.drop(columns="wall_seconds"))
    assert (runs_ray["computed"] == runs_ray["predictions"]).all()  # the cells computed all, the driver none


def test_killed_worker_cells_are_retried(own_demo, ray_cluster):
    spec = _spec()
    tests = ["robustness"]
    predict_cells(["random-gaussian"], spec, tests=tests, progress=False)
    local_cache = _set_aside_predictions(own_demo, "kill-local")
    killed, pids = [], []

    def kill_first(cell, answer):
        pids.append(answer["pid"])
        if not killed:
            os.kill(answer["pid"], signal.SIGKILL)
            killed.append(answer["pid"])

    outcome = predict_cells(
        ["random-gaussian"], spec, executor="ray", tests=tests, progress=False, on_result=kill_first
    )["random-gaussian"]
    assert outcome.failed == {}
    assert killed and any(p != killed[0] for p in pids[1:])  # a restarted actor finished the cells
    assert same_tree(local_cache, own_demo / "predictions") == []


def test_failing_cell_is_reported_and_others_finish(own_demo, ray_cluster, tmp_path, monkeypatch):
    from benchmark.executors import ray as ray_executor
    from benchmark.executors.driver import Progress, cache_of
    from benchmark.suite import run_suite

    spec = _spec()
    cells, where = plan(["constant"], spec, tests=["correctness"], log=lambda _: None)
    broken = next(c for c in cells if c.dataset == "mosi")
    wrong = dataclasses.replace(broken, n_files=broken.n_files + 1)  # as if the worker's node had other data
    cells = [wrong if c == broken else c for c in cells]
    where[wrong] = where[broken]
    outcome = ray_executor.run(cells, where, spec, Progress(cells, False), log=lambda _: None)["constant"]
    assert list(outcome.failed) == [broken.key]
    assert "the driver planned" in outcome.failed[broken.key]
    from benchmark.registry import load_model

    artifact_hash = load_model("constant").artifact_hash
    for cell in cells:
        evalset, _, files = where[cell]
        left = todo_positions(cache_of("constant", artifact_hash, evalset, None), files)
        assert (left != []) == (cell is wrong)  # the others finished
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "results"))
    report = run_suite(
        "constant",
        tests=["correctness"],
        progress=False,
        predicted=outcome,
        log=lambda _: None,
        options={"bootstrap": 20},
    )
    assert [f[0] for f in report.failures] == ["demo-mosi"] and "the driver planned" in report.failures[0][3]
    assert set(report.frame("correctness")["dataset"]) == {"demo-msppodcast", "demo-iemocap"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(*args: str) -> subprocess.Popen:
    r"""A ``ray start --block`` node; terminating this process stops exactly that node."""
    exe = Path(sys.executable).with_name("ray")
    return subprocess.Popen(
        [str(exe), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", *args],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_two_node_cluster_runs_cells_on_both_nodes(own_demo, _cluster):
    ray = _cluster
    if ray.is_initialized():
        ray.shutdown()  # the module's local cluster; this test joins its own
    port = _free_port()
    nodes = [_ray_start("--head", f"--port={port}", "--include-dashboard=false")]
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(90):
            time.sleep(1)
            if (
                subprocess.run(
                    [str(Path(sys.executable).with_name("ray")), "status", f"--address={address}"],
                    env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                    capture_output=True,
                ).returncode
                == 0
            ):
                break
        nodes.append(_ray_start(f"--address={address}"))
        spec = _spec()
        seen = []
        outcome = predict_cells(
            ["random-gaussian"],
            spec,
            executor="ray",
            tests=["correctness"],
            address=address,
            replicas=2,
            progress=False,
            on_result=lambda cell, answer: seen.append(answer["node"]),
        )
        assert outcome["random-gaussian"].failed == {}
        assert len(set(seen)) == 2  # one actor per node: each node has one CPU, each replica needs one
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            node.wait(timeout=60)


def test_without_ray_the_executor_says_how_to_install(monkeypatch):
    from benchmark.executors import ray as ray_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"ser-benchmark\[ray\]"):
        ray_executor.import_ray()


def test_interrupted_ray_run_keeps_what_is_cached(own_demo, ray_cluster):
    done, rerun, total = interrupt_and_resume(_spec(), ["correctness"], executor="ray")
    assert ray_cluster.is_initialized()  # a cluster the caller started is left running, only the run's actors go
    assert done and rerun == total - done[0]  # the answer stored before Ctrl-C was kept
