"""CMU-MOSI as audb-public publishes it (``cmu-mosi`` 1.1.1): the segmented ``sentiment`` table, scored per segment.

The database is built here with cmu-mosi's schema: file lists
``train``/``dev``/``test``, ``files`` with ``gender`` per video and the
segmented ``sentiment`` table on -3..3; the project's own ``mosi``
registry entry loads it as it would load the public one.
"""

from __future__ import annotations

from pathlib import Path

import audb
import audformat
import audiofile
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SR, publish, tone
from test_own_data import MODELS, WEIGHTS

from benchmark import cli, results
from benchmark.data.datasets import load_registry, load_split
from benchmark.paths import PROJECT_ROOT

VIDEOS = {"2iD-tVS8NPw": "female", "WKA5OygbEKI": "male", "tmZoasNr4rU": "female", "trainvideo1": "male"}
TEST = ["2iD-tVS8NPw", "WKA5OygbEKI", "tmZoasNr4rU"]
SEGMENTS = {  # video → [(start s, end s, sentiment)]
    "2iD-tVS8NPw": [(0.0, 1.2, 2.4), (1.1, 2.5, -0.8), (2.6, 3.9, 0.0)],
    "WKA5OygbEKI": [(0.3, 1.5, -1.75), (1.6, 3.0, 1.2)],
    "tmZoasNr4rU": [(0.5, 2.0, -3.0), (2.0, 3.5, 3.0), (3.5, 3.9, 0.4)],
    "trainvideo1": [(0.0, 2.0, 1.0)],
}


def build_cmu_mosi(root: Path) -> None:
    r"""A cmu-mosi-schema database with :data:`VIDEOS` and :data:`SEGMENTS` (4 s tones)."""
    db = audformat.Database("cmu-mosi", source="tests", usage=audformat.define.Usage.RESEARCH)
    files = {v: f"Audio/{v}.wav" for v in VIDEOS}
    (root / "Audio").mkdir(parents=True)
    for i, file in enumerate(files.values()):
        audiofile.write(str(root / file), tone(4.0, 110 + 30 * i, seed=i), SR)
    for split, videos in (("train", ["trainvideo1"]), ("dev", []), ("test", TEST)):
        db[split] = audformat.Table(audformat.filewise_index([files[v] for v in videos]))
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    db["files"] = audformat.Table(audformat.filewise_index(list(files.values())))
    db["files"]["gender"] = audformat.Column(scheme_id="gender")
    db["files"]["gender"].set(list(VIDEOS.values()))
    db.schemes["sentiment"] = audformat.Scheme("float", minimum=-3, maximum=3)
    rows = [(files[v], s, e, y) for v, segs in SEGMENTS.items() for s, e, y in segs]
    index = audformat.segmented_index([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    db["sentiment"] = audformat.Table(index)
    db["sentiment"]["sentiment"] = audformat.Column(scheme_id="sentiment")
    db["sentiment"]["sentiment"].set([r[3] for r in rows])
    db.save(str(root))


@pytest.fixture()
def mosi_repository(tmp_path):
    build = tmp_path / "build"
    build_cmu_mosi(build)
    repo = audb.Repository("audb-public", str(tmp_path / "host"), "file-system")
    (tmp_path / "host" / repo.name).mkdir(parents=True)
    publish(build, "1.1.1", repo, cache_root=str(tmp_path / "publish-cache"))
    return repo


def test_segments_of_the_test_videos_are_scored_one_by_one(mosi_repository, tmp_path, capsys):
    entry = load_registry(PROJECT_ROOT / "datasets.yaml")["mosi"]
    assert (entry.audb, entry.version) == ("cmu-mosi", "1.1.1")
    evalset = load_split(entry, "test", data="real", repositories=[mosi_repository])
    expected = [(v, s, e, y) for v in TEST for s, e, y in SEGMENTS[v]]
    assert len(evalset.files) == len(expected) == 8
    assert sorted(evalset.truth["valence"].round(6)) == sorted(round((y + 3) / 6, 6) for *_, y in expected)
    for file in evalset.files:  # each segment is its own audio, of its own length, from its own video
        video = Path(file).parent.name  # <checksum>/Audio/<video>/<start>-<end>.wav
        start_us, end_us = (int(t) for t in Path(file).stem.split("-"))
        assert video in TEST
        assert audiofile.duration(file) == pytest.approx((end_us - start_us) / 1e6, abs=1 / SR)
        assert evalset.sex[file] == VIDEOS[video]
        assert evalset.speaker[file] == f"Audio/{video}.wav"
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    argv = ["run", "--model", "wav2small", "--models", str(models), "--data", "real", "--dataset", "mosi"]
    argv += ["--repository", f"{mosi_repository.name}={mosi_repository.host}", "--tests", "correctness"]
    assert cli.main([*argv, "--bootstrap", "10", "--no-progress", "--no-docs"]) == 0, capsys.readouterr()
    table = results.read_table("correctness")
    assert table[["dataset", "dimension"]].values.tolist() == [["cmu-mosi", "valence"]]
    assert int(table["n"].iloc[0]) == 8


def test_a_segment_is_cut_once_and_its_prediction_keyed_by_content(mosi_repository):
    entry = load_registry(PROJECT_ROOT / "datasets.yaml")["mosi"]
    first = load_split(entry, "test", data="real", repositories=[mosi_repository])
    mtimes = {f: Path(f).stat().st_mtime_ns for f in first.files}
    again = load_split(entry, "test", data="real", repositories=[mosi_repository])
    assert again.fingerprint == first.fingerprint
    assert {f: Path(f).stat().st_mtime_ns for f in again.files} == mtimes
    signal, sr = audiofile.read(first.files[0])
    assert sr == SR and np.abs(signal).max() > 0


def test_the_entry_s_replica_view_keeps_the_demo_tables():
    raw = yaml.safe_load((PROJECT_ROOT / "datasets.yaml").read_text())["datasets"]
    mosi = next(e for e in raw if e["name"] == "mosi")
    entry = load_registry(PROJECT_ROOT / "datasets.yaml")["mosi"].resolved("demo")
    assert entry.splits == mosi["demo"]["splits"] and not entry.split_files
    assert pd.Series(entry.label_range).tolist() == [-3, 3]
