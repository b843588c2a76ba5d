"""Export a student to an audonnx model folder, and its int8 variant.

A model folder holds ``model.onnx`` and ``model.yaml``; it is loaded with
``audonnx.load(folder)`` and called as ``model(signal[np.newaxis], 16000)``,
which returns the ``logits`` ``[1, 3]`` (arousal, dominance, valence).
The ONNX graph has the input ``signal`` ``[1, samples]`` with a
dynamic samples axis and the output ``logits`` ``[1, 3]``.
"""

from __future__ import annotations

import os
import tempfile
import typing
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmark import DIMENSIONS

ONNX_FILE = "model.onnx"
YAML_FILE = "model.yaml"
OPSET = 17
LABELS = {"logits": list(DIMENSIONS)}
FRONTEND_SCOPE = "/frontend/"
"""Prefix of the ONNX node names the exporter derives from the ``frontend`` submodule."""
HEAD_SCOPE = "/head/"
"""Prefix of the ONNX node names of the output layer (the ``head`` submodule of every student)."""

DEFAULT_WEIGHT_TYPE = "QUInt8"
r"""Weight type of :func:`quantize_int8`: the faster one on x86 CPUs.

Measured (docs/students.md): with signed weights onnxruntime runs
``ConvInteger`` on its slow reference path, several times slower than fp32;
unsigned weights take the fast u8u8 kernels.
"""


def write_audonnx(onnx_path: str | os.PathLike, folder: str | os.PathLike) -> Path:
    r"""Write ``model.yaml`` next to an ONNX file already inside ``folder``.

    ``audonnx.Model.to_yaml`` stores the ONNX path relative to the
    YAML file, so the folder can be moved or hashed as a whole.
    """
    import audonnx

    folder = Path(folder)
    model = audonnx.Model(str(onnx_path), labels=LABELS)
    model.to_yaml(str(folder / YAML_FILE))
    return folder


def export_onnx(
    module: nn.Module,
    folder: str | os.PathLike,
    *,
    opset: int = OPSET,
    example_samples: int = 16000,
) -> Path:
    r"""Export a student to an audonnx model folder.

    The module is exported in eval mode (BatchNorm uses running
    statistics, dropout is off) and restored to its previous mode.

    Args:
        module: student mapping ``[batch, samples]`` to ``[batch, 3]``
        folder: created if missing; ``model.onnx`` and ``model.yaml`` are (over)written
        opset: ONNX opset, at least 17
        example_samples: length of the tracing input; the samples axis is dynamic anyway

    Returns:
        the model folder, ready for ``audonnx.load``

    """
    if opset < 17:
        raise ValueError(f"opset must be at least 17, got {opset}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / ONNX_FILE
    was_training = module.training
    module.eval()
    try:
        example = torch.zeros(1, example_samples)
        example[0, ::7] = 0.1  # not all zeros: keeps the normalisation away from its eps corner
        with torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                str(onnx_path),
                input_names=["signal"],
                output_names=["logits"],
                # batch fixed to 1: audonnx reshapes the input to the declared
                # shape, which allows only one dynamic axis
                dynamic_axes={"signal": {1: "samples"}},
                opset_version=opset,
                do_constant_folding=True,
                # the dynamo exporter needs onnxscript, which is not a dependency
                dynamo=False,
            )
    finally:
        module.train(was_training)
    return write_audonnx(onnx_path, folder)


def frontend_nodes(onnx_path: str | os.PathLike) -> list[str]:
    r"""Names of the nodes that implement the log-mel front end."""
    return scope_nodes(onnx_path, FRONTEND_SCOPE)


def scope_nodes(onnx_path: str | os.PathLike, scope: str) -> list[str]:
    r"""Names of the nodes the exporter derived from the submodule of ``scope`` (e.g. ``'/head/'``)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [node.name for node in graph.node if node.name.startswith(scope)]


def quantize_int8(
    src_folder: str | os.PathLike,
    dst_folder: str | os.PathLike,
    weight_type: str = DEFAULT_WEIGHT_TYPE,
    *,
    keep_frontend_fp32: bool = True,
    keep_head_fp32: bool = True,
) -> Path:
    r"""Dynamic int8 quantisation of an exported model folder.

    ``quant_pre_process`` (shape inference and graph optimisation) first,
    then ``quantize_dynamic``: weights of Conv / MatMul / Gemm are stored
    as 8-bit integers, activations are quantised on the fly.

    Args:
        src_folder: folder written by :func:`export_onnx`
        dst_folder: created if missing; gets ``model.onnx`` and ``model.yaml``
        weight_type: ``'QUInt8'`` or ``'QInt8'``
        keep_frontend_fp32: leave the DFT convolution and mel projection in
            float: 8-bit activations there would bury quiet frequency
            bands in quantisation noise before the logarithm
        keep_head_fp32: leave the output layer in float: its input joins
            statistics of very different scales (Wav2Small: pooled values and
            their Gram matrix), which one 8-bit range per tensor cannot hold;
            a head refitted in closed form uses the small ones
            (measured: held-out CCC 0.741 in fp32, 0.501 with an 8-bit head,
            ``docs/students.md``). It is a few thousand weights.

    Returns:
        the int8 model folder

    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        qtype = {"QUInt8": QuantType.QUInt8, "QInt8": QuantType.QInt8}[weight_type]
    except KeyError:
        raise ValueError(f"weight_type must be 'QUInt8' or 'QInt8', got '{weight_type}'.") from None
    src = Path(src_folder) / ONNX_FILE
    dst_folder = Path(dst_folder)
    dst_folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))
        exclude = frontend_nodes(prepared) if keep_frontend_fp32 else []
        if keep_head_fp32:
            head = scope_nodes(prepared, HEAD_SCOPE)
            # the quantiser replaces a Gemm by a MatMul named '<gemm>_MatMul' before it applies the exclusions
            exclude += head + [f"{name}_MatMul" for name in head]
        quantize_dynamic(str(prepared), str(dst_folder / ONNX_FILE), weight_type=qtype, nodes_to_exclude=exclude)
    return write_audonnx(dst_folder / ONNX_FILE, dst_folder)


def max_abs_difference(
    module: nn.Module,
    folder: str | os.PathLike,
    *,
    seconds: tuple[float, ...] = (1.0, 3.7, 10.0),
    seed: int = 0,
    sampling_rate: int = 16000,
) -> float:
    r"""Largest absolute difference between torch and the audonnx model folder.

    Parity check for an export: both run in float32 on the same random
    signals (Gaussian noise with a random gain), torch in eval mode.

    Args:
        module: the exported student
        folder: audonnx model folder
        seconds: signal durations to compare on
        seed: seed of the random signals
        sampling_rate: sampling rate of the signals

    """
    import audonnx

    model = audonnx.load(str(folder))
    rng = np.random.default_rng(seed)
    was_training = module.training
    module.eval()
    worst = 0.0
    try:
        for duration in seconds:
            gain = 10.0 ** rng.uniform(-2.0, 0.0)
            signal = (gain * rng.standard_normal(int(duration * sampling_rate))).astype(np.float32)
            with torch.no_grad():
                expected = module(torch.from_numpy(signal)[None]).numpy()
            actual = model(signal[np.newaxis], sampling_rate)
            worst = max(worst, float(np.abs(np.asarray(actual) - expected).max()))
    finally:
        module.train(was_training)
    return worst


def onnx_file(model: str | os.PathLike) -> Path:
    r"""The ONNX file of a model: ``model`` itself, or ``model.onnx`` in a model folder."""
    path = Path(model)
    onnx_path = path / ONNX_FILE if path.is_dir() else path
    if not onnx_path.is_file():
        raise FileNotFoundError(
            f"No ONNX model at '{onnx_path}': give a model folder with {ONNX_FILE} or an .onnx file."
        )
    return onnx_path


def onnx_max_abs_difference(
    old: str | os.PathLike,
    new: str | os.PathLike,
    signals: typing.Iterable[np.ndarray],
) -> list[float]:
    r"""Largest absolute output difference between two ONNX models, per signal.

    Equivalence check for a re-export or a graph rewrite of the same
    model: both run on one onnxruntime thread with the default graph
    optimisations, as :mod:`benchmark.efficiency` times them.

    Args:
        old: model folder or ``.onnx`` file
        new: model folder or ``.onnx`` file with the same input and output
        signals: mono float32 signals at 16 kHz

    Returns:
        one maximum over all outputs per signal

    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sessions = [
        onnxruntime.InferenceSession(str(onnx_file(m)), options, providers=["CPUExecutionProvider"]) for m in (old, new)
    ]
    differences = []
    for signal in signals:
        x = np.asarray(signal, dtype=np.float32).reshape(1, -1)
        a, b = (np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0], dtype=np.float64) for s in sessions)
        if a.shape != b.shape:
            raise ValueError(f"Output shapes differ: {a.shape} from '{old}', {b.shape} from '{new}'.")
        differences.append(float(np.abs(a - b).max()))
    return differences
