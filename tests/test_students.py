"""Student architectures, their ONNX export and int8 variant, efficiency figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.students import ARCHITECTURES, MIN_SAMPLES, build, count_parameters, export
from benchmark.students.frontend import LogMelFrontend, PowerSpectrogram, hann_window, mel_filterbank


@pytest.fixture(autouse=True)
def _one_thread():
    r"""One torch thread, as the parity and efficiency checks assume (conftest restores the setting)."""
    torch.set_num_threads(1)


# Trainable parameters (count_parameters); derivations in docs/students.md.
# ImageNet counts of the reference implementations, minus the RGB stem
# (2/3 of its weights) and the 1000-way classifier, plus a 3-way one.
_V3_HEAD = {"mobilenetv3-small": 1024, "mobilenetv3-large": 1280}


def _from_imagenet(count: int, stem: int, hidden: int) -> int:
    return count - 2 * stem * 9 - (hidden * 1000 + 1000) + (hidden * 3 + 3)


TARGETS = {
    "wav2small": 72_000,  # paper title
    "wav2small-17k": 17_000,  # audeering/wav2small model card
    "mobilenetv3-small": _from_imagenet(2_542_856, 16, 1024),  # Howard et al.: 2.5M
    "mobilenetv3-large": _from_imagenet(5_483_032, 16, 1280),  # Howard et al.: 5.4M
    "mobilenetv4-conv-small": _from_imagenet(3_774_024, 32, 1280),  # Qin et al.: 3.8M
    "mobilenetv4-conv-medium": _from_imagenet(9_715_512, 32, 1280),  # reference code: 9.7M
}


def realistic(module: nn.Module, seed: int = 0) -> nn.Module:
    r"""Random weights with trained-like scales, in eval mode.

    BatchNorm statistics are set from one batch (as if trained), and the
    output layer is scaled so outputs are O(1) like the teacher's targets:
    freshly initialised running statistics make eval-mode BatchNorm an
    identity and the outputs tiny, which would make tolerances vacuous.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(0.1 * torch.randn(2, 32000, generator=generator))
    for m in norms:
        m.momentum = 0.1
    module.eval()
    with torch.no_grad():
        scale = float(module(0.05 * torch.randn(1, 48000, generator=generator)).abs().max())
        if scale > 1.0:
            module.head.weight /= scale
            module.head.bias /= scale
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    r"""Architecture → (module, fp32 folder), exported once per test module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            module = realistic(build(name))
            folder = export.export_onnx(module, tmp_path_factory.mktemp(name) / "fp32")
            cache[name] = module, folder
        return cache[name]

    return get


# --- architectures ------------------------------------------------------


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_parameter_count(name):
    count = count_parameters(build(name))
    target = TARGETS[name]
    assert abs(count - target) <= 0.05 * target, f"{name}: {count} vs target {target}"


def test_frontend_is_not_counted():
    frontend = LogMelFrontend(64, 32, 26)
    assert count_parameters(frontend) == 0

    assert {name for name, _ in frontend.named_buffers()} == {"spectrogram.dft", "logmel.mel"}
    # rebuilt from the configuration, not stored in checkpoints
    assert frontend.state_dict() == {}


def test_mobilenetv4_small_matches_the_papers_count_with_its_stft_kernel():
    # Wav2Small paper: MobileNetV4-S student, 3.12M parameters (frozen STFT conv counted).
    count = count_parameters(build("mobilenetv4-conv-small"), frozen_stft=True)
    assert abs(count - 3_120_000) <= 0.05 * 3_120_000, count


def test_unknown_architecture():
    with pytest.raises(ValueError, match="known: wav2small, wav2small-17k"):
        build("wav2big")


@pytest.fixture
def torch_seed():
    r"""Seed torch's global generator for one test and give the process its previous state back afterwards."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_forward_shape(name, torch_seed):
    model = build(name).eval()
    with torch.no_grad():
        for samples in (MIN_SAMPLES, 16000, int(7.3 * 16000)):
            out = model(0.1 * torch.randn(2, samples))
            assert out.shape == (2, 3)
            assert torch.isfinite(out).all()


# --- front end ----------------------------------------------------------


def test_dft_conv_matches_fft():
    n_fft, hop = 64, 32
    signal = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    power = PowerSpectrogram(n_fft, hop)(torch.from_numpy(signal)[None])[0].numpy()
    frames = np.stack([signal[i : i + n_fft] for i in range(0, len(signal) - n_fft + 1, hop)])
    expected = np.abs(np.fft.rfft(frames * hann_window(n_fft), axis=1)).T ** 2
    assert power.shape == expected.shape
    np.testing.assert_allclose(power, expected, rtol=1e-4, atol=1e-3)


def test_mel_filterbank():
    weights = mel_filterbank(400, 64)
    assert weights.shape == (201, 64)
    assert (weights >= 0).all()
    # every band is non-empty at a 25 ms resolution, peaks rise with frequency
    assert (weights.max(axis=0) > 0).all()
    assert (np.diff(weights.argmax(axis=0)) >= 0).all()


def test_normalisation_makes_gain_irrelevant(torch_seed):
    model = build("wav2small-17k").eval()
    signal = torch.randn(1, 16000)
    with torch.no_grad():
        torch.testing.assert_close(model(signal), model(0.1 * signal), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_training_memory_format_keeps_the_function(name):
    # distillation trains in the student's preferred layout: only summation order may change
    model = build(name).eval()
    signal = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(signal)
        for precision in ("fp32", "bf16"):
            model.to(memory_format=model.training_memory_format(precision))
            torch.testing.assert_close(model(signal), reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["wav2small", "mobilenetv4-conv-small"])
def test_frontend_stays_float32_under_bf16_autocast(name):
    # mixed-precision training must not round the log-mel image (nor, for Wav2Small, the first block)
    model = build(name).train()
    signal = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    seen = {}
    model.frontend.register_forward_hook(lambda m, i, out: seen.setdefault("frontend", out))
    if name == "wav2small":
        model.features[0].register_forward_hook(lambda m, i, out: seen.setdefault("block", out))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(signal)
        downstream = model.features[-1][0](torch.ones(1, model.config.channels, 3, 3)) if name == "wav2small" else None
    assert seen["frontend"].dtype == torch.float32
    torch.testing.assert_close(seen["frontend"], model.frontend(signal), atol=0, rtol=0)
    if name == "wav2small":
        assert seen["block"].dtype == torch.float32
        assert downstream.dtype == torch.bfloat16  # the rest does run in bf16


# --- ONNX ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnx_parity(name, exported):
    module, folder = exported(name)
    assert (folder / "model.onnx").exists() and (folder / "model.yaml").exists()
    seconds = tuple(np.random.default_rng(1).uniform(1.0, 10.0, size=2).round(3))
    assert export.max_abs_difference(module, folder, seconds=(1.0, *seconds)) <= 1e-4


def test_onnx_interface(exported):
    import audonnx

    _, folder = exported("wav2small")
    model = audonnx.load(str(folder))
    assert model.inputs["signal"].shape == [1, -1]
    assert model.outputs["logits"].labels == ["arousal", "dominance", "valence"]
    out = model(np.zeros((1, MIN_SAMPLES), dtype=np.float32), 16000)
    assert out.shape == (1, 3) and np.isfinite(out).all()


@pytest.mark.parametrize("name", ["wav2small", "wav2small-17k"])
def test_int8(name, exported, tmp_path):
    import audonnx

    module, folder = exported(name)
    int8 = export.quantize_int8(folder, tmp_path / "int8")
    assert audonnx.load(str(int8)).outputs["logits"].labels == ["arousal", "dominance", "valence"]
    # weights shrink 4x; the float front end and quantisation nodes stay
    assert (int8 / "model.onnx").stat().st_size < (folder / "model.onnx").stat().st_size
    # outputs are O(1) (see realistic()): 8-bit activations cost a few hundredths at most
    assert export.max_abs_difference(module, int8) <= 0.05
    # the front end and the output layer stay in float
    import onnx

    nodes = onnx.load(str(int8 / "model.onnx")).graph.node
    head = {n.op_type for n in nodes if n.name.startswith(export.HEAD_SCOPE)}
    assert head and not head & {"MatMulInteger", "DynamicQuantizeLinear", "ConvInteger"}
    assert any(n.op_type == "ConvInteger" for n in nodes)


def test_int8_weight_types(exported, tmp_path):
    import audonnx

    _, folder = exported("mobilenetv3-small")
    with pytest.raises(ValueError, match="QUInt8"):
        export.quantize_int8(folder, tmp_path / "bad", weight_type="int4")
    signed = export.quantize_int8(folder, tmp_path / "qint8", weight_type="QInt8")
    out = audonnx.load(str(signed))(np.zeros((1, 16000), dtype=np.float32), 16000)
    assert out.shape == (1, 3) and np.isfinite(out).all()


def test_onnx_difference_finds_a_changed_output(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    _, folder = exported("wav2small-17k")
    signals = [np.random.default_rng(seed).standard_normal(16000 * (seed + 1)).astype(np.float32) for seed in range(2)]
    assert export.onnx_max_abs_difference(folder, folder / "model.onnx", signals) == [0.0, 0.0]
    # the head's bias moves every output by exactly its change
    model = onnx.load(str(folder / "model.onnx"))
    bias = next(t for t in model.graph.initializer if t.name == "head.bias")
    values = numpy_helper.to_array(bias) + np.array([0.0, 0.25, -0.5], dtype=np.float32)
    bias.CopyFrom(numpy_helper.from_array(values, "head.bias"))
    onnx.save(model, str(tmp_path / "moved.onnx"))
    assert export.onnx_max_abs_difference(folder, tmp_path / "moved.onnx", signals) == pytest.approx(
        [0.5, 0.5], abs=1e-6
    )
    with pytest.raises(FileNotFoundError, match="model folder"):
        export.onnx_max_abs_difference(folder, tmp_path / "missing", signals)


# --- efficiency -----------------------------------------------------------


def _check_figures(figures: dict, onnx: bool, repeats: int, folder=None):
    from benchmark.efficiency import COLUMNS

    assert set(COLUMNS) - {"model", "model_sha256", "weights"} == set(figures)  # run() says whose weights
    assert figures["threads"] == 1 and figures["repeats"] == repeats
    # both are the same median: ms per 5 s of audio, and how many 5 s clips fit in the 5 s they last
    assert figures["xrt"] * figures["ms_per_5s"] == pytest.approx(5000.0)
    assert figures["ms_per_5s_iqr"] >= 0
    if onnx:
        onnx_files = list(folder.glob("*.onnx"))
        assert onnx_files and figures["onnx_bytes"] == sum(p.stat().st_size for p in onnx_files)
        assert figures["runtime"].startswith("onnxruntime")
        # the probe process holds the interpreter, numpy and onnxruntime besides the model's weights
        assert figures["peak_rss_mb"] > figures["onnx_bytes"] / 2**20 + 20
    else:
        assert np.isnan(figures["parameters"]) and np.isnan(figures["onnx_bytes"])
        assert figures["runtime"].startswith("python ")
        assert figures["peak_rss_mb"] > 10  # a Python process with numpy loaded


def test_timing_summary_hand_computed():
    from benchmark.efficiency import _summary

    # four timings of a 1 s clip: median 25 ms → 125 ms per 5 s; IQR (32.5 − 17.5) · 5 = 75; 1000 / 25 = 40× real time
    assert _summary([40.0, 10.0, 30.0, 20.0], 1.0) == {"ms_per_5s": 125.0, "ms_per_5s_iqr": 75.0, "xrt": 40.0}


def test_measure_times_the_predictor_call(monkeypatch):
    from benchmark import efficiency
    from benchmark.efficiency import measure
    from benchmark.models.base import Predictor

    # a clock that only the predictor moves: 20 ms a call, so the figures are known without timing anything
    clock = {"now": 0.0, "calls": 0}
    monkeypatch.setattr(efficiency.time, "perf_counter", lambda: clock["now"])

    class Step(Predictor):
        def predict(self, signal):
            assert len(signal) == 16000  # the 1 s clip
            clock["now"] += 0.02
            clock["calls"] += 1
            return np.zeros(3)

    figures = measure(Step("step", "0" * 64), repeats=3, seconds=1.0)
    assert clock["calls"] == 2 + 3  # two untimed warm-up calls, then the timed ones
    # 20 ms per 1 s clip: 100 ms per 5 s, 50× real time, no spread
    assert figures["ms_per_5s"] == pytest.approx(100.0) and figures["xrt"] == pytest.approx(50.0)
    assert figures["ms_per_5s_iqr"] == pytest.approx(0.0) and figures["repeats"] == 3


def test_measure_onnx(exported):
    from benchmark.efficiency import measure

    _, folder = exported("wav2small-17k")
    figures = measure(folder, repeats=3, seconds=1.0)
    _check_figures(figures, onnx=True, repeats=3, folder=folder)
    # frozen front end (4224 + 858 constants) in, BatchNorm folded out
    assert figures["parameters"] > count_parameters(build("wav2small-17k"))


@pytest.fixture
def registry(exported, tmp_path, monkeypatch):
    from benchmark.registry import Registry

    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "results"))
    _, folder = exported("wav2small-17k")
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - name: const\n    kind: constant\n    role: baseline\n    source: {}\n"
        "    sampling_rate: 16000\n    outputs: {arousal: arousal}\n    description: c\n"
        f"  - name: tiny\n    kind: audonnx\n    role: student\n    source: {{path: {folder}}}\n"
        "    sampling_rate: 16000\n    outputs: {arousal: arousal}\n    description: t\n"
    )
    return Registry.from_file(path)


def test_measure_predictor(registry):
    from benchmark.efficiency import measure
    from benchmark.registry import load_model

    figures = measure(
        load_model("const", registry),
        repeats=3,
        seconds=1.0,
        child={"registry": str(registry.path), "model": "const"},
    )
    _check_figures(figures, onnx=False, repeats=3)


def test_run_writes_table(registry, tmp_path):
    from benchmark.efficiency import COLUMNS, run
    from benchmark.results import read_table

    df = run(["tiny", "const"], registry, repeats=2, seconds=0.5)
    assert list(df.columns) == list(COLUMNS)
    table = read_table("efficiency", tmp_path / "results")
    assert sorted(table["model"]) == ["const", "tiny"]
    row = table.set_index("model").loc["tiny"]
    assert int(row["onnx_bytes"]) > 0 and len(row["model_sha256"]) == 64
    assert pd.isna(table.set_index("model").loc["const", "onnx_bytes"])


# --- layout experiments (experiments/distill_variant.py) ----------------------


def test_distill_variants_build_export_and_keep_their_counts(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "distill_variant.py"
    spec = importlib.util.spec_from_file_location("distill_variant", path)
    variant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(variant)
    variant.register()
    try:
        # the counts docs/distillation.md reports for the two variants
        assert count_parameters(build("wav2small-pool5")) == 72147
        assert count_parameters(build("wav2small")) == 71747
        model = build("wav2small-stats").eval()
        assert count_parameters(model) == 73083
        # the SD pooling exports with the front end and matches torch
        folder = tmp_path / "stats"
        export.export_onnx(model, folder)
        assert export.max_abs_difference(model, folder, seconds=(1.0, 3.7)) <= 1e-4
    finally:
        for name in variant.VARIANTS:
            ARCHITECTURES.pop(name, None)


# --- speed experiments (experiments/profile_onnx.py, experiments/wav2small_speed.py) ----


@pytest.fixture
def speed_experiments(monkeypatch):
    r"""The two experiment modules, imported from their folder (restored afterwards)."""
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "experiments"))
    return importlib.import_module("profile_onnx"), importlib.import_module("wav2small_speed")


def test_multiply_adds_of_wav2small_2(exported, speed_experiments):
    profile_onnx, _ = speed_experiments
    _, folder = exported("wav2small-17k")
    # 13 channels, 11 convolutions, MaxPool after the third; 5 s = 80,000 samples
    frames, mels, c = 1 + (80000 - 64) // 32, 26, 13
    pooled_frames, pooled_mels = (frames + 1) // 2, (mels + 1) // 2
    expected = (
        66 * 64 * frames  # DFT convolution
        + frames * mels * 33  # mel projection
        + c * 9 * mels * frames  # first convolution, one input channel
        + 2 * c * c * 9 * mels * frames  # convolutions 2 and 3
        + 8 * c * c * 9 * pooled_mels * pooled_frames  # convolutions 4 to 11
        + 2 * c * c * pooled_mels * pooled_frames  # attention: values and logits
        + c * c * pooled_mels  # Gram matrix
        + 3 * (c * pooled_mels + c * c)  # head
    )
    assert sum(profile_onnx.multiply_adds(str(folder), 5.0).values()) == expected


def test_padding_the_channels_keeps_the_function(exported, speed_experiments, tmp_path):
    import onnx

    _, speed = speed_experiments
    _, folder = exported("wav2small-17k")
    padded = speed.pad_channels(folder, tmp_path / "padded", 16)
    convs = [n for n in onnx.load(str(padded / "model.onnx")).graph.node if n.name.startswith("/features/")]
    weights = {t.name: list(t.dims) for t in onnx.load(str(padded / "model.onnx")).graph.initializer}
    assert [weights[n.input[1]][0] for n in convs if n.op_type == "Conv"] == [16] * 11
    signals = [np.random.default_rng(seed).standard_normal(24000).astype(np.float32) for seed in range(2)]
    assert max(export.onnx_max_abs_difference(folder, padded, signals)) <= 1e-5
