"""Student architectures of the Wav2Small paper (Kounades-Bastian et al., arXiv 2408.13920).

Every student is a :class:`torch.nn.Module` that maps a float32 signal
``[batch, samples]`` at 16 kHz to ``[batch, 3]`` linear outputs in the
order of :data:`benchmark.DIMENSIONS` (arousal, dominance, valence),
accepts any length of at least 0.25 s and exports to ONNX with a
dynamic samples axis (:mod:`benchmark.students.export`).

Examples:
    >>> model = build("wav2small-17k")
    >>> count_parameters(model)
    16994

"""

from __future__ import annotations

import typing

from torch import nn

from benchmark.students.mobilenet import CONFIGS as MOBILENETS
from benchmark.students.mobilenet import MobileNet
from benchmark.students.wav2small import WAV2SMALL, WAV2SMALL_17K, Wav2Small

MIN_SAMPLES = 4000
"""Shortest input every student accepts: 0.25 s at 16 kHz."""


def _wav2small(**kwargs) -> nn.Module:
    return Wav2Small(WAV2SMALL, **kwargs)


def _wav2small_17k(**kwargs) -> nn.Module:
    return Wav2Small(WAV2SMALL_17K, **kwargs)


def _mobilenet(name: str) -> typing.Callable[..., nn.Module]:
    def builder(**kwargs) -> nn.Module:
        return MobileNet(MOBILENETS[name], **kwargs)

    builder.__name__ = f"_{name.replace('-', '_')}"
    return builder


ARCHITECTURES: dict[str, typing.Callable[..., nn.Module]] = {
    "wav2small": _wav2small,
    "wav2small-17k": _wav2small_17k,
    "mobilenetv4-conv-small": _mobilenet("mobilenetv4-conv-small"),
    "mobilenetv4-conv-medium": _mobilenet("mobilenetv4-conv-medium"),
    "mobilenetv3-small": _mobilenet("mobilenetv3-small"),
    "mobilenetv3-large": _mobilenet("mobilenetv3-large"),
}
"""Architecture name → builder returning a freshly initialised student."""


def build(architecture: str, **kwargs) -> nn.Module:
    r"""Instantiate a student architecture with random weights.

    Args:
        architecture: a key of :data:`ARCHITECTURES`
        **kwargs: passed to the builder (e.g. ``dropout`` for MobileNets)

    Raises:
        ValueError: if the architecture is unknown

    """
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"Unknown student architecture '{architecture}'; known: {known}.") from None
    return builder(**kwargs)


def count_parameters(module: nn.Module, *, frozen_stft: bool = False) -> int:
    r"""Number of trainable parameters (optionally plus the frozen STFT kernels).

    ``frozen_stft=True`` also counts the DFT kernels of every STFT
    convolution in the module: the count ``sum(p.numel() for p in
    model.parameters())`` gives when the STFT is a frozen ``nn.Conv1d``.
    That is the only reading under which the published MobileNetV4-Conv-Small
    with a 3-output head has the Wav2Small paper's 3.12M parameters.

    Counts the elements of every parameter with ``requires_grad``.
    Not counted: the frozen front end (DFT and mel matrices are buffers,
    not parameters) and BatchNorm running statistics (buffers too).
    BatchNorm scale and shift are counted: they are trained.
    This is the convention of ``docs/students.md`` and of the targets
    in ``tests/test_students.py``; ONNX initializer counts differ
    (BatchNorm is folded into convolutions, front-end constants are added).
    """
    count = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if frozen_stft:
        from benchmark.students.frontend import PowerSpectrogram

        count += sum(m.dft.numel() for m in module.modules() if isinstance(m, PowerSpectrogram))
    return count


__all__ = ["ARCHITECTURES", "MIN_SAMPLES", "build", "count_parameters"]
