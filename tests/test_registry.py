"""models.yaml validation: every error names the entry, the field and the fix."""

import re

import numpy as np
import pytest
from conftest import BASELINES_YAML

from benchmark.registry import Registry, RegistryError, load_model

ENTRY = """
  - name: {name}
    kind: {kind}
    role: {role}
    source: {source}
    sampling_rate: 16000
    outputs: {outputs}
    description: test
"""


def registry_text(*entries: dict) -> str:
    defaults = {"name": "m", "kind": "constant", "role": "baseline", "source": "{}", "outputs": "{arousal: arousal}"}
    return "models:" + "".join(ENTRY.format(**{**defaults, **e}) for e in entries)


def error_of(text: str, tmp_path=None) -> str:
    with pytest.raises(RegistryError) as info:
        Registry.from_yaml_text(text, root=tmp_path) if tmp_path else Registry.from_yaml_text(text)
    return str(info.value)


def test_baselines_load_and_predict():
    reg = Registry.from_yaml_text(BASELINES_YAML)
    assert list(reg) == ["constant", "random-gaussian"]
    x = np.random.default_rng(0).normal(size=16000).astype("float32")
    assert load_model("constant", reg)(x, 16000).tolist() == [0.5, 0.5, 0.5]
    r = load_model("random-gaussian", reg)
    assert np.array_equal(r(x, 16000), r(x.copy(), 16000))  # seeded by content
    assert not np.array_equal(r(x, 16000), r(x * 0.5, 16000))


def test_unknown_kind_names_entry_field_and_choices():
    msg = error_of(registry_text({"name": "foo", "kind": "tensorflow"}))
    assert "entry 'foo'" in msg and "field 'kind'" in msg and "audonnx" in msg


def test_duplicate_name():
    msg = error_of(registry_text({"name": "dup"}, {"name": "dup"}))
    assert "entry 'dup'" in msg and "duplicate name" in msg


def test_missing_output_mapping():
    msg = error_of(registry_text({"name": "x", "outputs": "{}"}))
    assert "entry 'x'" in msg and "field 'outputs'" in msg and "missing output mapping" in msg


def test_unknown_dimension_in_outputs():
    msg = error_of(registry_text({"name": "x", "outputs": "{happiness: h}"}))
    assert "unknown dimension 'happiness'" in msg


def test_missing_file(tmp_path):
    msg = error_of(
        registry_text({"name": "s", "kind": "audonnx", "role": "student", "source": "{path: weights/nothing}"}),
        tmp_path,
    )
    assert "entry 's'" in msg and "field 'source.path'" in msg and "missing file" in msg
    assert str(tmp_path / "weights" / "nothing") in msg and "nox -s distill" in msg


def test_checksum_mismatch(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"abc")
    msg = error_of(
        registry_text(
            {"name": "s", "kind": "audonnx", "role": "student", "source": "{path: m, sha256: '" + "0" * 64 + "'}"}
        ),
        tmp_path,
    )
    assert "checksum mismatch" in msg and "entry 's'" in msg and "update sha256" in msg


def test_metadata_readers_skip_only_the_weight_checks(tmp_path):
    # check_files=False (the docs): absent and changed weights pass, every other check still holds
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"abc")
    absent = {"name": "s", "kind": "audonnx", "role": "student", "source": "{path: weights/nothing}"}
    changed = {"name": "c", "kind": "audonnx", "role": "student", "source": "{path: m, sha256: '" + "0" * 64 + "'}"}
    reg = Registry.from_yaml_text(registry_text(absent, changed), root=tmp_path, check_files=False)
    assert list(reg) == ["s", "c"]
    with pytest.raises(RegistryError) as info:
        Registry.from_yaml_text(registry_text(absent, {"name": "u", "kind": "nope"}), root=tmp_path, check_files=False)
    assert "entry 'u'" in str(info.value) and "unknown kind 'nope'" in str(info.value)
    assert "entry 's'" not in str(info.value)


def test_url_requires_sha256():
    msg = error_of(
        registry_text({"name": "t", "kind": "audonnx", "role": "teacher", "source": "{url: 'http://x/y.zip'}"})
    )
    assert "field 'source.sha256'" in msg and "required with 'url'" in msg


def test_all_errors_reported_at_once():
    msg = error_of(registry_text({"name": "a", "kind": "nope"}, {"name": "b", "role": "judge"}))
    assert "entry 'a'" in msg and "entry 'b'" in msg
    assert len(re.findall(r"^\s+- ", msg, flags=re.M)) >= 2


def test_missing_field_and_unknown_field():
    text = "models:\n  - name: q\n    kind: constant\n    colour: red\n"
    msg = error_of(text)
    assert "field 'role' is missing" in msg and "field 'colour' is unknown" in msg


def test_unknown_model_name_lists_known():
    reg = Registry.from_yaml_text(BASELINES_YAML)
    with pytest.raises(KeyError, match="Unknown model 'nope'.*constant, random-gaussian"):
        reg["nope"]


def test_project_registry_is_valid():
    reg = Registry.from_file()
    assert "random-gaussian" in reg and "constant" in reg
    assert all(e.role in ("teacher", "student", "baseline") for e in reg.values())


def test_distilled_entry_without_weights_says_how_to_make_them(tmp_path):
    from benchmark.models.download import WeightsUnavailableError

    text = registry_text(
        {
            "name": "mobilenetv3-small",
            "kind": "audonnx",
            "role": "student",
            "source": "{path: weights/mobilenetv3-small}",
        }
    )
    text += "    architecture: mobilenetv3-small\n    distilled: {teacher: egemaps-teacher}\n"
    reg = Registry.from_yaml_text(text, root=tmp_path)  # valid: the weights are a distillation output
    with pytest.raises(
        WeightsUnavailableError, match=r"nox -s distill -- --student mobilenetv3-small --teacher egemaps-teacher"
    ):
        load_model("mobilenetv3-small", reg)
    # the command comes from the entry: a teacher it does not record is not made up
    other = Registry.from_yaml_text(
        text.replace("distilled: {teacher: egemaps-teacher}", "distilled: {seed: 1}"), root=tmp_path
    )
    with pytest.raises(WeightsUnavailableError, match=r"run `nox -s distill -- --student mobilenetv3-small` "):
        load_model("mobilenetv3-small", other)


def test_cli_unknown_model_is_a_user_error_but_an_internal_keyerror_shows_its_traceback(monkeypatch, capsys):
    from benchmark import cli

    assert cli.main(["run", "--model", "no-such-model", "--no-docs"]) == cli.EXIT_USAGE
    assert "Unknown model 'no-such-model'" in capsys.readouterr().err

    def broken(args):
        return {}["missing key"]  # a bug inside the benchmark, not a user's mistake

    monkeypatch.setattr(cli.COMMANDS["list"], "run", broken)
    with pytest.raises(KeyError, match="missing key"):
        cli.main(["list"])
