"""The models behind docs/research/wav2small-speed.md: an equivalent rewrite, other layouts, single layers.

Usage (from the repository root; writes ONNX model folders under OUT)::

    python experiments/wav2small_speed.py OUT
    python experiments/time_onnx.py weights/mobilenetv4-conv-small weights/wav2small OUT/padded OUT/layouts/*
    python scripts/check_export_equivalence.py weights/wav2small OUT/padded --audio demo

- ``OUT/padded``: the committed ``wav2small`` with its 24-channel
  convolutions zero-padded to 32 channels (every weight and output the
  same; the padded channels stay exactly zero through bias 0, ReLU and
  MaxPool, and the attention pool ignores them);
- ``OUT/layouts/NAME``: other 72K layouts (channels × depth, MaxPool
  position, hop) with seeded random weights (speed does not depend on the
  weight values), as the lead would distil them;

Prints, per model, the trainable parameters and the multiply-adds per 5 s,
then the CPU time of single convolutions of Wav2Small's shapes at 16, 24
and 32 channels (onnxruntime rounds channels up to its block size) and in
a mel-pair form.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmark import ONNX_FILE, Wav2SmallConfig, onnx_file

LAYOUTS = {
    "c24x14-pool3-hop32 (wav2small)": Wav2SmallConfig(24, 14),
    "c24x14-pool1-hop32": Wav2SmallConfig(24, 14, pool_after=1),
    "c24x14-pool3-hop64": Wav2SmallConfig(24, 14, n_fft=128, hop_length=64),
    "c24x14-pool1-hop64": Wav2SmallConfig(24, 14, pool_after=1, n_fft=128, hop_length=64),
    "c32x8-pool3-hop32": Wav2SmallConfig(32, 8),
    "c32x8-pool1-hop32": Wav2SmallConfig(32, 8, pool_after=1),
    "c32x8-pool1-hop64": Wav2SmallConfig(32, 8, pool_after=1, n_fft=128, hop_length=64),
    "c16x30-pool3-hop32": Wav2SmallConfig(16, 30),
    "c16x30-pool1-hop64": Wav2SmallConfig(16, 30, pool_after=1, n_fft=128, hop_length=64),
}
"""Layouts of about 72K parameters; hop 64 comes with a 128-sample window (8 ms, 65 bins)."""

LAYERS = {
    "24 ch, 26 x 2499": (24, 24, (3, 3), 26, 2499),
    "32 ch, 26 x 2499": (32, 32, (3, 3), 26, 2499),
    "16 ch, 26 x 2499": (16, 16, (3, 3), 26, 2499),
    "mel pairs: 96 -> 48 ch 1x3, 13 x 2499": (96, 48, (1, 3), 13, 2499),
    "24 ch, 13 x 1250": (24, 24, (3, 3), 13, 1250),
    "32 ch, 13 x 1250": (32, 32, (3, 3), 13, 1250),
}
"""Single convolutions: channels in, out, kernel, mel bands, frames (5 s at hop 32, before and after the pool).

The mel-pair form computes the 24-channel 3×3 convolution on two adjacent
mel bands at once: 4 input bands × 24 channels in, 2 output bands × 24
out, a 1×3 kernel with a quarter of its weights zero (the copies that
build its input at every layer are not timed).
"""


def pad_channels(src: str | Path, dst: Path, channels: int) -> Path:
    r"""Zero-pad the feature convolutions of an exported Wav2Small to ``channels`` channels."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_file(src)))
    weights = {t.name: t for t in model.graph.initializer}

    def pad(name: str, shape_of) -> None:
        values = numpy_helper.to_array(weights[name])
        padded = np.zeros(shape_of(values.shape), dtype=values.dtype)
        padded[tuple(slice(0, n) for n in values.shape)] = values
        weights[name].CopyFrom(numpy_helper.from_array(padded, name))

    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if node.name.startswith("/features/"):
            # the first convolution keeps its single input channel (the log-mel image)
            pad(node.input[1], lambda s: (channels, s[1] if s[1] == 1 else channels, *s[2:]))
            pad(node.input[2], lambda s: (channels,))
        elif node.name.startswith("/pool/"):
            pad(node.input[1], lambda s: (s[0], channels, *s[2:]))
    onnx.checker.check_model(model)
    dst.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst / ONNX_FILE))
    return dst


def layouts(out: Path) -> dict[str, Path]:
    r"""Export every layout of :data:`LAYOUTS` with seeded random weights."""
    import torch

    from benchmark import Wav2Small, export_onnx

    folders = {}
    for name, config in LAYOUTS.items():
        torch.manual_seed(0)
        module = Wav2Small(config).eval()
        folders[name] = export_onnx(module, out / name.split(" ")[0])
        print(f"{name}: {sum(p.numel() for p in module.parameters()):,} parameters")
    return folders


def time_layers(rounds: int = 20) -> str:
    r"""Markdown table: median process CPU ms of single 3×3 convolution + ReLU graphs (:data:`LAYERS`), interleaved."""
    import time

    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    cases = {}
    for name, (c_in, c_out, kernel, mels, frames) in LAYERS.items():
        weights = (0.05 * rng.standard_normal((c_out, c_in, *kernel))).astype(np.float32)
        pads = [kernel[0] // 2, kernel[1] // 2] * 2
        graph = helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=list(kernel), pads=pads),
                helper.make_node("Relu", ["c"], ["y"]),
            ],
            "layer",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, mels, frames])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.zeros(c_out, np.float32), "b")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = onnxruntime.InferenceSession(model.SerializeToString(), options)
        x = rng.standard_normal((1, c_in, mels, frames)).astype(np.float32)
        cases[name] = (session, x, weights.size * mels * frames, [])
    for round_ in range(rounds + 1):
        for session, x, _, times in cases.values():
            start = time.process_time()
            session.run(None, {"x": x})
            if round_:
                times.append(time.process_time() - start)
    lines = ["| layer | multiply-adds of its weights | CPU ms | GFLOP/s of those |", "|---|---:|---:|---:|"]
    for name, (_, _, macs, times) in cases.items():
        median = float(np.median(times))
        lines.append(f"| {name} | {macs / 1e6:.0f} M | {1000 * median:.2f} | {2 * macs / median / 1e9:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    r"""Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the model folders")
    args = parser.parse_args(argv)
    # run as a script, this folder is on the path
    from profile_onnx import multiply_adds

    committed = Path(__file__).resolve().parent.parent / "weights" / "wav2small"
    folders = {"padded": pad_channels(committed, args.out / "padded", 32)}
    folders.update(layouts(args.out / "layouts"))
    for name, folder in folders.items():
        print(f"{name}: {sum(multiply_adds(str(folder), 5.0).values()) / 1e6:,.1f} M multiply-adds per 5 s")
    print(time_layers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
