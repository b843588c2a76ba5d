"""``--data public``: the public corpora of audb-public, run against a local repository laid out like it.

The repository holds only ``emodb`` 2.0.0 (built by ``import-corpus emodb``
from a tiny release folder, so its tables are emodb 2.0.0's); the other
public corpora are missing from it, so the run reports them and still
scores EmoDB.
"""

from __future__ import annotations

import audb
import pytest
import yaml
from test_own_data import MODELS, WEIGHTS
from test_releases import EMODB_TEST, make_emodb

from benchmark import cli, results
from benchmark.data.datasets import entry_problems, load_registry
from benchmark.data.releases import import_corpus
from benchmark.paths import PROJECT_ROOT


def test_public_registry_names_the_published_corpora():
    entries = load_registry(PROJECT_ROOT / "datasets-public.yaml")
    assert {(e.audb, e.version) for e in entries.values()} == {
        ("emodb", "2.0.0"),
        ("crema-d", "1.3.0"),
        ("ravdess", "1.1.3"),
        ("quechua", "1.0.2"),
    }
    assert entries["ravdess"].splits == {"test": "emotion.speech.test"}
    assert entries["quechua"].labels and entries["quechua"].label_range == (0, 1)
    for raw in yaml.safe_load((PROJECT_ROOT / "datasets-public.yaml").read_text())["datasets"]:
        assert entry_problems(raw) == []


@pytest.fixture()
def public_repository(tmp_path):
    make_emodb(tmp_path / "emodb")
    host = tmp_path / "host"
    import_corpus("emodb", tmp_path / "emodb", "2.0.0", repository=f"audb-public={host}", registry=tmp_path / "x.yaml")
    return audb.Repository("audb-public", str(host), "file-system")


def test_data_public_runs_emodb_and_reports_the_corpora_it_cannot_load(public_repository, tmp_path, capsys):
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    argv = ["run", "--model", "wav2small", "--models", str(models), "--data", "public", "--tests", "consistency"]
    argv += ["--repository", f"audb-public={public_repository.host}", "--bootstrap", "10"]
    code = cli.main([*argv, "--no-progress", "--no-docs"])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = sorted(line.split()[1] for line in out.splitlines() if line.startswith("FAILED"))
    assert [f.strip("(',") for f in failed] == ["crema-d", "quechua", "ravdess"]
    table = results.read_table("consistency")
    assert set(table["dataset"]) == {"emodb"}
    overall = table[(table["group"] == "all") & (table["dimension"] == "arousal")].iloc[0]
    high = sum(name[5] in "WAF" for name in EMODB_TEST)  # anger, fear, happiness
    low = sum(name[5] in "TL" for name in EMODB_TEST)  # sadness, boredom
    assert (int(overall["n_high"]), int(overall["n_low"])) == (high, low)
