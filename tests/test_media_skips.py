"""A media file missing or broken at one run is a recorded skip there, and predicted again once it is back.

``testcorpus`` is loaded once into the test's audb cache; a file is then moved
away from (or damaged in) that cache, as a user's disk or sync tool would, and
``python -m benchmark run`` is driven through :func:`benchmark.cli.main`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import audiofile
import numpy as np
import pytest
from conftest import BASELINES_YAML

from benchmark import cli, results
from benchmark.data import datasets as dsets


@pytest.fixture()
def setup(tmp_path, dataset_registry, audb_repository):
    models = tmp_path / "models.yaml"
    models.write_text(BASELINES_YAML)
    evalset = dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )
    args = [
        "run",
        "--model",
        "random-gaussian",
        "--models",
        str(models),
        "--datasets",
        str(tmp_path / "datasets.yaml"),
        "--data",
        "real",
        "--repository",
        f"{audb_repository.name}={audb_repository.host}",
        "--split",
        "test-1",
        "--tests",
        "correctness",
        "--bootstrap",
        "20",
        "--no-docs",
        "--no-progress",
    ]
    return {"args": args, "files": list(evalset.files), "root": evalset.root}


def table(name: str):
    return results.read_table(name, Path(os.environ["SER_BENCHMARK_RESULTS"]))


def test_missing_file_is_skipped_then_predicted_when_it_comes_back(setup, dataset_registry, audb_repository, tmp_path):
    # audb.load puts a missing file back, so the split is loaded once and predicted twice (as a long-lived
    # process, a notebook or a worker does); its fingerprint comes from audb's checksums, not from the disk
    from benchmark.registry import Registry, load_model
    from benchmark.runner import predict

    evalset = dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )
    model = load_model("random-gaussian", Registry.from_yaml_text(BASELINES_YAML))
    file = Path(setup["files"][3])
    aside = tmp_path / "aside.wav"
    shutil.move(file, aside)
    pred, skips = predict(model, evalset, progress=False)
    assert file.as_posix() in skips.index and len(pred) == 11
    assert skips.loc[file.as_posix(), "reason"].startswith("unreadable audio")

    shutil.move(aside, file)
    pred, skips = predict(model, evalset, progress=False)
    assert skips.empty and len(pred) == 12
    assert pred.attrs["computed"] == 1 and pred.attrs["retried"] == [file.as_posix()]  # only that file ran again
    again, _ = predict(model, evalset, progress=False)
    assert again.attrs["computed"] == 0  # and from then on it comes from the cache


def test_emptied_file_is_skipped_then_predicted_when_restored(setup, capsys):
    file = Path(setup["files"][3])
    relative = os.path.relpath(file, setup["root"])
    good = file.read_bytes()
    file.write_bytes(b"")  # what an interrupted copy leaves behind
    assert cli.main(setup["args"]) == cli.EXIT_OK
    assert f"{relative}: " in capsys.readouterr().out
    assert set(table("correctness")["n"]) == {11}
    assert table("skips")["file"].tolist() == [relative]

    file.write_bytes(good)  # the file is back, byte for byte
    assert cli.main(setup["args"]) == cli.EXIT_OK
    assert "skipped" not in capsys.readouterr().out
    assert set(table("correctness")["n"]) == {12}
    assert table("skips").empty  # the skip no longer holds: its row is gone


def test_a_repaired_file_is_predicted_and_an_unchanged_skip_is_kept(setup, tmp_path, capsys):
    broken, silent = Path(setup["files"][0]), Path(setup["files"][1])
    good = broken.read_bytes()
    broken.write_bytes(b"RIFF....WAVEfmt garbage")  # not audio any more
    audiofile.write(str(silent), np.zeros(16000, dtype=np.float32), 16000)  # silence: a skip whatever run reads it
    assert cli.main(setup["args"]) == cli.EXIT_OK
    capsys.readouterr()
    skipped = dict(zip(table("skips")["file"], table("skips")["reason"]))
    relative = {p: os.path.relpath(p, setup["root"]) for p in (broken, silent)}
    assert set(skipped) == set(relative.values())
    assert skipped[relative[silent]].startswith("silent audio")

    broken.write_bytes(good)  # repaired: other bytes than when it was skipped
    assert cli.main(setup["args"]) == cli.EXIT_OK
    assert set(table("correctness")["n"]) == {11}
    assert table("skips")["file"].tolist() == [relative[silent]]  # the silent file still is what it was
