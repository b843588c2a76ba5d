"""Hub revisions are full commit ids, or explicitly unpinned: refused otherwise at `list` and at load."""

from __future__ import annotations

import re

import pytest
import yaml

from benchmark import cli
from benchmark.paths import PROJECT_ROOT
from benchmark.registry import Registry, RegistryError

COMMIT = "6eba34a2485ea31cb03600241787c3a5edab8626"


def entry(kind: str, revision: str) -> str:
    return (
        f"models:\n  - name: m\n    kind: {kind}\n    role: teacher\n"
        f"    source: {{hub: org/model, revision: {revision}}}\n    sampling_rate: 16000\n"
        "    outputs: {arousal: arousal}\n    description: test\n"
    )


@pytest.mark.parametrize("kind", ["w2v2-hf", "wavlm-hf", "wav2small-hf"])
@pytest.mark.parametrize("revision", ["main", "v1.0", "6eba34a", COMMIT.upper(), COMMIT + "0", "'0123'"])
def test_a_revision_that_can_move_is_refused(kind, revision):
    with pytest.raises(RegistryError) as info:
        Registry.from_yaml_text(entry(kind, revision))
    message = str(info.value)
    assert "entry 'm': field 'source.revision'" in message and "is not a full commit id" in message
    assert "40-hex commit" in message and "'unpinned'" in message


@pytest.mark.parametrize("revision", [COMMIT, "unpinned"])
def test_a_commit_or_explicitly_unpinned_is_accepted(revision):
    assert Registry.from_yaml_text(entry("wav2small-hf", revision))["m"].source["revision"] == revision


def test_list_refuses_a_branch_with_a_usage_error(tmp_path, capsys):
    models = tmp_path / "models.yaml"
    models.write_text(entry("w2v2-hf", "main"))
    assert cli.main(["list", "--models", str(models)]) == cli.EXIT_USAGE
    assert "field 'source.revision': 'main' is not a full commit id" in capsys.readouterr().err


def test_run_refuses_a_branch_before_any_work(tmp_path, capsys):
    models = tmp_path / "models.yaml"
    models.write_text(entry("w2v2-hf", "main"))
    argv = ["run", "--model", "m", "--models", str(models), "--no-docs", "--no-progress"]
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "is not a full commit id" in capsys.readouterr().err


def test_every_project_hub_source_is_a_commit_or_says_unpinned():
    entries = yaml.safe_load((PROJECT_ROOT / "models.yaml").read_text())["models"]
    hub = {e["name"]: e["source"]["revision"] for e in entries if "hub" in e["source"]}
    assert hub["w2v2-L-robust-12-hf"] == COMMIT
    assert hub["audeering-wav2small"] == "unpinned"
    assert all(re.fullmatch("[0-9a-f]{40}", str(r)) or r == "unpinned" for r in hub.values()), hub
