"""Loading is strict and partial: clear errors for lookups that match nothing, only the split's media, no abort.

Each probe is a real database published to a file-system audb
repository, with one thing wrong in it.
"""

from __future__ import annotations

from pathlib import Path

import audb
import audformat
import pandas as pd
import pytest
import yaml
from conftest import build_database, publish
from test_own_data import MODELS, WEIGHTS

from benchmark import cli, results
from benchmark.data.datasets import DatasetConfigError, load_registry, load_split

ENTRY = {
    "name": "probe",
    "audb": "probe",
    "version": "1.0.0",
    "splits": {"test-1": "emotion.dimensions.test-1.gold_standard"},
    "labels": {"arousal": "arousal", "dominance": "dominance", "valence": "valence"},
    "label_range": [1, 7],
    "speaker": {"table": "files", "column": "speaker"},
    "sex": {"table": "speaker", "column": "gender"},
}


def _publish(tmp_path: Path, modify=None, name: str = "probe") -> audb.Repository:
    build = tmp_path / f"build-{name}"
    db = build_database(build, n_speakers=4, per_speaker=4, name=name)
    if modify:
        modify(db)
    db.save(str(build))
    host = tmp_path / "host"
    repo = audb.Repository("probes", str(host), "file-system")
    (host / "probes").mkdir(parents=True, exist_ok=True)
    publish(build, "1.0.0", repo, cache_root=str(tmp_path / "publish-cache"))
    return repo


def _load(tmp_path, repo, **changes):
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump({"datasets": [{**ENTRY, **changes}]}))
    return load_split(load_registry(path)["probe"], "test-1", data="real", repositories=[repo])


def _run_wav2small(tmp_path: Path, repo: audb.Repository, registry: Path) -> int:
    r"""``run`` of the committed wav2small on test-1 of the datasets in ``registry`` (correctness only); its exit code."""
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    argv = ["run", "--model", "wav2small", "--models", str(models), "--datasets", str(registry), "--data", "real"]
    argv += ["--repository", f"{repo.name}={repo.host}", "--tests", "correctness", "--bootstrap", "10"]
    return cli.main([*argv, "--split", "test-1", "--no-progress", "--no-docs"])


def _int_speakers(db) -> None:
    r"""The misc table indexed by integers 0..3; ``files.speaker`` keeps the strings ``spk00``..."""
    genders = db["speaker"]["gender"].get().to_list()
    db.schemes["speaker"] = audformat.Scheme("str")  # no longer labelled by the misc table
    db.drop_tables("speaker")
    db["speaker"] = audformat.MiscTable(pd.Index(range(len(genders)), name="speaker", dtype="Int64"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(genders)


def test_integer_ids_against_string_ids_are_an_error_naming_the_types(tmp_path):
    repo = _publish(tmp_path, _int_speakers)
    with pytest.raises(DatasetConfigError) as info:
        _load(tmp_path, repo)
    message = str(info.value)
    assert "table 'speaker', column 'gender'" in message and "Int64" in message and "spk00" in message


def test_integer_ids_on_both_sides_match(tmp_path):
    def both(db):
        _int_speakers(db)
        files = db["files"]["speaker"].get()
        db.schemes["speaker"] = audformat.Scheme("int")
        db["files"].drop_columns("speaker")
        db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
        db["files"]["speaker"].set([int(s[3:]) for s in files])

    evalset = _load(tmp_path, _publish(tmp_path, both))
    expected = {str(i): "female" if i % 2 == 0 else "male" for i in range(4)}  # build_database alternates
    assert evalset.sex.notna().all()
    assert all(expected[s] == x for s, x in zip(evalset.speaker, evalset.sex))


def test_a_label_range_ten_times_too_wide_names_the_scale(tmp_path):
    repo = _publish(tmp_path)
    with pytest.raises(DatasetConfigError, match=r"1\.\.7"):
        _load(tmp_path, repo, label_range=[1, 70])


def test_a_label_range_wider_than_values_without_scheme_bounds_names_the_scale(tmp_path):
    def no_bounds(db):
        db.schemes["emotion"] = audformat.Scheme("float")

    with pytest.raises(DatasetConfigError, match=r"looks like the scale 1\.\.7, not 1\.\.70"):
        _load(tmp_path, _publish(tmp_path, no_bounds), label_range=[1, 70])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("speaker", {"table": "speakers", "column": "speaker"}, "speaker table 'speakers' declared in datasets.yaml"),
        ("sex", {"table": "gender", "column": "gender"}, "sex table 'gender' declared in datasets.yaml"),
        ("sex", {"table": "speaker", "column": "sex"}, "table 'speaker', column 'sex': no such column"),
    ],
)
def test_a_declared_table_or_column_that_does_not_exist(tmp_path, field, value, message):
    repo = _publish(tmp_path)
    with pytest.raises(DatasetConfigError, match=message):
        _load(tmp_path, repo, **{field: value})


def test_sex_values_other_than_female_and_male_are_named(tmp_path):
    def other(db):
        db.schemes["free"] = audformat.Scheme("str")
        db["speaker"].drop_columns("gender")
        db["speaker"]["gender"] = audformat.Column(scheme_id="free")
        db["speaker"]["gender"].set(["divers", "M", "male", "female"])  # spk00, spk01 are in test-1

    with pytest.raises(DatasetConfigError, match=r"\['divers', 'm'\] are neither female nor male"):
        _load(tmp_path, _publish(tmp_path, other))


def test_one_speaker_with_two_sexes(tmp_path):
    def per_file(db):
        db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
        db["files"]["gender"] = audformat.Column(scheme_id="gender")
        sexes = ["female"] * len(db["files"])
        sexes[1] = "male"  # spk00's second file
        db["files"]["gender"].set(sexes)

    with pytest.raises(DatasetConfigError, match=r"\['spk00'\] have files labelled both female and male"):
        _load(tmp_path, _publish(tmp_path, per_file), sex={"table": "files", "column": "gender"})


def test_only_the_split_s_media_is_needed(tmp_path, monkeypatch, capsys):
    repo = _publish(tmp_path)
    monkeypatch.setattr(audb.config, "REPOSITORIES", [repo])
    deps = audb.dependencies("probe", version="1.0.0", cache_root=str(tmp_path / "publish-cache"), verbose=False)
    media = deps.media
    test_files = set(load_split_files(tmp_path))
    removed = 0
    for file in media:
        if file not in test_files:
            archive = deps.archive(file)
            for path in (Path(repo.host) / repo.name / "probe" / "media" / "1.0.0").glob(f"{archive}*"):
                path.unlink()
                removed += 1
    assert removed == len(media) - len(test_files) > 0
    evalset = _load(tmp_path, repo)
    assert sorted(Path(f).name for f in evalset.files) == sorted(Path(f).name for f in test_files)
    assert all(Path(f).is_file() for f in evalset.files)
    # and a benchmark run on that repository scores every test file
    assert _run_wav2small(tmp_path, repo, tmp_path / "reg.yaml") == cli.EXIT_OK, capsys.readouterr()
    table = results.read_table("correctness")
    assert set(table["dataset"]) == {"probe"} and set(table["n"]) == {len(test_files)}


def load_split_files(tmp_path: Path) -> list[str]:
    r"""The files of ``test-1`` as the database built in the test lists them (read from its build folder)."""
    db = audformat.Database.load(str(tmp_path / "build-probe"))
    return list(db["emotion.dimensions.test-1.gold_standard"].files)


def test_audb_s_configured_repositories_are_used_and_kept(tmp_path, monkeypatch):
    repo = _publish(tmp_path)
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump({"datasets": [ENTRY]}))
    configured = [audb.Repository("elsewhere", str(tmp_path / "nothing"), "file-system"), repo]
    monkeypatch.setattr(audb.config, "REPOSITORIES", list(configured))
    evalset = load_split(load_registry(path)["probe"], "test-1", data="real")
    assert len(evalset.files) == 8
    assert audb.config.REPOSITORIES == configured


def test_a_dataset_that_cannot_load_is_reported_and_the_others_run(tmp_path, capsys):
    repo = _publish(tmp_path)
    registry = tmp_path / "reg.yaml"
    ghost = {**ENTRY, "name": "ghost", "audb": "ghost"}
    registry.write_text(yaml.safe_dump({"datasets": [ghost, ENTRY]}))
    code = _run_wav2small(tmp_path, repo, registry)
    out = capsys.readouterr().out
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "ghost" in failed[0] and "version 1.0.0 not found" in failed[0]
    table = results.read_table("correctness")
    assert set(table["dataset"]) == {"probe"} and len(table) == 3


def test_sex_through_the_speaker_scheme_s_mapping(tmp_path):
    r"""audEERING's iemocap layout: a filewise table ``speaker`` whose scheme labels carry the gender."""

    def iemocap_like(db):
        genders = db["speaker"]["gender"].get()
        speakers = db["files"]["speaker"].get().to_list()
        db.schemes["speaker"] = audformat.Scheme("str")  # no longer labelled by the misc table
        db.drop_tables("speaker")
        db.schemes["spk"] = audformat.Scheme("str", labels={s: {"gender": g} for s, g in genders.items()})
        db["speaker"] = audformat.Table(db["files"].index)
        db["speaker"]["speaker"] = audformat.Column(scheme_id="spk")
        db["speaker"]["speaker"].set(speakers)

    evalset = _load(
        tmp_path,
        _publish(tmp_path, iemocap_like),
        speaker={"table": "speaker", "column": "speaker"},
        sex={"table": "speaker", "column": "speaker", "map": "gender"},
    )
    expected = {"spk00": "female", "spk01": "male"}  # build_database alternates, from female
    assert dict(zip(evalset.speaker, evalset.sex)) == expected


def test_a_replica_s_overrides_are_checked_as_an_entry():
    from benchmark.data.datasets import entry_problems

    raw = {**ENTRY, "demo": {"name": "demo-x", "version": "1.0.0", "label_range": [7, 1], "colour": "red"}}
    problems = entry_problems(raw)
    assert any("unknown field(s) ['colour']" in p for p in problems)
    assert any(p.startswith("field 'demo' (the replica's view): field 'label_range'") for p in problems)
    assert entry_problems({**raw, "demo": {"name": "demo-x", "version": "1.0.0", "label_range": [1, 7]}}) == []
