"""The local executor on worker processes: the bytes of one process, failures, Ctrl-C, a dead worker.

Each test predicts into a private copy of the demo corpora (``own_demo``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from conftest import interrupt_and_resume, same_tree

from benchmark import cli
from benchmark.data import datasets as dsets
from benchmark.executors import default_processes, predict_cells, processes
from benchmark.executors.driver import Progress, cache_of, todo_positions
from benchmark.plan import RunSpec, cache_condition, plan
from benchmark.registry import Registry, load_model

OPTIONS = {"bootstrap": 20, "max_files": 10, "conditions": ["gain", "babble-20db"]}
ARGS = ["--no-docs", "--no-progress", "--bootstrap", "20", "--max-files", "10", "--conditions", "gain", "babble-20db"]


def _spec() -> RunSpec:
    return RunSpec(Registry.from_file(), dsets.load_registry(), options=dict(OPTIONS))


def _stored(cache: Path) -> int:
    r"""Predictions and skips the cache holds, over all cells."""
    total = 0
    for path in (cache / "predictions").rglob("*.csv"):
        total += len(pd.read_csv(path))
    return total


def test_worker_processes_write_the_bytes_of_one_process(own_demo, tmp_path, monkeypatch):
    models = ["--model", "constant", "random-gaussian", "wav2small"]
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "one"))
    assert cli.main(["run", *models, *ARGS, "--processes", "1"]) == 0
    os.replace(own_demo / "predictions", tmp_path / "one-cache")
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "two"))
    assert cli.main(["run", *models, *ARGS, "--processes", "2"]) == 0
    assert same_tree(tmp_path / "one-cache", own_demo / "predictions") == []
    one, two = tmp_path / "one", tmp_path / "two"
    assert {p.name for p in one.glob("*.csv")} >= {"correctness.csv", "robustness.csv", "runs.csv"}
    assert [f for f in same_tree(one, two) if not f.endswith(("runs.csv", ".lock"))] == []
    runs_one, runs_two = pd.read_csv(one / "runs.csv"), pd.read_csv(two / "runs.csv")
    # wall time is measured; everything else, the counts of computed files included, is equal
    pd.testing.assert_frame_equal(runs_one.drop(columns="wall_seconds"), runs_two.drop(columns="wall_seconds"))
    assert (runs_two["computed"] == runs_two["predictions"]).all()


def test_both_processes_predict_and_a_failing_cell_is_reported(own_demo):
    spec = _spec()
    cells, where = plan(["random-gaussian"], spec, tests=["correctness", "robustness"], log=lambda _: None)
    broken = next(c for c in cells if c.dataset == "mosi" and not c.condition)
    wrong = dataclasses.replace(broken, n_files=broken.n_files + 1)  # as if the worker saw other data
    cells = [wrong if c == broken else c for c in cells]
    where[wrong] = where[broken]
    pids = []
    outcome = processes.run(
        cells, where, spec, Progress(cells, False), processes=2, on_result=lambda c, a: pids.append(a["pid"])
    )["random-gaussian"]
    assert list(outcome.failed) == [broken.key]
    assert "the driver planned" in outcome.failed[broken.key]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # the work was shared, and not done here
    artifact_hash = load_model("random-gaussian").artifact_hash
    for cell in cells:
        evalset, _, files = where[cell]
        condition = cache_condition(cell.condition_dict, spec)
        left = todo_positions(cache_of("random-gaussian", artifact_hash, evalset, condition), files)
        assert (left != []) == (cell is wrong), cell  # the others finished


def test_a_model_no_worker_can_load_fails_its_cells(own_demo, tmp_path):
    spec = _spec()
    cells, where = plan(["constant"], spec, tests=["correctness"], log=lambda _: None)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.onnx").write_bytes(b"not onnx")  # as if truncated after the registry was read
    spec.registry = Registry.from_yaml_text(
        f"""
models:
  - name: broken
    kind: audonnx
    role: student
    source: {{path: {tmp_path / "broken"}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: a broken file
""",
        check_files=False,
    )
    cells = [dataclasses.replace(c, model="broken") for c in cells]
    where = {dataclasses.replace(c, model="broken"): w for c, w in where.items()}
    outcome = processes.run(cells, where, spec, Progress(cells, False), processes=2)["broken"]
    assert set(outcome.failed) == {c.key for c in cells}
    assert all("could not be loaded on a worker" in e for e in outcome.failed.values())


def test_ctrl_c_stops_the_workers_and_keeps_what_is_stored(own_demo):
    done, rerun, total = interrupt_and_resume(_spec(), ["robustness"], processes=2)
    assert done and rerun == total - done[0]  # the shard answered before Ctrl-C was kept, nothing else


def test_a_dead_worker_ends_the_run_naming_the_way_out(own_demo):
    spec = _spec()
    killed = []

    def kill(cell, answer):
        if not killed:
            os.kill(answer["pid"], signal.SIGKILL)
            killed.append(answer["pid"])

    with pytest.raises(processes.WorkerDied, match="--processes 1"):
        predict_cells(["random-gaussian"], spec, tests=["robustness"], processes=2, progress=False, on_result=kill)
    assert killed and _stored(own_demo) > 0  # what was stored before is kept


def test_auto_is_one_process_per_core_and_one_for_a_gpu_model():
    entries = [Registry.from_file()["wav2small"]]
    cores = len(os.sched_getaffinity(0))
    assert default_processes(entries) == max(1, min(cores, 4))
    gpu = dataclasses.replace(entries[0], params={"device": "cuda:0"})
    assert default_processes([*entries, gpu]) == 1


def test_each_worker_takes_its_share_of_the_cores_unless_told(monkeypatch):
    for name in processes.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    pool = processes.start_pool(2)
    try:
        assert [pool.submit(os.getenv, name).result() for name in processes.THREAD_VARIABLES] == [share] * 2
    finally:
        pool.shutdown()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting wins
    pool = processes.start_pool(2)
    try:
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result() == "3"
    finally:
        pool.shutdown()
