"""Wav2Small (Kounades-Bastian et al., arXiv 2408.13920).

A tiny VGG-style CNN on a log-mel image, designed for a minimal number
of parameters and little RAM rather than for few operations:

1. per-utterance normalisation, frozen DFT convolution, log-mel
   (:mod:`benchmark.students.frontend`)
2. ``layers`` × (3×3 Conv2d → BatchNorm → ReLU), all with ``channels``
   channels, one 3×3/2 MaxPool after layer ``pool_after``
3. attention pooling over time: a 1×1 convolution gives values, another
   one gives logits that a softmax over the frames turns into weights;
   the weighted sum is a ``channels × mels'`` matrix
4. head: a linear layer on the pooled matrix concatenated with its
   (channel) Gram matrix, which adds second-order statistics for free
   (no parameters) → arousal, dominance, valence

The paper does not publish layer widths; the two configurations are
chosen to hit the published parameter counts (see ``docs/students.md``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from benchmark.students.frontend import LogMelFrontend, float32


@dataclasses.dataclass(frozen=True)
class Wav2SmallConfig:
    r"""Hyper-parameters of a Wav2Small network.

    Args:
        channels: channels of every convolution
        layers: number of 3×3 convolutions
        pool_after: the MaxPool follows this (1-based) convolution
        n_mels: mel bands of the front end
        n_fft: DFT length in samples (also the window length)
        hop_length: frame shift in samples
        floor_db: the log-mel image's floor, in dB of the normalised signal's power: bands
            quieter than this read as this (digital silence, or a band above a recording's
            bandwidth, whose level is rounding noise)

    """

    channels: int
    layers: int
    pool_after: int = 3
    n_mels: int = 26
    n_fft: int = 64
    hop_length: int = 32
    floor_db: float = -100.0


WAV2SMALL = Wav2SmallConfig(channels=32, layers=8, pool_after=1, n_fft=128, hop_length=64, floor_db=-60.0)
"""The 72K configuration of the paper (depth, width and frame rate are our choice: 71,747 parameters).

32 channels, 8 convolutions, the MaxPool after the first, 8 ms windows
at a 4 ms hop: as fast as MobileNetV4-Conv-S on one CPU thread, and
better than the 0.3.0–0.13.0 layout (:data:`WAV2SMALL_24X14`) against the
teacher over three seeds (``docs/students.md``). Its log-mel is floored at
-60 dB: a student that learnt real speech with its digital silences read
the rounding noise of resampling in quieter bands
(``docs/research/teacher-real-speech.md``).
"""

WAV2SMALL_24X14 = Wav2SmallConfig(channels=24, layers=14)
"""The ``wav2small`` layout of releases 0.3.0–0.13.0 (72,147 parameters, 2 ms hop).

Kept for the layout experiments that were made on it (``experiments/``);
it costs 5× MobileNetV4-Conv-S's CPU time (``docs/research/wav2small-speed.md``).
"""

WAV2SMALL_2 = Wav2SmallConfig(channels=13, layers=11)
"""Wav2Small 2.0 of audEERING's model card (13 channels, 26 mels, n_fft 64, hop 32: 16,994 parameters)."""

WAV2SMALL_17K = dataclasses.replace(WAV2SMALL_2, floor_db=-60.0)
"""``wav2small-17k``: the layout of :data:`WAV2SMALL_2` with its log-mel floored at -60 dB."""


class ConvBlock(nn.Sequential):
    r"""3×3 Conv2d (no bias: BatchNorm has one) → BatchNorm → ReLU.

    Args:
        c_in: input channels
        c_out: output channels
        float32: compute in float32 also under bf16 autocast (mixed-precision
            training). The first block sees the log-mel image in dB, whose
            bf16 rounding (0.125-0.5 dB) exceeds the cues of valence; the
            exported graph is the same either way.

    """

    def __init__(self, c_in: int, c_out: int, float32: bool = False):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )
        self.float32 = float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.float32:
            with float32(x.device.type):
                return super().forward(x)
        return super().forward(x)


class AttentionPool(nn.Module):
    r"""Softmax-weighted sum over the time axis.

    Every channel and mel band gets its own weights over the frames, so
    the model can attend to different moments for different features.

    Args:
        channels: channels of the feature map

    """

    def __init__(self, channels: int):
        super().__init__()
        self.value = nn.Conv2d(channels, channels, 1)
        self.logit = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""``[batch, channels, mels, frames]`` → ``[batch, channels, mels]``."""
        weights = torch.softmax(self.logit(x), dim=-1)
        return (self.value(x) * weights).sum(dim=-1)


class Wav2Small(nn.Module):
    r"""Wav2Small student: signal ``[batch, samples]`` at 16 kHz → ``[batch, 3]`` (A, D, V).

    Args:
        config: widths and front end

    Examples:
        >>> model = Wav2Small(WAV2SMALL_2).eval()
        >>> tuple(model(torch.zeros(2, 4000)).shape)
        (2, 3)

    """

    def __init__(self, config: Wav2SmallConfig = WAV2SMALL):
        super().__init__()
        if not 1 <= config.pool_after <= config.layers:
            raise ValueError(f"pool_after={config.pool_after} must lie in 1..layers={config.layers}.")
        self.config = config
        c = config.channels
        self.frontend = LogMelFrontend(
            config.n_fft, config.hop_length, config.n_mels, amin=10.0 ** (config.floor_db / 10.0)
        )
        blocks: list[nn.Module] = []
        for i in range(config.layers):
            blocks.append(ConvBlock(c, c) if i else ConvBlock(1, c, float32=True))
            if i + 1 == config.pool_after:
                # ceil-like output size: (n + 1) // 2, so odd mel counts keep their edge band
                blocks.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.features = nn.Sequential(*blocks)
        self.pool = AttentionPool(c)
        self.pooled_mels = (config.n_mels + 1) // 2
        self.head = nn.Linear(c * self.pooled_mels + c * c, 3)

    def training_memory_format(self, precision: str = "fp32") -> torch.memory_format:
        r"""Layout of the convolution weights (and so activations) during training.

        In float32, channels-last lets oneDNN vectorise over channels: a
        training step takes 0.84 s instead of 1.05 s with 24 channels
        (``wav2small``) and 0.62 s instead of 0.87 s with 32 (batch
        16 × 2.5 s, 2 CPU threads, median of 5), while 13 channels
        (Wav2Small 2.0) are slower in that layout (0.68 s instead of
        0.50 s). Under bf16 autocast the contiguous layout is the fast one
        for both (on an Intel Xeon with AMX, same batch: 24 channels 0.87 s,
        channels-last 0.96 s, float32 channels-last 1.63 s; 13 channels
        0.33 s, channels-last 0.77 s, float32 contiguous 0.63 s): most of a
        float32 step is BatchNorm, which is 4× faster in contiguous bf16.
        Numerics differ only by summation order; the exported model is
        unaffected.

        Args:
            precision: ``'fp32'`` or ``'bf16'`` (autocast)

        """
        if precision == "bf16":
            return torch.contiguous_format
        return torch.channels_last if self.config.channels % 8 == 0 else torch.contiguous_format

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        r"""``[batch, samples]`` → ``[batch, 3]``."""
        x = self.features(self.frontend(signal))
        pooled = self.pool(x)  # [batch, channels, mels']
        # Gram matrix over mel bands, scaled by their number so its
        # magnitude does not depend on the front-end resolution
        gram = torch.matmul(pooled, pooled.transpose(1, 2)) / self.pooled_mels
        return self.head(torch.cat([pooled.flatten(1), gram.flatten(1)], dim=1))
