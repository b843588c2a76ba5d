"""The main command line through :func:`benchmark.cli.main`: exit codes, model selection, data sources.

Runs use the ``testcorpus`` database published to a file-system audb
repository (conftest ``audb_repository``) with ``--data real
--repository NAME=HOST``, the path a user with the licensed corpora takes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import BASELINES_YAML

from benchmark import cli, results

REGISTRY = (
    BASELINES_YAML.rstrip("\n")
    + """
  - name: not-a-number
    kind: constant
    role: baseline
    source: {}
    params: {value: .nan}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: NaN for every file, so no file can be scored
  - name: ghost
    kind: audonnx
    role: student
    source: {path: weights/ghost}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: distilled, never exported
    distilled: {teacher: constant}
"""
)


@pytest.fixture()
def setup(tmp_path, dataset_registry, audb_repository):
    r"""A model registry, the ``testcorpus`` dataset registry and the ``--repository`` argument."""
    models = tmp_path / "models.yaml"
    models.write_text(REGISTRY)
    datasets = tmp_path / "datasets.yaml"  # written by the dataset_registry fixture
    assert datasets.exists()
    repository = f"{audb_repository.name}={audb_repository.host}"
    return {"models": str(models), "datasets": str(datasets), "repository": repository}


def run_args(setup, *models: str, extra: tuple = ()) -> list[str]:
    r"""``run`` on testcorpus (real data, the test repository), correctness only unless ``extra`` says else."""
    args = [
        "run",
        "--model",
        *models,
        "--models",
        setup["models"],
        "--datasets",
        setup["datasets"],
        "--data",
        "real",
        "--repository",
        setup["repository"],
        "--bootstrap",
        "20",
        "--no-docs",
        "--no-progress",
    ]
    if "--tests" not in extra:
        args += ["--tests", "correctness"]
    return args + list(extra)


def results_dir() -> Path:
    return Path(os.environ["SER_BENCHMARK_RESULTS"])


def test_run_real_data_from_a_repository_exits_0(setup, capsys):
    assert cli.main(run_args(setup, "constant")) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "constant (sha256 " in out and "test-1" in out and "test-2" in out
    table = results.read_table("correctness", results_dir())
    assert set(table["dataset"]) == {"testcorpus"} and set(table["split"]) == {"test-1", "test-2"}
    assert (table["n"] == 12).all() and (table["ccc"] == 0).all()  # a constant's CCC is exactly 0
    assert set(table["dimension"]) == {"arousal", "dominance", "valence"}


def test_no_scorable_file_exits_1(setup, capsys):
    assert cli.main(run_args(setup, "not-a-number", extra=("--split", "test-1"))) == cli.EXIT_FAILURES
    out = capsys.readouterr().out
    assert "FAILED ('testcorpus', 'test-1', 'all', 'no file could be scored" in out
    assert "12 file(s) skipped" in out and "model returned NaN/Inf" in out
    assert results.read_table("correctness", results_dir()).empty


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--model", "nope"), "Unknown model 'nope'. Registered in"),
        (("--model", "constant", "--dataset", "nope"), "Unknown dataset 'nope'"),
        (("--model", "constant", "--split", "test-1", "--repository", "no-equals-sign"), "Cannot parse repository"),
        (("--model", "ghost"), "weights not available: ghost is made by distillation"),
    ],
)
def test_user_errors_exit_2_with_a_message_and_no_rows(setup, capsys, argv, message):
    args = [
        "run",
        *argv,
        "--models",
        setup["models"],
        "--datasets",
        setup["datasets"],
        "--data",
        "real",
        "--no-docs",
        "--no-progress",
        "--tests",
        "correctness",
    ]
    if "--repository" not in argv:
        args += ["--repository", setup["repository"]]
    assert cli.main(args) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (results_dir() / "correctness.csv").exists()


def test_unknown_model_fails_before_any_work(setup, capsys):
    # the known model comes first: nothing of it may run when a later name is unknown
    assert cli.main(run_args(setup, "constant", "nope")) == cli.EXIT_USAGE
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert not (results_dir() / "runs.csv").exists()


def test_command_line_usage_errors_exit_2(capsys):
    for argv in (["frobnicate"], ["run"], ["run", "--model", "constant", "--data", "elsewhere"]):
        with pytest.raises(SystemExit) as ex:
            cli.main(argv)
        assert ex.value.code == cli.EXIT_USAGE, argv
    assert "invalid choice: 'elsewhere'" in capsys.readouterr().err


def test_model_all_runs_every_model_with_weights(setup, capsys):
    assert cli.main(run_args(setup, "all", extra=("--split", "test-1"))) == cli.EXIT_FAILURES  # not-a-number fails
    captured = capsys.readouterr()
    assert "skip ghost: weights not available" in captured.err
    runs = results.read_table("runs", results_dir())
    assert sorted(runs["model"]) == ["constant", "not-a-number", "random-gaussian"]
    scored = results.read_table("correctness", results_dir())
    assert sorted(scored["model"].unique()) == ["constant", "random-gaussian"]


def test_max_files_0_means_every_file(setup):
    extra = ("--tests", "robustness", "--split", "test-1", "--conditions", "gain")
    assert cli.main(run_args(setup, "constant", extra=(*extra, "--max-files", "5"))) == cli.EXIT_OK
    assert set(results.read_table("robustness", results_dir())["n"]) == {5}
    # another subset size never replaces those rows: into the same folder it is refused ...
    assert cli.main(run_args(setup, "constant", extra=(*extra, "--max-files", "0"))) == cli.EXIT_USAGE
    assert set(results.read_table("robustness", results_dir())["n"]) == {5}
    # ... and goes to a folder of its own
    every = results_dir().parent / "every-file"
    assert cli.main(run_args(setup, "constant", extra=(*extra, "--max-files", "0", "--results", str(every)))) == 0
    table = results.read_table("robustness", every)
    assert set(table["n"]) == {12} and set(table["condition"]) == {"gain"}


def test_results_option_writes_there_and_leaves_the_environment_alone(setup, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    environ = dict(os.environ)
    assert cli.main(run_args(setup, "constant", extra=("--split", "test-1", "--results", str(elsewhere)))) == 0
    assert dict(os.environ) == environ  # --results reaches the library as an argument
    table = results.read_table("correctness", elsewhere)
    assert set(table["model"]) == {"constant"} and set(table["split"]) == {"test-1"}
    for name in ("runs.csv", "summary.csv", results.SETTINGS_FILE):
        assert (elsewhere / name).is_file(), name
    assert any((elsewhere / "predictions").rglob("*.csv"))
    assert not results_dir().exists()  # the default folder is left alone


def test_list_names_models_and_datasets(setup, capsys):
    assert cli.main(["list", "--models", setup["models"]]) == cli.EXIT_OK
    out = capsys.readouterr().out
    for name in ("constant", "random-gaussian", "not-a-number", "ghost"):
        assert name in out
    # the dataset registry is the project's: every dataset with its demo replica
    for name in ("msppodcast", "iemocap", "mosi", "demo-msppodcast", "demo-mosi"):
        assert name in out
    assert cli.main(["list"]) == cli.EXIT_OK
    assert "wav2small" in capsys.readouterr().out


def test_docs_regenerates_the_leaderboard_from_results(setup, capsys):
    assert cli.main(run_args(setup, "constant", extra=("--split", "test-1"))) == cli.EXIT_OK
    capsys.readouterr()
    docs = Path(os.environ["SER_BENCHMARK_DOCS"])
    assert cli.main(["docs"]) == cli.EXIT_OK
    printed = capsys.readouterr().out.split()
    assert str(docs / "results" / "leaderboard.md") in printed and all(Path(p).exists() for p in printed)
    assert "constant" in (docs / "results" / "leaderboard.md").read_text()


def test_docs_of_another_results_folder_go_to_the_folder_named(setup, tmp_path, capsys):
    elsewhere, pages = tmp_path / "elsewhere", tmp_path / "pages"
    assert cli.main(run_args(setup, "constant", extra=("--split", "test-1", "--results", str(elsewhere)))) == 0
    capsys.readouterr()
    argv = ["docs", "--results", str(elsewhere), "--docs", str(pages), "--models", setup["models"], "--timing"]
    assert cli.main(argv) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert str(pages / "results" / "leaderboard.md") in captured.out.split() and "docs: " in captured.err
    assert "constant" in (pages / "results" / "leaderboard.md").read_text()
    default = Path(os.environ["SER_BENCHMARK_DOCS"]) / "results" / "leaderboard.md"
    assert not default.exists()  # the default folder is left alone


def test_demo_reports_the_published_repository(use_demo, capsys):
    assert cli.main(["demo"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert f"demo corpora published in {use_demo / 'audb-demo'}/demo" in captured.out
    assert "Building" not in captured.err  # already published by the session: nothing rebuilt
    for name in ("demo-msppodcast", "demo-iemocap", "demo-mosi", "demo-pool", "demo-refit"):
        assert (use_demo / "audb-demo" / "demo" / name).is_dir()
