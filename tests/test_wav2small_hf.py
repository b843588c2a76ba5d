"""audEERING's published Wav2Small (kind ``wav2small-hf``) on a same-format checkpoint with random weights.

The checkpoint is written here key by key, with the module names and shapes of the model card
(``vgg7.l1.conv.weight`` ... ``adv.bias``), as ``config.json`` + ``model.safetensors``; the
expected predictions come from a functional forward pass written from the card's description,
not from the loader's modules.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import BASELINES_YAML
from safetensors.torch import save_file

from benchmark.hashing import checkpoint_hash
from benchmark.models import download
from benchmark.registry import Registry, load_model

ADV = "{arousal: arousal, dominance: dominance, valence: valence}"
CONFIG = {"model_type": "wav2vec2", "architectures": ["Wav2Small"], "half_mel": 13, "n_fft": 64, "n_time": 64}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "ser-benchmark-tests/wav2small"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def registry(source: str, params: str = "") -> Registry:
    text = (
        f"models:\n  - name: w2s\n    kind: wav2small-hf\n    role: student\n    source: {source}\n"
        f"    sampling_rate: 16000\n    outputs: {ADV}\n    description: test\n"
    )
    return Registry.from_yaml_text(text + (f"    params: {params}\n" if params else ""))


def front_end() -> dict[str, torch.Tensor]:
    r"""The card's fixed front end: Hann-windowed DFT rows (64 → 33 bins) and a stand-in mel matrix."""
    n = np.arange(64)
    k = np.arange(33)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 64)  # periodic Hann
    dft = np.exp(-2j * np.pi * k * n / 64) * window
    rng = np.random.default_rng(7)
    return {
        "vgg7.spectrogram_extractor.conv_real.weight": torch.tensor(dft.real[:, None, :], dtype=torch.float32),
        "vgg7.spectrogram_extractor.conv_imag.weight": torch.tensor(dft.imag[:, None, :], dtype=torch.float32),
        # any non-negative projection: the file's own matrix must be the one used
        "vgg7.logmel_extractor.melW": torch.tensor(rng.uniform(0, 0.02, (33, 26)), dtype=torch.float32),
        "vgg7.logmel_extractor.amin": torch.tensor([1e-10]),
    }


def learned(seed: int = 0) -> dict[str, torch.Tensor]:
    r"""Random values for every learned tensor of the card's network, under its state-dict names."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i in range(1, 8):
        state[f"vgg7.l{i}.conv.weight"] = 0.3 * torch.randn(13, 1 if i == 1 else 13, 3, 3, generator=g)
        state[f"vgg7.l{i}.norm.weight"] = 1 + 0.1 * torch.randn(13, generator=g)
        state[f"vgg7.l{i}.norm.bias"] = 0.1 * torch.randn(13, generator=g)
        state[f"vgg7.l{i}.norm.running_mean"] = torch.randn(13, generator=g)
        state[f"vgg7.l{i}.norm.running_var"] = 0.5 + torch.rand(13, generator=g)
        state[f"vgg7.l{i}.norm.num_batches_tracked"] = torch.tensor(1000, dtype=torch.int64)
    for name in ("lin", "sof"):
        state[f"vgg7.{name}.weight"] = 0.3 * torch.randn(13, 13, 1, 1, generator=g)
        state[f"vgg7.{name}.bias"] = 0.1 * torch.randn(13, generator=g)
    state["adv.weight"] = 0.01 * torch.randn(3, 338, generator=g)
    state["adv.bias"] = torch.tensor([0.5, 0.4, 0.3])
    return state


def write_checkpoint(folder, state: dict, config: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG if config is None else config))
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    return folder


def reference(state: dict, signal: np.ndarray) -> np.ndarray:
    r"""The card's forward pass, written functionally: normalise, DFT power, log-mel, 7 blocks, pooling, head."""
    x = torch.tensor(signal, dtype=torch.float64)
    x = (x - x.mean()) / torch.sqrt(((x - x.mean()) ** 2).mean() + 1e-7)
    s = {k: v.double() for k, v in state.items()}
    x = x[None, None]
    power = F.conv1d(x, s["vgg7.spectrogram_extractor.conv_real.weight"], stride=32) ** 2
    power = power + F.conv1d(x, s["vgg7.spectrogram_extractor.conv_imag.weight"], stride=32) ** 2
    mel = power[0].T @ s["vgg7.logmel_extractor.melW"]  # [frames, 26]
    h = (10 * torch.log10(torch.clamp(mel, min=1e-10)))[None, None]  # [1, 1, frames, 26]
    for i in range(1, 8):
        p = f"vgg7.l{i}."
        h = F.conv2d(h, s[p + "conv.weight"], padding=1)
        h = F.batch_norm(
            h, s[p + "norm.running_mean"], s[p + "norm.running_var"], s[p + "norm.weight"], s[p + "norm.bias"]
        )
        h = torch.relu(h)
        if i == 3:
            h = F.max_pool2d(h, 3, stride=2, padding=1)
    values = F.conv2d(h, s["vgg7.lin.weight"], s["vgg7.lin.bias"])
    weights = torch.softmax(F.conv2d(h, s["vgg7.sof.weight"], s["vgg7.sof.bias"]), dim=2)  # over the frames
    pooled = (values * weights).sum(dim=2)[0]  # [13 channels, 13 mel bands]
    features = torch.cat([pooled, pooled @ pooled.T], dim=1).reshape(-1)  # per channel: bands, then Gram row
    return (s["adv.weight"] @ features + s["adv.bias"]).numpy()


def signals(*lengths: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_same_format_checkpoint_predicts_as_the_card_single_and_batched(tmp_path):
    state = learned() | front_end()
    folder = write_checkpoint(tmp_path / "ckpt", state)
    model = load_model("w2s", registry(f"{{path: '{folder}'}}", "{batch_size: 2}"))
    assert model.artifact_hash == checkpoint_hash(folder)
    xs = signals(16000, 8000, 16000, 1000)
    for x in xs:
        np.testing.assert_allclose(model(x, 16000), reference(state, x), rtol=1e-4, atol=1e-5)
    batched = model.predict_batch(xs)
    np.testing.assert_allclose(batched, np.stack([model(x, 16000) for x in xs]), rtol=1e-5, atol=1e-6)


def test_front_end_left_out_of_the_file_is_computed(tmp_path):
    mel = {"vgg7.logmel_extractor.melW": _slaney_mel()}
    full = write_checkpoint(tmp_path / "full", learned() | front_end() | mel)
    bare = write_checkpoint(tmp_path / "bare", {k: v for k, v in learned().items() if "num_batches" not in k})
    x = signals(12000)[0]
    a = load_model("w2s", registry(f"{{path: '{full}'}}"))(x, 16000)
    b = load_model("w2s", registry(f"{{path: '{bare}'}}"))(x, 16000)
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def _slaney_mel() -> torch.Tensor:
    r"""librosa.filters.mel(sr=16000, n_fft=64, n_mels=26).T, written out: Slaney scale, area-normalised."""

    def mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f < 1000, f * 3 / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000) / np.log(6.4))

    def hz(m):
        return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))

    edges = hz(np.linspace(mel(0), mel(8000), 28))
    bins = np.linspace(0, 8000, 33)
    fb = np.zeros((26, 33))
    for i in range(26):
        lo, mid, hi = edges[i : i + 3]
        fb[i] = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid))) * 2 / (hi - lo)
    return torch.tensor(fb.T, dtype=torch.float32)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s.pop("vgg7.l4.conv.weight"), "missing: vgg7.l4.conv.weight"),
        (lambda s: s.update({"vgg7.l8.conv.weight": torch.zeros(13, 13, 3, 3)}), "unexpected: vgg7.l8.conv.weight"),
        (
            lambda s: s.update({"adv.weight": torch.zeros(3, 200)}),
            "wrong shape: adv.weight (3, 200) (expected (3, 338))",
        ),
        (lambda s: s.update({"classifier.weight": s.pop("adv.weight")}), "missing: adv.weight"),
    ],
)
def test_a_different_state_dict_is_refused_naming_the_keys(tmp_path, change, named):
    state = learned()
    change(state)
    folder = write_checkpoint(tmp_path / "bad", state)
    with pytest.raises(ValueError, match="do not fit audEERING's published Wav2Small") as info:
        load_model("w2s", registry(f"{{path: '{folder}'}}"))
    assert named in str(info.value)


def test_a_config_with_other_settings_is_refused(tmp_path):
    folder = write_checkpoint(tmp_path / "c", learned(), dict(CONFIG, n_fft=128))
    with pytest.raises(
        ValueError, match="config.json sets n_fft=128, but audEERING's published Wav2Small has n_fft=64"
    ):
        load_model("w2s", registry(f"{{path: '{folder}'}}"))


def test_a_signal_shorter_than_one_window_is_refused(tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", learned())
    model = load_model("w2s", registry(f"{{path: '{folder}'}}"))
    with pytest.raises(ValueError, match="32 samples is shorter than one 64-sample analysis window"):
        model(np.zeros(32, dtype=np.float32), 16000)


def _hub_cache(tmp_path, state) -> None:
    r"""A Hugging Face cache holding ``REPO`` at ``COMMIT``, with ``main`` pointing to it."""
    repo = tmp_path / "hf-cache" / f"models--{REPO.replace('/', '--')}"
    write_checkpoint(repo / "snapshots" / COMMIT, state)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


def test_hub_source_pinned_to_a_commit_is_served_from_the_cache(tmp_path):
    state = learned() | front_end()
    _hub_cache(tmp_path, state)
    with warnings.catch_warnings():
        warnings.simplefilter("error", download.UnpinnedRevisionWarning)
        model = load_model("w2s", registry(f"{{hub: {REPO}, revision: {COMMIT}}}"))
    x = signals(8000)[0]
    np.testing.assert_allclose(model(x, 16000), reference(state, x), rtol=1e-4, atol=1e-5)


def test_unpinned_hub_source_warns_with_the_commit_it_used(tmp_path):
    _hub_cache(tmp_path, learned())
    pinned = load_model("w2s", registry(f"{{hub: {REPO}, revision: {COMMIT}}}"))
    with pytest.warns(download.UnpinnedRevisionWarning, match=f"source.revision: {COMMIT}"):
        model = load_model("w2s", registry(f"{{hub: {REPO}, revision: unpinned}}"))
    assert model.artifact_hash == pinned.artifact_hash  # results carry the hash of the weights used


def test_uncached_hub_source_is_unavailable_fast_and_says_how():
    start = time.monotonic()
    with pytest.raises(download.WeightsUnavailableError) as info:
        load_model("w2s", registry("{hub: audeering/wav2small, revision: unpinned}"))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith("weights not available: w2s needs https://huggingface.co/audeering/wav2small/tree/main")
    assert "`hf download audeering/wav2small`" in message and "HF_HUB_OFFLINE" in message


def test_model_all_skips_the_project_entry_while_its_weights_are_not_here(
    tmp_path, dataset_registry, audb_repository, capsys
):
    from benchmark import cli, results
    from benchmark.paths import PROJECT_ROOT

    project = yaml.safe_load((PROJECT_ROOT / "models.yaml").read_text())["models"]
    entry = next(e for e in project if e["name"] == "audeering-wav2small")
    assert entry["kind"] == "wav2small-hf" and entry["source"]["hub"] == "audeering/wav2small"
    models = yaml.safe_load(BASELINES_YAML)
    models["models"].append(entry)
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models, allow_unicode=True))
    argv = ["run", "--model", "all", "--models", str(tmp_path / "models.yaml"), "--datasets"]
    argv += [str(tmp_path / "datasets.yaml"), "--data", "real", "--split", "test-1", "--tests", "correctness"]
    argv += ["--repository", f"{audb_repository.name}={audb_repository.host}", "--bootstrap", "20"]
    assert cli.main([*argv, "--no-docs", "--no-progress"]) == cli.EXIT_OK
    assert "skip audeering-wav2small: weights not available" in capsys.readouterr().err
    runs = results.read_table("runs", Path(os.environ["SER_BENCHMARK_RESULTS"]))
    assert sorted(runs["model"]) == ["constant", "random-gaussian"]
