"""``python -m benchmark score``: intervals recomputed from stored predictions, without a model."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import BASELINES_YAML

from benchmark import metrics, results
from benchmark.cli import main
from benchmark.paths import results_root


@pytest.fixture
def args(tmp_path, dataset_registry, audb_repository):
    r"""(``run`` arguments, the arguments ``score`` shares with them) for the test corpus and baselines."""
    models = tmp_path / "models.yaml"
    models.write_text(BASELINES_YAML)
    common = ["--models", str(models), "--datasets", str(tmp_path / "datasets.yaml"), "--data", "real"]
    common += ["--repository", f"{audb_repository.name}={audb_repository.host}"]
    run = ["run", "--model", "random-gaussian", "--tests", "correctness", *common, "--no-docs", "--no-progress"]
    return run, ["score", "--tests", "correctness", *common]


def test_score_restores_the_intervals_from_stored_predictions(args):
    run, score = args
    assert main(run) == 0
    made = results.read_table("correctness")
    speakers = [pd.read_csv(p)["speaker"].nunique() for p in (results_root() / "predictions").rglob("*.csv")]
    expected = "speaker" if min(speakers) >= metrics.MIN_CLUSTERS else "file"
    assert set(made["ci_unit"]) == {expected}
    blanked = made.assign(ccc_ci_low=np.nan, ccc_ci_high=np.nan, ci_unit=np.nan)
    results.table_path("correctness").write_text(results.format_table(blanked).to_csv(index=False, lineterminator="\n"))

    assert main(score) == 0
    scored = results.read_table("correctness")
    key = ["split", "dimension"]
    made, scored = made.sort_values(key).reset_index(drop=True), scored.sort_values(key).reset_index(drop=True)
    assert list(scored["ci_unit"]) == list(made["ci_unit"])
    for column in ("ccc", "pearson", "mae", "n"):  # point values kept as the run wrote them
        assert list(scored[column]) == list(made[column])
    for column in ("ccc_ci_low", "ccc_ci_high"):  # predictions are stored to 6 digits: the last digit may move
        np.testing.assert_allclose(scored[column], made[column], rtol=1e-4, atol=1e-5)


def test_file_level_intervals_need_a_folder_of_their_own(args, tmp_path, capsys):
    run, score = args
    assert main(run) == 0
    before = results.table_path("correctness").read_bytes()
    assert main([*score, "--ci-unit", "file"]) == 2
    assert "ci_unit speaker" in capsys.readouterr().err
    assert results.table_path("correctness").read_bytes() == before

    other = tmp_path / "file-level"
    (other / "predictions").mkdir(parents=True)
    for path in (results_root() / "predictions").rglob("*.csv"):
        target = other / path.relative_to(results_root())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (other / "correctness.csv").write_bytes(before)
    (other / results.SETTINGS_FILE).write_text("seed: 0\nbootstrap: 1000\nci_unit: file\n")
    environ = dict(os.environ)
    assert main([*score, "--ci-unit", "file", "--results", str(other)]) == 0
    assert dict(os.environ) == environ  # --results reaches the library as an argument
    assert results.table_path("correctness").read_bytes() == before  # the default folder is left alone
    assert (other / "summary.csv").is_file()
    speaker = pd.read_csv(results.table_path("correctness")).sort_values(["split", "dimension"])
    filewise = pd.read_csv(other / "correctness.csv").sort_values(["split", "dimension"])
    assert set(filewise["ci_unit"]) == {"file"}
    assert list(filewise["ccc"]) == list(speaker["ccc"])
