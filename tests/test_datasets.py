"""Dataset registry and audb loading through a local file-system repository."""

from pathlib import Path

import audb
import pytest

from benchmark.data import datasets as dsets


def test_load_split_through_audb(dataset_registry, audb_repository):
    ev = dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )
    assert ev.audb_name == "testcorpus" and ev.version == "1.0.0" and ev.split == "test-1"
    assert ev.dimensions == ("arousal", "dominance", "valence")
    assert len(ev.files) == 12
    assert ev.truth.min().min() >= 0 and ev.truth.max().max() <= 1  # 1..7 mapped to 0..1
    assert set(ev.sex.unique()) == {"female", "male"}
    assert ev.speaker.notna().all()
    assert ev.provenance()["table"] == "emotion.dimensions.test-1.gold_standard"
    assert ev.provenance()["data_fingerprint"] == ev.fingerprint[:12]


def test_fingerprint_names_the_content_not_the_version(dataset_registry, audb_repository):
    ev = dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )
    # from audb's checksums; the same as hashing the files on disk
    assert ev.fingerprint == dsets.data_fingerprint(ev.truth, ev.speaker, ev.sex, ev.root)
    assert ev.subset(ev.files[:3]).fingerprint == ev.fingerprint  # a subset belongs to the same data
    relabelled = ev.truth.copy()
    relabelled.iloc[0, 0] += 0.01
    assert dsets.data_fingerprint(relabelled, ev.speaker, ev.sex, ev.root) != ev.fingerprint
    first = Path(ev.files[0])
    original = first.read_bytes()
    try:  # two flipped bytes of one file's audio
        first.write_bytes(original[:200] + bytes(b ^ 0xFF for b in original[200:202]) + original[202:])
        assert dsets.data_fingerprint(ev.truth, ev.speaker, ev.sex, ev.root) != ev.fingerprint
    finally:
        first.write_bytes(original)


def test_unknown_dataset_and_split(dataset_registry, audb_repository):
    with pytest.raises(dsets.DatasetConfigError, match="Unknown dataset 'nope'.*testcorpus"):
        dsets.load_split("nope", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry)
    with pytest.raises(dsets.DatasetConfigError, match="no split 'test-9'; available: test-1, test-2"):
        dsets.load_split("testcorpus", "test-9", data="real", repositories=[audb_repository], registry=dataset_registry)


def test_unreachable_repository_fails_fast_with_fix(dataset_registry, tmp_path):
    missing = audb.Repository("nowhere", str(tmp_path / "none"), "file-system")
    remote = audb.Repository("remote", "https://127.0.0.1:9", "artifactory")
    with pytest.raises(dsets.DatasetConfigError) as info:
        dsets.load_split("testcorpus", "test-1", data="real", repositories=[missing, remote], registry=dataset_registry)
    msg = str(info.value)
    # refused by the reachability check up front, before audb tries (and retries) either repository
    assert "no reachable audb repository" in msg
    assert "testcorpus 1.0.0" in msg and "~/.config/audb.yaml" in msg and "--repository" in msg


def test_missing_version_names_available(dataset_registry, audb_repository, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(
        "datasets:\n  - {name: t, audb: testcorpus, version: 9.9.9, splits: {test-1: x}, labels: {arousal: arousal},"
        " label_range: [1, 7], speaker: {}, sex: {}, demo: {name: x, version: 1.0.0}}\n"
    )
    reg = dsets.load_registry(path)
    with pytest.raises(dsets.DatasetConfigError, match="version 9.9.9 not found.*available: 1.0.0"):
        dsets.load_split("t", "test-1", data="real", repositories=[audb_repository], registry=reg)


def test_invalid_registry_reports_fields(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("datasets:\n  - {name: x, audb: x, version: 1, labels: {joy: j}, label_range: [7, 1]}\n")
    with pytest.raises(dsets.DatasetConfigError) as info:
        dsets.load_registry(path)
    assert "field 'splits' is missing" in str(info.value)


def test_project_registry_entries():
    reg = dsets.load_registry()
    assert reg["msppodcast"].splits["test-1"] == "emotion.dimensions.test-1.gold_standard"
    assert reg["iemocap"].splits["test"] == "emotion.dimensions.test.gold_standard"
    assert list(reg["mosi"].labels) == ["valence"] and reg["mosi"].label_range == (-3, 3)


def test_parse_repository():
    r = dsets.parse_repository("x=/data/audb:file-system")
    assert (r.name, r.host, r.backend) == ("x", "/data/audb", "file-system")
    with pytest.raises(dsets.DatasetConfigError, match="NAME=HOST"):
        dsets.parse_repository("nonsense")
