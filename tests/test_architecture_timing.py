"""A teacher whose weights are not here is timed as its architecture, with random weights, and says so."""

from __future__ import annotations

import math

import pytest

from benchmark import efficiency, results
from benchmark.registry import Registry, RegistryError

TINY = """
models:
  - name: tiny-w2v2
    kind: w2v2-hf
    role: teacher
    source: {hub: nobody/not-a-model, revision: 0123456789abcdef0123456789abcdef01234567}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    config: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
             conv_dim: [32, 32], conv_kernel: [10, 3], conv_stride: [5, 2], num_conv_pos_embeddings: 16,
             num_conv_pos_embedding_groups: 2, feat_extract_norm: layer, do_stable_layer_norm: true, num_labels: 3,
             id2label: {0: arousal, 1: dominance, 2: valence}}
    description: tiny architecture, no weights anywhere
"""


def test_a_teacher_without_weights_is_timed_as_its_architecture(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    registry = Registry.from_yaml_text(TINY)
    df = efficiency.run(["tiny-w2v2"], registry, repeats=3, seconds=1.0)
    row = df.iloc[0]
    assert row["weights"] == "random"
    assert row["ms_per_5s"] > 0 and not math.isnan(row["ms_per_5s"])
    model = efficiency.architecture(registry["tiny-w2v2"]).model
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    # the architecture's hash is not a trained model's: it names the architecture and its configuration
    assert row["model_sha256"] == efficiency.architecture(registry["tiny-w2v2"]).artifact_hash
    written = results.read_table("efficiency")
    assert written.set_index("model").loc["tiny-w2v2", "weights"] == "random"


def test_the_project_teacher_architecture_has_the_published_size():
    entry = Registry.from_file()["w2v2-L-robust-12-hf"]
    assert entry.config["num_hidden_layers"] == 12 and entry.config["hidden_size"] == 1024
    # the 12-layer wav2vec2-large-robust with its regression head: 165 M parameters
    params = sum(p.numel() for p in efficiency.architecture(entry).model.parameters())
    assert params == pytest.approx(165.3e6, rel=0.002)


def test_config_is_refused_for_kinds_that_cannot_be_built_from_it():
    text = TINY.replace("kind: w2v2-hf", "kind: audonnx").replace(
        "source: {hub: nobody/not-a-model, revision: 0123456789abcdef0123456789abcdef01234567}", "source: {path: x}"
    )
    with pytest.raises(RegistryError, match="field 'config'"):
        Registry.from_yaml_text(text)
