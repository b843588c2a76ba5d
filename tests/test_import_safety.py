"""``import-dataset`` refuses what a careless or hostile CSV holds, before anything is written or published."""

from __future__ import annotations

from pathlib import Path

import audiofile
import pandas as pd
import pytest
import yaml
from conftest import SR, tone

from benchmark import cli
from benchmark.data.datasets import DatasetConfigError, load_registry, load_split
from benchmark.data.importer import import_dataset


def _folder(root: Path, n: int = 3) -> Path:
    audio = root / "work" / "build" / "audio"
    audio.mkdir(parents=True)
    for i in range(n):
        audiofile.write(str(audio / f"f{i}.wav"), tone(0.5, 150 + 20 * i, seed=i), SR)
    return audio


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _import(tmp_path, audio, rows, version="1.0.0", **kw):
    csv = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return import_dataset(
        audio, csv, "mine", version, repository=f"own={tmp_path / 'repo'}", registry=tmp_path / "own.yaml", **kw
    )


def test_a_row_that_leaves_the_folder_is_refused_and_nothing_outside_is_written(tmp_path):
    audio = _folder(tmp_path)
    victim = tmp_path / "work" / "victim"
    victim.mkdir()
    (victim / "notes.wav").write_bytes(b"my notes")
    # the probe: a real audio file at the escaping path, so only the path check can refuse it
    audiofile.write(str(tmp_path / "work" / "evil.wav"), tone(0.5, 100), SR)
    before = _files(tmp_path / "work")
    report = _import(
        tmp_path,
        audio,
        [
            {"file": "f0.wav", "arousal": 0.5},
            {"file": "../../victim/notes.wav", "arousal": 0.5},
            {"file": "../../evil.wav", "arousal": 0.5},
            {"file": str(audio / "f1.wav"), "arousal": 0.5},  # absolute
            {"file": "./f2.wav", "arousal": 0.4},  # an alias: normalised
            {"file": "f2.wav", "arousal": 0.6},  # the same file again
        ],
    )
    assert _files(tmp_path / "work") == before  # nothing changed, victim intact
    reasons = dict(report.problems)
    for bad in ("../../victim/notes.wav", "../../evil.wav", str(audio / "f1.wav")):
        assert "absolute or leaves the folder" in reasons[bad], bad
    assert reasons["f2.wav"].startswith("duplicate file")
    assert report.kept == 2
    evalset = load_split(load_registry(tmp_path / "own.yaml")["mine"], "test", repositories=[report.repository])
    assert sorted(Path(f).name for f in evalset.files) == ["f0.wav", "f2.wav"]
    assert evalset.truth["arousal"].round(3).tolist() in ([0.5, 0.4], [0.4, 0.5])


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    audio = _folder(tmp_path)
    outside = tmp_path / "secret.wav"
    audiofile.write(str(outside), tone(0.5, 100), SR)
    (audio / "link.wav").symlink_to(outside)
    report = _import(tmp_path, audio, [{"file": "f0.wav", "arousal": 0.5}, {"file": "link.wav", "arousal": 0.5}])
    assert "resolves outside" in dict(report.problems)["link.wav"]
    assert report.kept == 1


def test_a_non_utf8_csv_is_a_clear_error(tmp_path, capsys):
    audio = _folder(tmp_path)
    csv = tmp_path / "labels.csv"
    csv.write_bytes("file,emotion,speaker\nf0.wav,anger,J\xfcrgen\n".encode("latin-1"))
    code = cli.main(["import-dataset", str(audio), "--csv", str(csv), "--name", "mine", "--version", "1.0.0",
                     "--repository", f"own={tmp_path / 'repo'}", "--datasets", str(tmp_path / "own.yaml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "not UTF-8" in err and "iconv" in err and "Traceback" not in err
    assert not (tmp_path / "own.yaml").exists()


def test_a_csv_without_label_columns_burns_no_version(tmp_path):
    audio = _folder(tmp_path)
    with pytest.raises(DatasetConfigError, match="no label column"):
        _import(tmp_path, audio, [{"file": "f0.wav", "speaker": "a"}, {"file": "f1.wav", "speaker": "b"}])
    assert not (tmp_path / "own.yaml").exists()
    # the retry with labels may use the same version: nothing was published
    report = _import(tmp_path, audio, [{"file": "f0.wav", "valence": 0.2}, {"file": "f1.wav", "valence": 0.9}])
    assert report.kept == 2 and report.entry["version"] == "1.0.0"
    assert yaml.safe_load((tmp_path / "own.yaml").read_text())["datasets"][0]["labels"] == {"valence": "valence"}


def test_an_unreadable_registry_file_burns_no_version(tmp_path):
    audio = _folder(tmp_path)
    (tmp_path / "own.yaml").write_text("datasets: [unclosed\n")
    with pytest.raises(DatasetConfigError, match="nothing published"):
        _import(tmp_path, audio, [{"file": "f0.wav", "valence": 0.2}])
    (tmp_path / "own.yaml").unlink()
    assert _import(tmp_path, audio, [{"file": "f0.wav", "valence": 0.2}]).kept == 1
