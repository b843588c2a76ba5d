"""A model's identity is the bytes that predict, not its paperwork.

The artefact hash (:func:`benchmark.hashing.artifact_sha256`) leaves
provenance records out; a re-distillation that yields the same network
keeps the pinned hash, ``models.yaml`` and the committed results; and a
pin of the old whole-folder hash is refused with the artefact hash to pin.
"""

from __future__ import annotations

import json

import pytest
from test_distill import FeatureTeacher, config, models_yaml, pool, run  # noqa: F401 (fixtures)
from test_teachers import ADV, _tiny_onnx

import benchmark
from benchmark import results
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


def test_registry_names_the_artefact_hash_for_a_whole_folder_pin(tmp_path):
    folder = tmp_path / "m"
    _tiny_onnx(folder)
    (folder / "provenance.json").write_text('{"code": "old"}')
    with pytest.raises(RegistryError, match="hash of the whole folder.*Pin that artefact hash"):
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
