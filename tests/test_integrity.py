"""Results integrity and input hardening: one section per defect a user could once run into.

1. a run with other settings never replaces published rows; predictions are named by their data
2. unpinned downloads are keyed by URL and verified against their recorded digest
3. one bad file never aborts robustness
4. every name that becomes a path is validated
5. datasets.yaml is checked up front; data and repository errors are clear
6. smaller defects: outputs a model lacks, fairness group size, truncated WAVs, ``list --datasets``
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import audb
import audiofile
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BASELINES_YAML, tone

from benchmark import analyses, paths, prediction_cache, results, runner
from benchmark.analyses import fairness, perturbations, robustness
from benchmark.analyses.perturbations.memory import Perturber
from benchmark.cli import build_parser, main
from benchmark.data.datasets import DatasetConfigError, EvalSet, load_registry, load_split
from benchmark.models import download
from benchmark.paths import PROJECT_ROOT
from benchmark.registry import Registry, load_model
from benchmark.suite import run_suite

SR = 16000


@pytest.fixture
def cli_args(tmp_path, dataset_registry, audb_repository):
    r"""Arguments that point ``python -m benchmark run`` at the test corpus and the baselines."""
    models = tmp_path / "models.yaml"
    models.write_text(BASELINES_YAML)
    return [
        "--models",
        str(models),
        "--datasets",
        str(tmp_path / "datasets.yaml"),
        "--data",
        "real",
        "--repository",
        f"{audb_repository.name}={audb_repository.host}",
        "--no-docs",
        "--no-progress",
    ]


# ------------------------------------------------------------------ 1. settings and predictions


def test_other_settings_never_replace_rows_and_results_dir_takes_them(cli_args, tmp_path, capsys):
    run = ["run", "--model", "constant", "--tests", "correctness", *cli_args]
    assert main(run) == 0
    table = results.table_path("correctness")
    published = table.read_bytes()
    assert results.read_settings() == {"seed": 0, "bootstrap": 1000, "ci_unit": "speaker"}
    capsys.readouterr()

    assert main([*run, "--bootstrap", "10", "--seed", "7"]) == 2
    message = capsys.readouterr().err
    assert "seed 0, bootstrap 1000" in message and "seed 7, bootstrap 10" in message and "--results DIR" in message
    robust = [
        "run",
        "--model",
        "constant",
        "--tests",
        "robustness",
        "--conditions",
        "gain",
        "--max-files",
        "5",
        *cli_args,
    ]
    assert main(robust) == 0  # a fresh setting (max_files) is recorded, nothing replaced
    assert set(results.read_table("runs")["tests"]) == {"correctness", "robustness[gain]"}  # the selection is on record
    assert main([*robust[: -len(cli_args)], "--max-files", "3", *cli_args]) == 2  # but not changed afterwards
    assert "max_files 5" in capsys.readouterr().err
    assert table.read_bytes() == published

    other = tmp_path / "quick"
    assert main([*run, "--bootstrap", "10", "--seed", "7", "--results", str(other)]) == 0
    assert table.read_bytes() == published
    assert results.read_settings(other) == {"seed": 7, "bootstrap": 10, "ci_unit": "speaker"}
    quick = results.read_table("correctness", other)
    assert len(quick) == 6 and (quick["ccc"].astype(float) == 0).all()


def test_cli_defaults_are_the_committed_settings(tmp_path):
    defaults = build_parser().parse_args(["run", "--model", "x"])
    assert {
        "seed": defaults.seed,
        "bootstrap": defaults.bootstrap,
        "max_files": defaults.max_files,
        "ci_unit": defaults.ci_unit,
    } == results.DEFAULT_SETTINGS
    committed = PROJECT_ROOT / "results" / results.SETTINGS_FILE
    assert results.read_settings(committed.parent) == results.DEFAULT_SETTINGS
    shutil.copy(committed, tmp_path / committed.name)
    settings = results.run_settings(
        defaults.seed,
        {"bootstrap": defaults.bootstrap, "max_files": defaults.max_files, "ci_unit": defaults.ci_unit},
        analyses.FAMILIES,
    )
    results.claim_settings(settings, tmp_path)
    assert (tmp_path / committed.name).read_bytes() == committed.read_bytes()  # a default run leaves it as it is


def test_tables_without_settings_file_were_made_with_defaults(tmp_path):
    rows = pd.DataFrame(
        [
            {
                "model": "m",
                "model_sha256": "0" * 64,
                "dataset": "d",
                "dataset_version": "1",
                "data_fingerprint": "0" * 12,
                "split": "test",
                "dimension": "arousal",
                "ccc": 0.5,
            }
        ]
    )
    results.write_rows("correctness", rows, root=tmp_path)
    with pytest.raises(results.SettingsConflictError, match="bootstrap 1000.*bootstrap 50"):
        results.claim_settings({"seed": 0, "bootstrap": 50}, tmp_path)
    results.claim_settings({"seed": 0, "bootstrap": 1000}, tmp_path)


def _evalset(root: Path, labels, fingerprint: str) -> EvalSet:
    files = [str(root / f"{i}.wav") for i in range(len(labels))]
    truth = pd.DataFrame({"arousal": labels}, index=pd.Index(files, name="file"))
    return EvalSet("d", "d", "1.0.0", "test", "t", truth, None, None, str(root), fingerprint)


def test_predictions_of_other_data_get_a_file_of_their_own(tmp_path):
    first = _evalset(tmp_path / "db", [0.1, 0.5], "a" * 64)
    other = _evalset(tmp_path / "db", [0.9, 0.2], "b" * 64)  # same name, version, split; other labels
    prediction = pd.DataFrame({"arousal": [0.3, 0.4]}, index=first.files)
    a = results.write_predictions("m", "0" * 64, first, prediction, root=tmp_path)
    b = results.write_predictions("m", "0" * 64, other, prediction, root=tmp_path)
    assert a != b and a.name == "d__1.0.0__test__aaaaaaaaaaaa.csv"
    assert pd.read_csv(a)["truth_arousal"].tolist() == [0.1, 0.5]
    assert pd.read_csv(b)["truth_arousal"].tolist() == [0.9, 0.2]
    correctness = pd.DataFrame(
        [
            {
                "model": "m",
                "model_sha256": "0" * 64,
                "dataset": "d",
                "dataset_version": "1.0.0",
                "split": "test",
                "data_fingerprint": "b" * 12,
                "date": "2026-12-05",
            }
        ]
    )
    found = results.read_predictions("m", "0" * 64, "d", "1.0.0", "test", correctness, tmp_path)
    assert found["truth_arousal"].tolist() == [0.9, 0.2]


def test_committed_predictions_are_named_by_their_data():
    root = PROJECT_ROOT / "results"
    columns = ["model", "model_sha256", "dataset", "dataset_version", "split", "data_fingerprint"]
    # A/D/V corpora are scored in correctness, categorical ones (real speech) in consistency
    scored = [results.read_table(table, root) for table in ("correctness", "consistency")]
    keys = pd.concat([t[columns] for t in scored if len(t)]).drop_duplicates()
    stored = set((root / "predictions").glob("*/*.csv"))
    expected = {results.predictions_path(*key, root=root) for key in keys.itertuples(index=False)}
    assert stored and stored <= expected  # every stored file carries the fingerprint of the rows it belongs to


# ------------------------------------------------------------------ 2. downloads


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    httpd.shutdown()
    httpd.server_close()


def _archive(path: Path, payload: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.yaml", payload)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unpinned_archives_with_one_file_name_do_not_collide(server):
    base, root, requests = server
    first = _archive(root / "a" / "model.zip", b"first: 1\n")
    second = _archive(root / "b" / "model.zip", b"second: 2\n")
    a = download.fetch(f"{base}/a/model.zip", download.UNPINNED, model="a", verbose=False)
    b = download.fetch(f"{base}/b/model.zip", download.UNPINNED, model="b", verbose=False)
    assert a != b
    assert hashlib.sha256(a.read_bytes()).hexdigest() == download.recorded_sha256(a) == first
    assert hashlib.sha256(b.read_bytes()).hexdigest() == download.recorded_sha256(b) == second
    assert download.fetch(f"{base}/b/model.zip", download.UNPINNED, model="b", verbose=False) == b
    assert len(requests) == 2  # reused from the cache, verified against the recorded digest


def test_unpinned_cached_file_is_verified_on_every_use(server):
    base, root, requests = server
    _archive(root / "model.zip", b"x: 1\n")
    url = f"{base}/model.zip"
    path = download.fetch(url, download.UNPINNED, model="m", verbose=False)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(download.ChecksumError, match="checksum mismatch"):
        download.fetch(url, download.UNPINNED, model="m", verbose=False)
    assert not path.exists()
    # a file put there by hand has no recorded digest: it is not trusted, the archive is fetched again
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not the archive")
    again = download.fetch(url, download.UNPINNED, model="m", verbose=False)
    assert again.read_bytes() == (root / "model.zip").read_bytes() and len(requests) == 2


# ------------------------------------------------------------------ 3. robustness


def _files(root: Path, seconds: list[float]) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for i, s in enumerate(seconds):
        path = root / f"f{i:02d}.wav"
        audiofile.write(str(path), tone(s, 150 + 10 * i, seed=i), SR)
        files.append(str(path))
    return files


def _context(evalset, skips: list):
    model = load_model("random-gaussian", Registry.from_yaml_text(BASELINES_YAML))

    def predict(files=None, condition=None):
        # a condition's files are perturbed in memory as the executors' workers do it
        source = None if condition is None else Perturber(condition, root_key="tiny-1.0.0", seed=0, root=evalset.root)
        pred, skipped = runner.predict(model, evalset, files, condition=condition, progress=False, source=source)
        skips.append((prediction_cache.condition_key(condition), skipped))
        return pred

    return analyses.Context(
        model,
        types_entry(),
        evalset,
        predict,
        predict(),
        seed=0,
        options={"babble_files": [], "max_files": None},
        record_skips=lambda frame, condition: skips.append((prediction_cache.condition_key(condition), frame)),
    )


def types_entry():
    import types

    return types.SimpleNamespace(
        name="random-gaussian", role="baseline", dimensions=("arousal", "dominance", "valence")
    )


def test_bad_files_are_skips_of_their_condition_never_abort_robustness(tmp_path):
    root = tmp_path / "db"
    files = _files(root, [1.2, 1.5, 0.6, 1.3, 1.1, 1.4])
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage")
    audiofile.write(str(root / "empty.wav"), np.zeros(0, dtype="float32"), SR)
    files += [str(root / "corrupt.wav"), str(root / "empty.wav")]
    truth = pd.DataFrame(
        {d: np.linspace(0.1, 0.9, len(files)) for d in ("arousal", "dominance", "valence")},
        index=pd.Index(files, name="file"),
    )
    evalset = EvalSet("tiny", "tiny", "1.0.0", "test", "t", truth, None, None, str(root))
    skips: list = []
    context = _context(evalset, skips)
    clean_skipped = set(skips[0][1].index)
    assert clean_skipped == {str(root / "corrupt.wav"), str(root / "empty.wav")}
    # a file the clean run scored that becomes unreadable before it is perturbed
    Path(files[3]).write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage")
    crop = {"name": "crop-start", "group": "small-changes", "type": "crop-start", "parameters": {"samples": 12000}}
    clip = {"name": "clip", "group": "small-changes", "type": "clip", "parameters": {"ratio": 0.05}}
    context.options["conditions"] = [crop, clip]
    rows = robustness.run(context)["robustness"]
    assert set(rows["condition"]) == {"crop-start", "clip"}
    n = rows.groupby("condition")["n"].first().to_dict()
    assert n == {"clip": 5, "crop-start": 4}  # 6 scored files; f03 unreadable now; f02 (0.6 s) too short to crop
    recorded = {}
    for key, frame in skips[1:]:
        for file, reason in frame["reason"].items():
            recorded.setdefault(key.split("-")[0], {})[Path(file).name] = reason
    assert set(recorded["crop"]) == {"f02.wav", "f03.wav"} and set(recorded["clip"]) == {"f03.wav"}
    assert recorded["clip"]["f03.wav"].startswith("unreadable audio")
    assert "corrupt.wav" not in recorded["clip"] and "empty.wav" not in recorded["clip"]  # never perturbed


def test_clip_of_an_empty_signal_is_a_perturbation_error():
    clip = {"name": "clip", "group": "x", "type": "clip", "parameters": {"ratio": 0.05}}
    with pytest.raises(perturbations.PerturbationError, match="empty audio"):
        perturbations.perturb(np.zeros((1, 0), dtype="float32"), SR, clip, seed=0)


# ------------------------------------------------------------------ 4. names that become paths


DATASET = """
datasets:
  - name: {name}
    audb: testcorpus
    version: 1.0.0
    splits:
      {split}: {table}
    labels: {{arousal: arousal, dominance: dominance, valence: valence}}
    label_range: {label_range}
    speaker: {{table: files, column: speaker}}
    sex: {{table: speaker, column: gender}}
    demo: {{name: demo-none, version: 1.0.0}}
"""


def registry_file(
    tmp_path, name="testcorpus", split="test-1", table="emotion.dimensions.test-1.gold_standard", label_range="[1, 7]"
) -> Path:
    path = tmp_path / "datasets.yaml"
    path.write_text(DATASET.format(name=name, split=split, table=table, label_range=label_range))
    return path


@pytest.mark.parametrize("field, value", [("split", '"../../tmp/x/s"'), ("name", '"../escape"'), ("split", "a/b")])
def test_names_that_become_paths_are_validated(tmp_path, field, value):
    with pytest.raises(DatasetConfigError, match=r"entry .*(field 'splits': key|field 'name').*not a plain name"):
        load_registry(registry_file(tmp_path, **{field: value}))


def test_condition_and_path_names_are_validated(tmp_path):
    bad = {"name": "../gain", "group": "x", "type": "gain", "parameters": {"gain_db": 1}}
    assert any("name" in p for p in perturbations.validate_condition(bad))
    assert perturbations.validate_condition({**bad, "name": "gain\n"})  # a trailing newline is no name either
    with pytest.raises(paths.InvalidNameError, match="split '../x' is not a plain name"):
        paths.check_name("../x", "split")
    evalset = _evalset(tmp_path, [0.5], "a" * 64)
    evalset.split = "../../x"
    with pytest.raises(paths.InvalidNameError, match="split"):
        results.predictions_path("m", "0" * 64, "d", "1.0.0", evalset.split, "a" * 64, tmp_path)
    model = types_entry()
    model.artifact_hash = "0" * 64
    with pytest.raises(paths.InvalidNameError, match="split"):
        prediction_cache.PredictionCache(model, evalset)
    assert not list(tmp_path.parent.glob("x"))


# ------------------------------------------------------------------ 5. datasets.yaml and loading


def test_types_and_ranges_are_checked_up_front(tmp_path):
    with pytest.raises(DatasetConfigError, match=r"entry 'testcorpus': field 'label_range': give \[low, high\].*'1'"):
        load_registry(registry_file(tmp_path, label_range='["1", 7]'))
    text = registry_file(tmp_path).read_text().replace("labels: {arousal: arousal", "labels: {arousal: 3")
    (tmp_path / "datasets.yaml").write_text(text)
    with pytest.raises(
        DatasetConfigError, match=r"entry 'testcorpus': field 'labels.arousal': give a non-empty string"
    ):
        load_registry(tmp_path / "datasets.yaml")


def test_labels_outside_label_range_are_an_error(tmp_path, audb_repository):
    registry = load_registry(registry_file(tmp_path, label_range="[1, 5]"))  # the labels go up to 7
    with pytest.raises(
        DatasetConfigError, match=r"\d+ label\(s\) in column 'arousal' lie outside label_range \[1, 5\], e\.g\. "
    ):
        load_split("testcorpus", "test-1", data="real", repositories=[audb_repository], registry=registry)


def test_missing_table_lists_the_tables(tmp_path, audb_repository):
    registry = load_registry(registry_file(tmp_path, table="emotion.dimensions.test-3.gold_standard"))
    with pytest.raises(
        DatasetConfigError, match=r"does not have\. Tables: .*emotion\.dimensions\.test-1\.gold_standard"
    ):
        load_split("testcorpus", "test-1", data="real", repositories=[audb_repository], registry=registry)


def test_unknown_split_or_dataset_lists_the_valid_ones(cli_args, dataset_registry, capsys):
    assert main(["run", "--model", "constant", "--split", "tset-1", *cli_args]) == 2
    assert "Unknown split(s) 'tset-1'. Splits: testcorpus: test-1, test-2." in capsys.readouterr().err
    assert main(["run", "--model", "constant", "--dataset", "msp", *cli_args]) == 2
    assert "Unknown dataset 'msp'. Registered: testcorpus" in capsys.readouterr().err
    with pytest.raises(DatasetConfigError, match="Unknown split"):
        run_suite(
            "constant",
            splits=["nope"],
            registry=Registry.from_yaml_text(BASELINES_YAML),
            dataset_registry=dataset_registry,
            progress=False,
            log=lambda m: None,
        )


def test_repository_error_keeps_its_cause(dataset_registry, server):
    base, _, _ = server  # something listens there, so the repository is reachable but its backend is unknown
    repo = audb.Repository("remote", base.removeprefix("http://"), "artifactory")
    with pytest.raises(
        DatasetConfigError, match="the repository failed: remote .*'artifactory' is not a registered backend"
    ):
        load_split("testcorpus", "test-1", data="real", repositories=[repo], registry=dataset_registry)


# ------------------------------------------------------------------ 6. smaller defects


def _onnx_model(folder: Path) -> None:
    r"""A tiny audonnx model: ``logits`` = the signal's mean, three times, labelled arousal/dominance/valence."""
    import audonnx
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["signal"], ["m"], axes=[1], keepdims=1),
            helper.make_node("Concat", ["m", "m", "m"], ["logits"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), folder / "model.onnx"
    )
    audonnx.Model(str(folder / "model.onnx"), labels={"logits": ["arousal", "dominance", "valence"]}).to_yaml(
        str(folder / "model.yaml")
    )


def test_outputs_a_model_lacks_are_a_clear_error_in_run(tmp_path, cli_args, capsys):
    _onnx_model(tmp_path / "tiny")
    models = tmp_path / "tiny-models.yaml"
    entry = {
        "name": "tiny",
        "kind": "audonnx",
        "role": "baseline",
        "source": {"path": "tiny"},
        "sampling_rate": 16000,
        "outputs": {"arousal": "activation"},
        "description": "a label the model does not have",
    }
    models.write_text(yaml.safe_dump({"models": [entry]}))
    assert main(["list", "--models", str(models)]) == 0
    assert main(["run", "--model", "tiny", *cli_args, "--models", str(models)]) == 2
    err = capsys.readouterr().err
    # the demo corpora may be built first (their note goes to stderr too); the run ends on the one-line error
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: Model 'tiny'") and "activation" in last and "Traceback" not in err


def test_fairness_needs_a_minimum_group_size():
    index = pd.Index([f"f{i}" for i in range(4)])
    truth = pd.Series([0.2, 0.2, 0.8, 0.8], index=index)
    sex = pd.Series(["female", "male", "female", "male"], index=index)
    notes: list[str] = []
    assert fairness.sex_rows(truth, truth, sex, "arousal", n_boot=0, notes=notes) == []
    assert notes == ["arousal: too few files (female 2, male 2 after balancing; each sex needs 30)"]
    rng = np.random.default_rng(0)
    index = pd.Index([f"f{i}" for i in range(200)])
    truth = pd.Series(rng.uniform(size=200), index=index)
    sex = pd.Series(np.where(np.arange(200) % 2, "male", "female"), index=index)
    rows = fairness.sex_rows(truth, truth, sex, "arousal", n_boot=0)
    assert [r["group"] for r in rows] == ["female", "male"] and min(r["n"] for r in rows) >= fairness.MIN_GROUP_FILES


def test_truncated_wav_is_a_recorded_skip(tmp_path):
    files = _files(tmp_path / "db", [1.0, 1.0, 1.0])
    data = Path(files[1]).read_bytes()
    Path(files[1]).write_bytes(data[: len(data) // 2])  # the header still declares the whole second
    assert runner.wav_truncation(files[0]) == ""
    assert runner.wav_truncation(files[1]).startswith("truncated WAV: header declares 32000 bytes")
    truth = pd.DataFrame({"arousal": [0.2, 0.5, 0.8]}, index=pd.Index(files, name="file"))
    evalset = EvalSet("tiny", "tiny", "1.0.0", "test", "t", truth, None, None, str(tmp_path / "db"))
    model = load_model("constant", Registry.from_yaml_text(BASELINES_YAML))
    pred, skips = runner.predict(model, evalset, progress=False)
    assert list(skips.index) == [files[1]] and skips["reason"].iloc[0].startswith("truncated WAV")
    assert list(pred.index) == [files[0], files[2]]


def test_list_takes_a_dataset_registry(tmp_path, capsys):
    path = registry_file(tmp_path, name="my-corpus")
    assert main(["list", "--datasets", str(path)]) == 0
    out = capsys.readouterr().out
    assert "my-corpus" in out and "msppodcast" not in out
