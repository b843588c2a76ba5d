"""MobileNetV3 and MobileNetV4 students on a log-mel image.

Plain-torch re-implementations of the original block definitions:

* MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019,
  Tables 1 and 2): inverted residual bottlenecks with optional
  squeeze-and-excitation and ReLU or h-swish
* MobileNetV4 (Qin et al., "MobileNetV4: Universal Models for the Mobile
  Ecosystem", ECCV 2024, Tables 11 and 12): the Universal Inverted
  Bottleneck (UIB) in its ExtraDW, IB, ConvNext and FFN forms, fused IB

The input image is a 1-channel log-mel spectrogram ``[batch, 1, mels, frames]``
(:class:`benchmark.students.frontend.LogMelFrontend`); after the last
stage, global average pooling and each paper's classifier head with
3 outputs (arousal, dominance, valence) instead of 1000 classes.
"""

from __future__ import annotations

import dataclasses
import typing

import torch
from torch import nn

from benchmark.students.frontend import LogMelFrontend

N_FFT = 800
"""50 ms window at 16 kHz. With the STFT as a frozen convolution its kernel
(401 · 2 · 800 = 641,600 values) is what brings MobileNetV4-Conv-Small with
a 3-output head to the Wav2Small paper's 3.12M parameters (see
:func:`benchmark.students.count_parameters` and docs/students.md)."""
HOP_LENGTH = 160
"""10 ms frame shift."""
N_MELS = 64
"""Mel bands: the image height."""


def make_divisible(value: float, divisor: int = 8) -> int:
    r"""Round channels to a multiple of ``divisor``, never more than 10 % down.

    The channel rounding rule of the MobileNet reference code.

    Examples:
        >>> make_divisible(72 / 4)
        24
        >>> make_divisible(96 * 3)
        288

    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation(name: str) -> nn.Module:
    r"""``'relu'`` or ``'hswish'`` (h-swish of MobileNetV3)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"Unknown activation '{name}'; use 'relu' or 'hswish'.")


class ConvBNAct(nn.Sequential):
    r"""Conv2d (no bias) → BatchNorm → optional activation, 'same' padding.

    Args:
        c_in: input channels
        c_out: output channels
        kernel: square kernel size
        stride: stride
        groups: ``c_in`` for a depthwise convolution
        act: activation name, ``None`` for a linear layer

    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    r"""Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3).

    Args:
        channels: channels of the gated feature map
        squeeze: bottleneck channels (MobileNetV3: expansion / 4, rounded to 8)

    """

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = self.gate(self.expand(self.act(self.reduce(scale))))
        return x * scale


class Bneck(nn.Module):
    r"""MobileNetV3 bottleneck: 1×1 expand → k×k depthwise → SE → 1×1 project.

    The expansion is left out when it would not change the width (the
    first bottleneck). Residual connection when shape is preserved.

    Args:
        c_in: input channels
        kernel: depthwise kernel size
        expanded: expansion channels
        c_out: output channels
        se: use squeeze-and-excitation
        act: ``'relu'`` or ``'hswish'``
        stride: depthwise stride

    """

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, act: str, stride: int):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(ConvBNAct(c_in, expanded, 1, act=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded / 4)))
        layers.append(ConvBNAct(expanded, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class FusedIB(nn.Module):
    r"""MobileNetV4 fused inverted bottleneck: k×k full conv expand → 1×1 project.

    Args:
        c_in: input channels
        kernel: expansion kernel size
        expand_ratio: expansion channels / input channels
        c_out: output channels
        stride: stride of the expansion

    """

    def __init__(self, c_in: int, kernel: int, expand_ratio: float, c_out: int, stride: int):
        super().__init__()
        mid = make_divisible(c_in * expand_ratio)
        self.block = nn.Sequential(
            ConvBNAct(c_in, mid, kernel, stride),
            ConvBNAct(mid, c_out, 1, act=None),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class UIB(nn.Module):
    r"""Universal Inverted Bottleneck (MobileNetV4).

    Optional depthwise conv before the expansion (``start``), the 1×1
    expansion, optional depthwise conv after it (``middle``), the 1×1
    projection. The four instances of the paper:

    ========= ===== ======
    variant   start middle
    ========= ===== ======
    ExtraDW   k     k
    IB        --    k
    ConvNext  k     --
    FFN       --    --
    ========= ===== ======

    The stride goes to the middle depthwise conv if there is one, else to
    the start one; the start conv has no activation (as in the paper's
    reference implementation).

    Args:
        c_in: input channels
        start: kernel of the start depthwise conv, 0 for none
        middle: kernel of the middle depthwise conv, 0 for none
        expand_ratio: expansion channels / input channels
        c_out: output channels
        stride: 1 or 2

    """

    def __init__(self, c_in: int, start: int, middle: int, expand_ratio: float, c_out: int, stride: int):
        super().__init__()
        if stride != 1 and not (start or middle):
            raise ValueError("A strided UIB needs a depthwise convolution.")
        mid = make_divisible(c_in * expand_ratio)
        layers: list[nn.Module] = []
        if start:
            layers.append(ConvBNAct(c_in, c_in, start, 1 if middle else stride, groups=c_in, act=None))
        layers.append(ConvBNAct(c_in, mid, 1))
        if middle:
            layers.append(ConvBNAct(mid, mid, middle, stride, groups=mid))
        layers.append(ConvBNAct(mid, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


# Block tables. Channels are outputs; the input of a block is the output of the previous one.

# MobileNetV3 (Howard et al. 2019): (kernel, expansion, out, SE, activation, stride)
V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]

# MobileNetV4 (Qin et al. 2024): ('conv', kernel, out, stride) | ('fused', kernel, expand, out, stride)
# | ('uib', start, middle, expand, out, stride)
V4_CONV_SMALL = [
    ("conv", 3, 32, 2),
    ("conv", 1, 32, 1),
    ("conv", 3, 96, 2),
    ("conv", 1, 64, 1),
    ("uib", 5, 5, 3.0, 96, 2),
    ("uib", 0, 3, 2.0, 96, 1),
    ("uib", 0, 3, 2.0, 96, 1),
    ("uib", 0, 3, 2.0, 96, 1),
    ("uib", 0, 3, 2.0, 96, 1),
    ("uib", 3, 0, 4.0, 96, 1),
    ("uib", 3, 3, 6.0, 128, 2),
    ("uib", 5, 5, 4.0, 128, 1),
    ("uib", 0, 5, 4.0, 128, 1),
    ("uib", 0, 5, 3.0, 128, 1),
    ("uib", 0, 3, 4.0, 128, 1),
    ("uib", 0, 3, 4.0, 128, 1),
    ("conv", 1, 960, 1),
]
V4_CONV_MEDIUM = [
    ("fused", 3, 4.0, 48, 2),
    ("uib", 3, 5, 4.0, 80, 2),
    ("uib", 3, 3, 2.0, 80, 1),
    ("uib", 3, 5, 6.0, 160, 2),
    ("uib", 3, 3, 4.0, 160, 1),
    ("uib", 3, 3, 4.0, 160, 1),
    ("uib", 3, 5, 4.0, 160, 1),
    ("uib", 3, 3, 4.0, 160, 1),
    ("uib", 3, 0, 4.0, 160, 1),
    ("uib", 0, 0, 2.0, 160, 1),
    ("uib", 3, 0, 4.0, 160, 1),
    ("uib", 5, 5, 6.0, 256, 2),
    ("uib", 5, 5, 4.0, 256, 1),
    ("uib", 3, 5, 4.0, 256, 1),
    ("uib", 3, 5, 4.0, 256, 1),
    ("uib", 0, 0, 4.0, 256, 1),
    ("uib", 3, 0, 4.0, 256, 1),
    ("uib", 3, 5, 2.0, 256, 1),
    ("uib", 5, 5, 4.0, 256, 1),
    ("uib", 0, 0, 4.0, 256, 1),
    ("uib", 0, 0, 4.0, 256, 1),
    ("uib", 5, 0, 2.0, 256, 1),
    ("conv", 1, 960, 1),
]


@dataclasses.dataclass(frozen=True)
class MobileNetConfig:
    r"""A MobileNet variant.

    Args:
        family: ``'v3'`` or ``'v4'``
        blocks: the block table
        stem: channels of the 3×3/2 stem convolution
        stem_act: activation of the stem
        last: channels of the final 1×1 convolution (V3; V4 has it in its table)
        hidden: width of the classifier's hidden layer
        act: activation of the last conv and the hidden layer

    """

    family: str
    blocks: typing.Sequence[tuple]
    stem: int
    stem_act: str
    last: int | None
    hidden: int
    act: str


CONFIGS = {
    "mobilenetv3-small": MobileNetConfig("v3", V3_SMALL, 16, "hswish", 576, 1024, "hswish"),
    "mobilenetv3-large": MobileNetConfig("v3", V3_LARGE, 16, "hswish", 960, 1280, "hswish"),
    "mobilenetv4-conv-small": MobileNetConfig("v4", V4_CONV_SMALL, 32, "relu", None, 1280, "relu"),
    "mobilenetv4-conv-medium": MobileNetConfig("v4", V4_CONV_MEDIUM, 32, "relu", None, 1280, "relu"),
}
"""Registry name → configuration."""


def _stage(config: MobileNetConfig, c_in: int) -> tuple[list[nn.Module], int]:
    r"""Instantiate the block table; returns the blocks and their output width."""
    blocks: list[nn.Module] = []
    for spec in config.blocks:
        if config.family == "v3":
            kernel, expanded, c_out, se, act, stride = spec
            blocks.append(Bneck(c_in, kernel, expanded, c_out, se, act, stride))
        elif spec[0] == "conv":
            _, kernel, c_out, stride = spec
            blocks.append(ConvBNAct(c_in, c_out, kernel, stride, act=config.act))
        elif spec[0] == "fused":
            _, kernel, ratio, c_out, stride = spec
            blocks.append(FusedIB(c_in, kernel, ratio, c_out, stride))
        else:
            _, start, middle, ratio, c_out, stride = spec
            blocks.append(UIB(c_in, start, middle, ratio, c_out, stride))
        c_in = c_out
    return blocks, c_in


class MobileNet(nn.Module):
    r"""MobileNet student: signal ``[batch, samples]`` at 16 kHz → ``[batch, 3]`` (A, D, V).

    Front end: normalised signal → 25 ms / 10 ms power spectrum → 64 log-mel bands,
    a ``[batch, 1, 64, frames]`` image (1 input channel instead of RGB).

    Heads after global average pooling, as in the papers but with 3 outputs:

    * V3: Linear(last, hidden) → h-swish → Dropout → Linear(hidden, 3)
    * V4: 1×1 conv(960, 1280, no bias) → BatchNorm → ReLU → Linear(1280, 3)

    Args:
        config: the variant, see :data:`CONFIGS`
        dropout: dropout before the output layer

    Examples:
        >>> model = MobileNet(CONFIGS["mobilenetv3-small"]).eval()
        >>> tuple(model(torch.zeros(1, 4000)).shape)
        (1, 3)

    """

    def __init__(self, config: MobileNetConfig, dropout: float = 0.2):
        super().__init__()
        self.config = config
        self.frontend = LogMelFrontend(N_FFT, HOP_LENGTH, N_MELS)
        stem = ConvBNAct(1, config.stem, 3, 2, act=config.stem_act)
        blocks, width = _stage(config, config.stem)
        if config.last is not None:
            blocks.append(ConvBNAct(width, config.last, 1, act=config.act))
            width = config.last
        self.features = nn.Sequential(stem, *blocks)
        if config.family == "v3":
            self.hidden = nn.Sequential(nn.Linear(width, config.hidden), activation(config.act))
        else:
            self.hidden = nn.Sequential(
                nn.Linear(width, config.hidden, bias=False),
                nn.BatchNorm1d(config.hidden),
                activation(config.act),
            )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(config.hidden, 3)

    def training_memory_format(self, precision: str = "fp32") -> torch.memory_format:
        r"""Channels-last during training: oneDNN vectorises over channels.

        MobileNetV4-Conv-Small: 0.14 s instead of 0.19 s a step (batch 16 × 2.5 s, 2 CPU threads);
        under bf16 autocast 0.20 s instead of 0.26 s (Intel Xeon with AMX).

        Args:
            precision: ``'fp32'`` or ``'bf16'`` (autocast)

        """
        return torch.channels_last

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        r"""``[batch, samples]`` → ``[batch, 3]``."""
        x = self.features(self.frontend(signal))
        x = x.mean(dim=(2, 3))
        return self.head(self.dropout(self.hidden(x)))


def mobilenet(name: str, **kwargs) -> MobileNet:
    r"""Build the MobileNet registered as ``name`` in :data:`CONFIGS`."""
    return MobileNet(CONFIGS[name], **kwargs)
