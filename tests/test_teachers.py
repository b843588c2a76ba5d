"""Teacher loaders: real artefacts of the published formats with tiny random weights."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

from benchmark.data.datasets import EvalSet
from benchmark.hashing import checkpoint_files, checkpoint_hash, sha256_file, sha256_tree
from benchmark.models import download
from benchmark.registry import Registry, RegistryError, load_model

ADV = "{arousal: arousal, dominance: dominance, valence: valence}"
HUB_ID = "ser-benchmark-tests/not-a-model"  # never cached: exercises the offline path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def registry(*entries: str) -> Registry:
    r"""Registry from entry snippets (``name kind source outputs [params]``)."""
    text = "models:\n"
    for e in entries:
        name, kind, source, outputs, *params = e.split("|")
        text += (
            f"  - name: {name}\n    kind: {kind}\n    role: teacher\n    source: {source}\n"
            f"    sampling_rate: 16000\n    outputs: {outputs}\n    description: test\n"
        )
        if params:
            text += f"    params: {params[0]}\n"
    return Registry.from_yaml_text(text)


def signals(*lengths: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


# --- audonnx ---------------------------------------------------------------------------


def _tiny_onnx(folder):
    r"""A small conv net exported like audEERING's models: ``signal`` → ``hidden_states``, ``logits``."""
    import audonnx
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 8, kernel_size=400, stride=320)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, signal):
            hidden = torch.relu(self.conv(signal.unsqueeze(1))).mean(dim=2)
            return hidden, torch.sigmoid(self.head(hidden))

    torch.manual_seed(0)
    net = Net().eval()
    folder.mkdir(parents=True)
    torch.onnx.export(
        net,
        (torch.zeros(1, 16000),),
        str(folder / "model.onnx"),
        input_names=["signal"],
        output_names=["hidden_states", "logits"],
        dynamic_axes={"signal": {1: "time"}},
        dynamo=False,
    )
    model = audonnx.Model(str(folder / "model.onnx"), labels={"logits": ["arousal", "dominance", "valence"]})
    model.to_yaml(str(folder / "model.yaml"))
    return net


@pytest.fixture
def onnx_zip(tmp_path):
    r"""Zip of a tiny audonnx model served from 127.0.0.1; yields (url, sha256, net, stop, requests)."""
    net = _tiny_onnx(tmp_path / "model")
    www = tmp_path / "www"
    www.mkdir()
    with zipfile.ZipFile(www / "tiny-1.0.0.zip", "w") as zf:
        for name in ("model.yaml", "model.onnx"):
            zf.write(tmp_path / "model" / name, name)
    digest = sha256_file(www / "tiny-1.0.0.zip")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            stopped.append(True)

    yield f"http://127.0.0.1:{httpd.server_address[1]}/tiny-1.0.0.zip", digest, net, stop, requests
    stop()


def test_audonnx_url_fetch_unpack_predict(onnx_zip, tmp_path):
    import torch

    url, digest, net, stop, requests = onnx_zip
    reg = registry(f"tiny|audonnx|{{url: '{url}', sha256: {digest}}}|{ADV}")
    model = load_model("tiny", reg)
    assert requests == ["/tiny-1.0.0.zip"]
    assert model.artifact_hash == digest
    x = signals(24000)[0]
    y = model(x, 16000)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)[None])[1][0].numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert model.predict_batch(signals(8000, 16000)).shape == (2, 3)

    stop()  # the second load is served from the cache, without network
    again = load_model("tiny", reg)
    np.testing.assert_allclose(again(x, 16000), y)
    assert requests == ["/tiny-1.0.0.zip"]


def test_audonnx_path_sources(tmp_path):
    _tiny_onnx(tmp_path / "m")
    reg = registry(
        f"folder|audonnx|{{path: '{tmp_path / 'm'}'}}|{ADV}",
        f"yaml|audonnx|{{path: '{tmp_path / 'm' / 'model.yaml'}'}}|{{valence: valence}}",
    )
    folder, yaml_file = load_model("folder", reg), load_model("yaml", reg)
    assert folder.artifact_hash == yaml_file.artifact_hash == sha256_tree(tmp_path / "m")
    x = signals(16000)[0]
    a, v = folder(x, 16000), yaml_file(x, 16000)
    assert np.isnan(v[:2]).all() and v[2] == pytest.approx(a[2])


def test_audonnx_unknown_label_is_clear(tmp_path):
    _tiny_onnx(tmp_path / "m")
    reg = registry(f"bad|audonnx|{{path: '{tmp_path / 'm'}'}}|{{arousal: activation}}")
    with pytest.raises(ValueError, match="no output node has all labels.*'arousal', 'dominance', 'valence'"):
        load_model("bad", reg)


def test_audonnx_offline_is_fast_and_clear(onnx_zip):
    url, digest, _, stop, _ = onnx_zip
    stop()
    reg = registry(f"w2v2-L|audonnx|{{url: '{url}', sha256: {digest}}}|{ADV}")
    with pytest.raises(download.WeightsUnavailableError) as info:
        load_model("w2v2-L", reg)
    assert str(info.value).endswith("[host unreachable]")  # the connection check refused it: no download was tried
    assert f"weights not available: w2v2-L needs {url}" in str(info.value)
    assert str(download.cached_path(url, digest)) in str(info.value)


# --- wav2vec 2.0 -----------------------------------------------------------------------


def _tiny_w2v2(folder, norm: str = "layer"):
    import torch
    from transformers import Wav2Vec2Config

    from benchmark.models import w2v2

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        num_labels=3,
        id2label={0: "arousal", 1: "dominance", 2: "valence"},
        label2id={"arousal": 0, "dominance": 1, "valence": 2},
    )
    torch.manual_seed(0)
    model = w2v2.emotion_model_class()(config)
    model.save_pretrained(folder)
    return model


def test_w2v2_path_single_and_batch(tmp_path):
    import torch

    from benchmark.models import w2v2

    net = _tiny_w2v2(tmp_path / "ckpt")
    reg = registry(f"w2v2|w2v2-hf|{{path: '{tmp_path / 'ckpt'}'}}|{ADV}|{{batch_size: 2}}")
    model = load_model("w2v2", reg)
    assert model.artifact_hash == checkpoint_hash(tmp_path / "ckpt")
    xs = signals(8000, 16000, 12000)
    single = np.stack([model(x, 16000) for x in xs])
    assert single.shape == (3, 3) and np.isfinite(single).all()
    np.testing.assert_allclose(model.predict_batch(xs), single, atol=1e-5)
    # same as the model card's recipe: z-normalise, run, take the logits
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(w2v2.z_normalize(xs[0]))[None])[1][0].numpy()
    np.testing.assert_allclose(single[0], expected, atol=1e-5)
    # extra files in the folder do not change the artifact
    (tmp_path / "ckpt" / "README.md").write_text("notes")
    assert load_model("w2v2", reg).artifact_hash == model.artifact_hash


def test_w2v2_group_norm_batches_equal_lengths_only(tmp_path):
    _tiny_w2v2(tmp_path / "ckpt", norm="group")
    model = load_model("g", registry(f"g|w2v2-hf|{{path: '{tmp_path / 'ckpt'}'}}|{ADV}"))
    assert not model.use_mask
    xs = signals(8000, 12000, 8000)
    single = np.stack([model(x, 16000) for x in xs])
    np.testing.assert_allclose(model.predict_batch(xs), single, atol=1e-5)


def test_w2v2_without_head_is_refused(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,),
        conv_stride=(5,),
        conv_kernel=(10,),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="missing weights: .*classifier"):
        load_model("p", registry(f"p|w2v2-hf|{{path: '{tmp_path / 'plain'}'}}|{ADV}"))


@pytest.mark.parametrize("kind", ["w2v2-hf", "wavlm-hf"])
def test_hub_source_offline_is_fast_and_clear(kind):
    reg = registry(f"hubmodel|{kind}|{{hub: {HUB_ID}, revision: 0123456789abcdef0123456789abcdef01234567}}|{ADV}")
    with pytest.raises(download.WeightsUnavailableError) as info:
        load_model("hubmodel", reg)
    message = str(info.value)
    # refused before any hub call: offline mode or the connection check, not a failed download
    assert message.endswith(("[HF_HUB_OFFLINE is set and it is not cached]", "[hub unreachable]"))
    assert message.startswith(f"weights not available: hubmodel needs https://huggingface.co/{HUB_ID}")
    assert "HF_HUB_OFFLINE" in message and "source.path" in message and "hf download" in message


# --- WavLM (Odyssey baseline) ----------------------------------------------------------


def _tiny_wavlm(folder, **ser):
    import torch
    from transformers import WavLMConfig

    from benchmark.models import wavlm

    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_buckets=16,
        max_bucket_distance=32,
    )
    ser = {"hidden_size": 16, "mean": 0.001, "std": 0.1, **ser}
    torch.manual_seed(0)
    model = wavlm.build(ser, config)
    wavlm.save(model, folder, ser)
    return model.eval()


def test_wavlm_path_single_batch_and_scale(tmp_path):
    import torch

    net = _tiny_wavlm(tmp_path / "ckpt")
    path = tmp_path / "ckpt"
    reg = registry(
        f"odyssey|wavlm-hf|{{path: '{path}'}}|{ADV}",
        f"raw17|wavlm-hf|{{path: '{path}'}}|{ADV}|{{output_range: [1, 7]}}",
    )
    model = load_model("odyssey", reg)
    assert model.artifact_hash == checkpoint_hash(path)
    xs = signals(8000, 16000, 12000)
    single = np.stack([model(x, 16000) for x in xs])
    assert single.shape == (3, 3) and np.isfinite(single).all()
    np.testing.assert_allclose(model.predict_batch(xs), single, atol=1e-5)
    # the model card's recipe: global mean/std normalisation, all-ones mask
    x = torch.from_numpy(((xs[0] - 0.001) / (0.1 + 1e-6)).astype(np.float32))[None]
    with torch.no_grad():
        expected = net(x, torch.ones_like(x, dtype=torch.long))[0].numpy()
    np.testing.assert_allclose(single[0], expected, atol=1e-5)
    np.testing.assert_allclose(load_model("raw17", reg)(xs[0], 16000), (single[0] - 1) / 6, atol=1e-6)


def test_wavlm_reads_legacy_weight_norm_names(tmp_path):
    from safetensors.torch import load_file, save_file

    _tiny_wavlm(tmp_path / "ckpt")
    file = tmp_path / "ckpt" / "model.safetensors"
    state = load_file(str(file))
    reference = load_model("a", registry(f"a|wavlm-hf|{{path: '{tmp_path / 'ckpt'}'}}|{ADV}"))(signals(9000)[0], 16000)
    old_names = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}
    legacy = {functools.reduce(lambda k, r: k.replace(*r), old_names.items(), k): v for k, v in state.items()}
    assert any(k.endswith("weight_g") for k in legacy)
    save_file(legacy, str(file))
    again = load_model("b", registry(f"b|wavlm-hf|{{path: '{tmp_path / 'ckpt'}'}}|{ADV}"))(signals(9000)[0], 16000)
    np.testing.assert_allclose(again, reference, atol=1e-6)


def test_wavlm_wrong_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    _tiny_wavlm(tmp_path / "ckpt")
    file = tmp_path / "ckpt" / "model.safetensors"
    state = load_file(str(file))
    state["extra.weight"] = state.pop("pool_model.attention")
    save_file(state, str(file))
    with pytest.raises(ValueError, match="do not fit the Odyssey WavLM architecture"):
        load_model("x", registry(f"x|wavlm-hf|{{path: '{tmp_path / 'ckpt'}'}}|{ADV}"))


# --- ensemble --------------------------------------------------------------------------


def _baselines(*extra: str) -> Registry:
    return registry(
        f"low|constant|{{}}|{ADV}|{{value: 0.2}}",
        f"high|constant|{{}}|{ADV}|{{value: 0.6}}",
        "val|constant|{}|{valence: valence}|{value: 1.0}",
        *extra,
    )


def test_ensemble_mean_weights_and_nan():
    reg = _baselines(
        f"mean|ensemble|{{members: [low, high]}}|{ADV}",
        f"swapped|ensemble|{{members: [high, low]}}|{ADV}",
        f"weighted|ensemble|{{members: [low, high]}}|{ADV}|{{weights: [3, 1]}}",
        f"partial|ensemble|{{members: [low, val]}}|{ADV}",
    )
    x = signals(4000)[0]
    np.testing.assert_allclose(load_model("mean", reg)(x, 16000), [0.4, 0.4, 0.4])
    np.testing.assert_allclose(load_model("weighted", reg)(x, 16000), [0.3, 0.3, 0.3])
    # valence only from 'val' is averaged with 'low'; A and D come from 'low' alone
    np.testing.assert_allclose(load_model("partial", reg)(x, 16000), [0.2, 0.2, 0.6])
    batch = load_model("partial", reg).predict_batch(signals(4000, 5000))
    np.testing.assert_allclose(batch, [[0.2, 0.2, 0.6]] * 2)
    assert load_model("mean", reg).artifact_hash == load_model("swapped", reg).artifact_hash
    assert load_model("mean", reg).artifact_hash != load_model("weighted", reg).artifact_hash


def test_ensemble_bad_weights():
    reg = _baselines(f"e|ensemble|{{members: [low, high]}}|{ADV}|{{weights: [1]}}")
    with pytest.raises(ValueError, match="1 weights for 2 members"):
        load_model("e", reg)


# --- eGeMAPS ridge ---------------------------------------------------------------------


def _tone_set(tmp_path, n: int = 12) -> EvalSet:
    r"""Tones whose loudness and pitch carry arousal: 6 speakers × 2 files."""
    import audiofile

    root = tmp_path / "tones"
    root.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    files, rows, speakers = [], [], []
    for i in range(n):
        arousal = (i % 6) / 5
        f0 = 120 + 150 * arousal
        y = (0.05 + 0.3 * arousal) * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
        path = root / f"f{i:02d}.wav"
        audiofile.write(str(path), y.astype(np.float32), 16000)
        files.append(str(path))
        rows.append({"arousal": arousal, "valence": rng.uniform()})
        speakers.append(f"s{i // 2}")
    truth = pd.DataFrame(rows, index=pd.Index(files, name="file"))
    speaker = pd.Series(speakers, index=truth.index, dtype="string")
    return EvalSet("tones", "tones", "1.0.0", "train", "train", truth, speaker, None, str(root))


def test_egemaps_fit_and_predict(tmp_path):
    import audiofile

    from benchmark.models import egemaps

    evalset = _tone_set(tmp_path)
    model = egemaps.fit(evalset, alphas=[0.1, 10.0, 1000.0], folds=3, verbose=False)
    assert model.meta["dimensions"] == ["arousal", "valence"]
    xs = [audiofile.read(f)[0] for f in evalset.files]
    batch = model.predict_batch(xs)
    assert batch.shape == (12, 3)
    assert np.isnan(batch[:, 1]).all() and np.isfinite(batch[:, [0, 2]]).all()
    np.testing.assert_allclose(model(xs[3], 16000), batch[3])
    # loud high tones were labelled high arousal: the fit follows
    assert np.corrcoef(batch[:, 0], evalset.truth["arousal"])[0, 1] > 0.8

    refit = egemaps.fit(evalset, alphas=[0.1, 10.0, 1000.0], folds=3, verbose=False)
    assert refit.artifact_hash == model.artifact_hash  # deterministic .npz bytes
    path = model.save(tmp_path / "fitted")
    assert sha256_file(path) == model.artifact_hash


def _pinned(path, sha: str, params: str = "") -> str:
    return f"pinned|egemaps|{{path: {path}, sha256: {sha}}}|{ADV}" + (f"|{params}" if params else "")


def test_egemaps_pinned_file_loads_with_its_hash(tmp_path):
    import audiofile

    from benchmark.models import egemaps

    evalset = _tone_set(tmp_path)
    fitted = egemaps.fit(evalset, alphas=[0.1, 10.0], folds=3, verbose=False)
    path = fitted.save(tmp_path / "teacher")
    sha = sha256_file(path)
    assert sha == fitted.artifact_hash  # the registry's checksum is the result rows' model hash

    model = load_model("pinned", registry(_pinned(path, sha, "{num_workers: 2}")))
    assert model.artifact_hash == sha and model.num_workers == 2
    assert model.meta["data"]["split"] == "train"  # model.json travels with it
    x = audiofile.read(evalset.files[0])[0]
    np.testing.assert_array_equal(model(x, 16000), fitted(x, 16000))

    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry(_pinned(path, "ab" * 32))
    with pytest.raises(RegistryError, match="loading a model never fits one"):
        registry(f"both|egemaps|{{path: {path}, sha256: {sha}, dataset: x, split: y}}|{ADV}")
    with pytest.raises(RegistryError, match="loading a model never fits one"):
        registry(f"fit|egemaps|{{dataset: x, split: y}}|{ADV}")
    with pytest.raises(RegistryError, match="required with 'path'"):
        registry(f"unpinned|egemaps|{{path: {path}}}|{ADV}")
    with pytest.raises(ValueError, match="params alphas have no effect on a fitted model"):
        load_model("pinned", registry(_pinned(path, sha, "{alphas: [1.0]}")))


def test_project_teacher_is_pinned():
    # the demo teacher is a committed file: its hash must not depend on the machine that fits it
    entry = Registry.from_file()["egemaps-teacher"]
    assert set(entry.source) == {"path", "sha256"}
    assert sha256_file(entry.resolve(entry.source["path"])) == entry.source["sha256"]


def test_egemaps_clips_off_scale_features(tmp_path):
    r"""A feature thousands of SDs off (a near-zero denominator) must not throw the output off the scale."""
    from benchmark.models import egemaps

    model = egemaps.fit(_tone_set(tmp_path), alphas=[0.1, 10.0], folds=3, clip=3.0, verbose=False)
    a = model.arrays
    assert a["clip"].tolist() == [3.0]
    typical = a["mean"].copy()
    wild = typical.copy()
    wild[np.argmax(np.abs(np.nan_to_num(a["coef"][0])))] += 3305.0 * a["scale"].max() * 1e3
    at_bound = np.clip((wild - a["mean"]) / a["scale"], -3.0, 3.0) * a["scale"] + a["mean"]
    np.testing.assert_allclose(model.regress(wild), model.regress(at_bound))
    swing = np.abs(model.regress(wild) - model.regress(typical))[0, [0, 2]]
    assert (swing <= 3.0 * np.abs(a["coef"][[0, 2]]).max(axis=1) + 1e-12).all()

    # a format-1 file (no 'clip' array) loads as unclipped, so its hash and outputs stay what they were
    legacy = {k: v for k, v in a.items() if k != "clip"}
    path = tmp_path / "legacy" / "model.npz"
    path.parent.mkdir()
    path.write_bytes(egemaps.deterministic_npz(legacy))
    old = egemaps.EgemapsRegressor.from_file(path)
    assert np.isinf(old.arrays["clip"]).all() and old.artifact_hash == sha256_file(path)
    assert np.nanmax(np.abs(old.regress(wild) - model.regress(wild))) > 1.0


def test_egemaps_ignores_recording_gain(tmp_path):
    r"""Gain-normalised like wav2vec2 and the students: -12 dB leaves the outputs (almost) unchanged."""
    import audiofile

    from benchmark.models import egemaps

    evalset = _tone_set(tmp_path)
    model = egemaps.fit(evalset, alphas=[0.1, 10.0], folds=3, verbose=False)
    assert model.arrays["normalise"].tolist() == [1.0]
    signal = audiofile.read(evalset.files[5])[0]
    loud, quiet = model(signal, 16000), model(signal * 0.25, 16000)
    np.testing.assert_allclose(quiet[[0, 2]], loud[[0, 2]], atol=0.02)

    raw = egemaps.fit(evalset, alphas=[0.1, 10.0], folds=3, normalise=False, verbose=False)
    assert "normalise" not in np.load(io.BytesIO(raw.to_bytes())).files  # the format-1 layout
    assert np.abs(raw(signal * 0.25, 16000) - raw(signal, 16000))[[0, 2]].max() > 0.02


def test_checkpoint_hash_matches_files(tmp_path):

    _tiny_w2v2(tmp_path / "ckpt")
    files = checkpoint_files(tmp_path / "ckpt")
    assert [f.name for f in files] == ["config.json", "model.safetensors"]
    lines = "\n".join(f"{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}" for f in files)
    assert checkpoint_hash(tmp_path / "ckpt") == hashlib.sha256(lines.encode()).hexdigest()
