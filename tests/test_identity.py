"""A model's identity is the bytes that predict, not its paperwork (issue 33).

The artefact hash (:func:`benchmark.hashing.artifact_sha256`) leaves
provenance records out; a re-distillation that yields the same network
keeps the pinned hash, ``models.yaml`` and the committed results; and
``python -m benchmark migrate-hashes`` re-keys results recorded under the
old whole-folder hash, once.
"""

from __future__ import annotations

import json
import shutil

import pytest
from test_distill import FeatureTeacher, config, models_yaml, pool, run  # noqa: F401 (fixtures)
from test_teachers import ADV, _tiny_onnx

import benchmark
from benchmark import migrations, results
from benchmark.distill import provenance_runs
from benchmark.docs import inputs as docs_inputs
from benchmark.hashing import artifact_sha256, sha256_file, sha256_tree
from benchmark.registry import Registry, RegistryError, load_model
from benchmark.suite import run_suite


def one_model(name: str, folder, sha: str | None = None) -> str:
    source = f"{{path: '{folder}'" + (f", sha256: {sha}}}" if sha else "}")
    return (
        f"models:\n  - name: {name}\n    kind: audonnx\n    role: student\n    source: {source}\n"
        f"    sampling_rate: 16000\n    outputs: {ADV}\n    description: test\n"
    )


def test_artifact_hash_covers_the_bytes_that_predict(tmp_path):
    folder = tmp_path / "m"
    _tiny_onnx(folder)
    sha = artifact_sha256(folder)
    assert sha == sha256_tree(folder)  # a folder of model files only hashes as before
    # records do not change the identity ...
    (folder / "provenance.json").write_text(json.dumps({"code": {"code_commit": "abc"}, "date": "2026-12-05"}))
    (folder / "README.md").write_text("how it was made\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: main\n")
    assert artifact_sha256(folder) == artifact_sha256(folder / "model.yaml") == sha != sha256_tree(folder)
    model = load_model("m", Registry.from_yaml_text(one_model("m", folder, sha)))
    assert model.artifact_hash == sha
    # ... every file that can change a prediction does
    yaml_text = (folder / "model.yaml").read_text()
    (folder / "model.yaml").write_text(yaml_text.replace("- valence", "- val"))
    assert artifact_sha256(folder) != sha
    (folder / "model.yaml").write_text(yaml_text)
    (folder / "model.onnx.data").write_bytes(b"external weights")  # ONNX external data, any name
    assert artifact_sha256(folder) != sha
    (folder / "model.onnx.data").unlink()
    onnx = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(onnx[:-1] + bytes([onnx[-1] ^ 1]))
    assert artifact_sha256(folder) != sha
    (folder / "model.onnx").write_bytes(onnx)
    assert artifact_sha256(folder) == sha
    # a file is its bytes; a folder of records only is no model
    assert artifact_sha256(folder / "model.onnx", "egemaps") == sha256_file(folder / "model.onnx")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "provenance.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no model files"):
        artifact_sha256(empty)


def test_registry_names_the_migration_for_a_whole_folder_hash(tmp_path):
    folder = tmp_path / "m"
    _tiny_onnx(folder)
    (folder / "provenance.json").write_text('{"code": "old"}')
    with pytest.raises(RegistryError, match="hash of the whole folder.*migrate-hashes"):
        Registry.from_yaml_text(one_model("m", folder, sha256_tree(folder)))
    with pytest.raises(RegistryError, match="checksum mismatch"):
        Registry.from_yaml_text(one_model("m", folder, "ab" * 32))


def test_redistilled_same_network_keeps_identity(
    tmp_path,
    pool,
    models_yaml,
    dataset_registry,
    audb_repository,
    monkeypatch,
):
    def code_version(version: str, commit: str) -> None:
        monkeypatch.setattr(benchmark, "__version__", version)
        monkeypatch.setattr(results, "code_commit", lambda: commit)

    def benchmark_it():
        registry = Registry.from_file(models_yaml)  # validates source.sha256 against the weights
        report = run_suite(
            "tiny",
            tests=["correctness"],
            data="real",
            repositories=[audb_repository],
            registry=registry,
            dataset_registry=dataset_registry,
            splits=["test-1"],
            options={"bootstrap": 50},
            progress=False,
            log=lambda m: None,
        )
        assert report.ok, report.failures
        return report

    code_version("0.0.1", "aaaaaaaaaaaa")
    first = run(config(tmp_path, pool, models_yaml))
    registered = models_yaml.read_text()
    sha, tree = artifact_sha256(first.out), sha256_tree(first.out)
    onnx = (first.out / "model.onnx").read_bytes()
    records = results.results_root() / "distill" / "tiny"
    history = {name: (records / name).read_bytes() for name in ("history.csv", "training_curve.png")}
    report = benchmark_it()
    assert report.model_sha256 == sha
    table = results.table_path("correctness").read_bytes()
    predictions = sorted(p.name for p in (results.results_root() / "predictions").iterdir())

    code_version("0.0.2", "bbbbbbbbbbbb")
    second = run(config(tmp_path, pool, models_yaml, resume=False))  # trained again from scratch
    assert (second.out / "model.onnx").read_bytes() == onnx
    assert sha256_tree(second.out) != tree  # the records changed (the old rule would call it a new model) ...
    assert artifact_sha256(second.out) == sha  # ... the identity did not
    assert models_yaml.read_text() == registered
    # the history keeps no wall times: the same training writes it, and its plot, byte for byte
    assert {name: (records / name).read_bytes() for name in history} == history
    # the provenance is refreshed and keeps what it recorded of the first run
    record = json.loads((second.out / "provenance.json").read_text())
    assert record["code"] == {"benchmark_version": "0.0.2", "code_commit": "bbbbbbbbbbbb"}
    assert record[provenance_runs.RUNS_KEY] == [{"code": {"benchmark_version": "0.0.1", "code_commit": "aaaaaaaaaaaa"}}]
    full = json.loads((results.results_root() / "distill" / "tiny" / "provenance.json").read_text())
    assert (
        full["student"]["sha256"] == sha and full[provenance_runs.RUNS_KEY][0]["code"]["benchmark_version"] == "0.0.1"
    )
    # the benchmark sees the same artefact: no new rows, no new predictions, one artefact on the leaderboard
    assert benchmark_it().model_sha256 == sha
    assert results.table_path("correctness").read_bytes() == table
    assert sorted(p.name for p in (results.results_root() / "predictions").iterdir()) == predictions
    inputs = docs_inputs.load_inputs(results.results_root(), models_yaml)
    artefacts = docs_inputs.artefact_dates(inputs.tables)
    assert artefacts[artefacts["model"] == "tiny"]["model_sha256"].tolist() == [sha]
    assert inputs.current["tiny"] == sha
    # the same code once more: the model folder's record stays byte for byte
    before = (second.out / "provenance.json").read_bytes()
    third = run(config(tmp_path, pool, models_yaml, resume=False))
    assert (third.out / "provenance.json").read_bytes() == before


# --- migration --------------------------------------------------------------------------


def old_project(tmp_path):
    r"""A project as committed before the rule: two local models pinned by whole-folder hashes, results keyed by them."""
    root = tmp_path / "project"
    for name in ("student", "student-int8"):
        _tiny_onnx(root / "weights" / name)
    teacher = root / "weights" / "student"  # the int8 model names it as its teacher, as a distilled entry may
    (teacher / "provenance.json").write_text('{"code": {"code_commit": "af8dfe679f8a"}}\n')
    (root / "weights" / "student-int8" / "provenance.json").write_text('{"quantized_from": "student"}\n')
    old = {n: sha256_tree(root / "weights" / n) for n in ("student", "student-int8")}
    (root / "models.yaml").write_text(
        "# comments stay\nmodels:\n"
        f"  - name: student\n    kind: audonnx\n    role: student\n"
        f"    source: {{path: weights/student, sha256: {old['student']}}}\n"
        f"    sampling_rate: 16000\n    outputs: {ADV}\n    description: fp32\n\n"
        f"  - name: student-int8\n    kind: audonnx\n    role: student\n"
        f"    source: {{path: weights/student-int8, sha256: {old['student-int8']}}}\n"
        f"    sampling_rate: 16000\n    outputs: {ADV}\n    description: int8\n"
        f"    distilled: {{teacher: student, teacher_sha256: {old['student']}, seed: 0}}\n"
    )
    res = root / "results"
    (res / "distill" / "student").mkdir(parents=True)
    header = "model,model_sha256,dataset,dataset_version,data_fingerprint,split,dimension,ccc,benchmark_version,code_commit,date\n"
    rows = "".join(
        f"{m},{h},demo-msppodcast,1.0.0,1b5d86382609,test-1,{d},0.5,0.11.1,af8dfe679f8a,2026-12-01\n"
        for m, h in [*old.items(), ("student", "9" * 64)]
        for d in ("arousal", "valence")
    )  # the last model: an earlier network of 'student' whose weights are gone
    (res / "correctness.csv").write_text(header + rows)
    for m, h in old.items():
        (res / "predictions" / f"{m}__{h[:12]}").mkdir(parents=True)
        (res / "predictions" / f"{m}__{h[:12]}" / "demo-msppodcast__1.0.0__test-1.csv").write_text(f"file,pred_{m}\n")
    (res / "distill" / "student" / "targets.json").write_text(
        json.dumps({"models": {"fp32": {"sha256": old["student"]}, "int8": {"sha256": old["student-int8"]}}}, indent=2)
    )
    return root, old


def snapshot(root) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_migrate_hashes_rekeys_committed_results_once(tmp_path, capsys, monkeypatch):
    root, old = old_project(tmp_path)
    new = {n: artifact_sha256(root / "weights" / n) for n in old}
    with pytest.raises(RegistryError, match="migrate-hashes"):
        Registry.from_file(root / "models.yaml")
    before = snapshot(root)
    dry = migrations.migrate_hashes(root / "models.yaml", root / "results", dry_run=True)
    assert snapshot(root) == before and dry.mapping == {old[n]: new[n] for n in old}
    cache = tmp_path / "cache"
    (cache / "predictions" / "student" / old["student"][:16] / "clean").mkdir(parents=True)
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(cache))

    from benchmark.cli import main

    assert main(["migrate-hashes", "--models", str(root / "models.yaml"), "--results", str(root / "results")]) == 0
    assert f"student: {old['student'][:12]} -> {new['student'][:12]}" in capsys.readouterr().out
    # the prediction cache follows: the benchmark does not predict again
    assert sorted(p.name for p in (cache / "predictions" / "student").iterdir()) == [new["student"][:16]]
    registry = Registry.from_file(root / "models.yaml")  # valid again
    assert registry["student"].source["sha256"] == new["student"]
    assert registry["student-int8"].distilled["teacher_sha256"] == new["student"]
    text = (root / "models.yaml").read_text()
    assert text.startswith("# comments stay\n") and not any(h in text for h in old.values())
    table = results.read_table("correctness", root / "results")
    assert set(table["model_sha256"]) == {*new.values(), "9" * 64}  # the network whose weights are gone: as it was
    # rows sorted by the table's key, as a run writes them: the next run leaves the file byte for byte
    text = (root / "results" / "correctness.csv").read_text()
    assert migrations.sorted_table("correctness", text) == text
    assert sorted(p.name for p in (root / "results" / "predictions").iterdir()) == sorted(
        f"{n}__{h[:12]}" for n, h in new.items()
    )
    targets = json.loads((root / "results" / "distill" / "student" / "targets.json").read_text())
    assert targets["models"]["fp32"]["sha256"] == new["student"]
    # the leaderboard shows each network once, under its new hash
    inputs = docs_inputs.load_inputs(root / "results", root / "models.yaml")
    assert inputs.current == new and len(docs_inputs.artefact_dates(inputs.tables)) == 3
    # idempotent: a second run finds nothing and changes nothing
    after = snapshot(root)
    again = migrations.migrate_hashes(root / "models.yaml", root / "results")
    assert not again.mapping and not again.changed and snapshot(root) == after


def test_migrate_hashes_stops_on_clashing_rows_and_finishes_on_rerun(tmp_path):
    root, old = old_project(tmp_path)
    new = artifact_sha256(root / "weights" / "student")
    # the model was benchmarked under its new hash before the migration: rows would clash
    path = root / "results" / "correctness.csv"
    clean = path.read_text()
    path.write_text(clean + clean.splitlines()[1].replace(old["student"], new) + "\n")
    models = (root / "models.yaml").read_text()
    out = migrations.migrate_hashes(root / "models.yaml", root / "results")
    assert out.blocked and "correctness.csv" in out.problems[0] and "delete the rows" in out.problems[0]
    assert path.read_text().count(old["student"]) == 2  # that table is left as it was
    assert (root / "models.yaml").read_text() == models  # not marked as done: a rerun finishes the job
    path.write_text(clean)  # the rows under the new hash deleted, as the message says
    out = migrations.migrate_hashes(root / "models.yaml", root / "results")
    assert not out.blocked and Registry.from_file(root / "models.yaml")["student"].source["sha256"] == new
    assert old["student"] not in path.read_text()
    # weights that are gone cannot be re-hashed: reported, their pin left as it is
    shutil.rmtree(root / "weights" / "student-int8")
    (root / "models.yaml").write_text(models)
    out = migrations.hash_mapping(root / "models.yaml")
    assert list(out.mapping) == [old["student"]] and "student-int8" in out.problems[0]
