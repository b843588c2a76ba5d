"""Broken audonnx model files: named at ``python -m benchmark list`` and when the model loads, never a traceback.

Every artefact is real: a tiny ONNX graph built with :mod:`onnx.helper`, its
``model.yaml`` written by audonnx, and damaged copies of them (truncated, another
format, an output of the wrong size, a graph onnxruntime cannot run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import audonnx
import numpy as np
import onnx
import onnx.helper as helper
import pytest
from onnx import TensorProto

from benchmark import cli
from benchmark.registry import ModelFileError, Registry, load_model

LABELS = ["arousal", "dominance", "valence"]


def export(folder: Path, *, values: int = 3, output: str = "logits", op: str = "ReduceMean") -> Path:
    r"""A tiny ONNX model (mean power of the signal times a weight per output value) and its model.yaml."""
    folder.mkdir(parents=True)
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, values], np.linspace(2, 8, values).tolist())
    nodes = [
        helper.make_node("Mul", ["signal", "signal"], ["power"]),
        helper.make_node(op, ["power"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "w"], [output]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, values])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    if values == 3 and output == "logits" and op == "ReduceMean":  # model.yaml as audonnx writes it
        audonnx.Model(str(folder / "model.onnx"), labels={"logits": LABELS}).to_yaml(str(folder / "model.yaml"))
    return folder


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return export(tmp_path_factory.mktemp("onnx") / "good")


def variant(good: Path, where: Path, onnx_bytes: bytes | None = None, yaml_from: Path | None = None) -> Path:
    r"""A copy of the good model folder with other ONNX bytes (or another graph's file)."""
    shutil.copytree(good, where)
    if onnx_bytes is not None:
        (where / "model.onnx").write_bytes(onnx_bytes)
    if yaml_from is not None:
        shutil.copy(yaml_from / "model.onnx", where / "model.onnx")
    return where


def registry_file(tmp_path: Path, folder: Path, name: str = "tiny") -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        f"""
models:
  - name: {name}
    kind: audonnx
    role: student
    source: {{path: {folder}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: a tiny ONNX model
"""
    )
    return path


def test_the_tiny_model_lists_loads_and_predicts(good, tmp_path, capsys):
    path = registry_file(tmp_path, good)
    assert cli.main(["list", "--models", str(path)]) == cli.EXIT_OK
    assert "tiny" in capsys.readouterr().out
    model = load_model("tiny", Registry.from_file(path))
    signal = np.full(16000, 0.5, dtype=np.float32)
    np.testing.assert_allclose(model(signal, 16000), [0.5, 1.25, 2.0], rtol=1e-6)  # 0.25 × (2, 5, 8)


def broken_cases(good: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    r"""name → (model folder, what the message must say about it)."""
    whole = (good / "model.onnx").read_bytes()
    two = export(tmp_path / "two-values", values=2)
    renamed = export(tmp_path / "renamed-output", output="scores")
    return {
        "truncated": (variant(good, tmp_path / "truncated", whole[: len(whole) // 2]), "not a readable ONNX model"),
        "text": (variant(good, tmp_path / "text", b"this is a README, not a model\n"), "not a readable ONNX model"),
        "empty": (variant(good, tmp_path / "empty", b""), "is empty (0 bytes)"),
        "two-values": (
            variant(good, tmp_path / "two", yaml_from=two),
            "has 2 value(s), " + str(tmp_path / "two" / "model.yaml") + " gives it 3 label(s)",
        ),
        "renamed": (
            variant(good, tmp_path / "renamed", yaml_from=renamed),
            "labels output 'logits', which model.onnx does not have (its outputs: scores)",
        ),
    }


@pytest.mark.parametrize("case", ["truncated", "text", "empty", "two-values", "renamed"])
def test_broken_model_file_is_named_at_list(good, tmp_path, capsys, case):
    folder, says = broken_cases(good, tmp_path)[case]
    path = registry_file(tmp_path, folder, name=f"broken-{case}")
    assert cli.main(["list", "--models", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid model registry") and "Traceback" not in err
    assert f"entry 'broken-{case}': field 'source.path': " in err and says in err
    assert str(folder) in err
    assert "re-export" in err or "fix 'labels'" in err or "export the model" in err  # the fix


@pytest.mark.parametrize("case", ["truncated", "text", "empty", "two-values", "renamed"])
def test_broken_model_file_is_named_at_load_time(good, tmp_path, case):
    folder, says = broken_cases(good, tmp_path)[case]
    registry = Registry.from_file(registry_file(tmp_path, folder), check_files=False)  # as the docs read it
    with pytest.raises(ModelFileError) as ex:
        load_model("tiny", registry)
    assert str(ex.value).startswith("Model 'tiny': ") and says in str(ex.value) and str(folder) in str(ex.value)


def test_a_graph_onnxruntime_cannot_run_is_named_at_load_time(good, tmp_path):
    unknown = export(tmp_path / "unknown-op", op="Frobnicate")
    folder = variant(good, tmp_path / "unknown", yaml_from=unknown)
    registry = Registry.from_file(registry_file(tmp_path, folder))  # it parses: list accepts it
    with pytest.raises(ModelFileError) as ex:
        load_model("tiny", registry)
    message = str(ex.value)
    assert message.startswith(f"Model 'tiny': {folder / 'model.yaml'} cannot be loaded (")
    assert "Frobnicate" in message and "re-export" in message


def test_a_run_with_a_broken_model_exits_2_and_writes_nothing(good, tmp_path, capsys):
    folder, _ = broken_cases(good, tmp_path)["truncated"]
    path = registry_file(tmp_path, folder)
    assert cli.main(["run", "--model", "tiny", "--models", str(path), "--no-docs", "--no-progress"]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert not Path(os.environ["SER_BENCHMARK_RESULTS"]).exists()
