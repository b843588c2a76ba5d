"""Distil a Wav2Small variant that is not in the registry (layout experiments of docs/distillation.md).

The variants are the ones the *Three more attempts at valence* paragraph
reports; each differs from the 0.3.0–0.13.0 ``wav2small`` layout
(``WAV2SMALL_24X14``, 24 channels × 14 convolutions) in one respect:

- ``wav2small-pool5``: the MaxPool after the fifth convolution instead of
  the third (same 72,147 parameters, more layers at 2 ms frames);
- ``wav2small-stats``: attentive statistics pooling, a weighted standard
  deviation over frames next to the weighted mean (73,083 parameters).

Usage (extra options go to ``python -m benchmark distill``; always write to
a scratch folder and do not register)::

    python experiments/distill_variant.py --student wav2small-stats --out /tmp/stats --no-register
    python scripts/distill_targets.py --skip-run --out /tmp/stats   # test-1 figures

"""

from __future__ import annotations

import dataclasses
import sys

import torch
from torch import nn

from benchmark import Wav2Small, Wav2SmallConfig, students
from benchmark.students.wav2small import WAV2SMALL_24X14


class StatsWav2Small(Wav2Small):
    r"""Wav2Small whose head also sees the attention-weighted SD of the values over frames."""

    def __init__(self, config: Wav2SmallConfig = WAV2SMALL_24X14):
        super().__init__(config)
        c = config.channels
        self.head = nn.Linear(2 * c * self.pooled_mels + c * c, 3)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = self.features(self.frontend(signal))
        weights = torch.softmax(self.pool.logit(x), dim=-1)
        value = self.pool.value(x)
        mean = (value * weights).sum(dim=-1)
        std = torch.sqrt(torch.clamp((value * value * weights).sum(dim=-1) - mean * mean, min=1e-6))
        gram = torch.matmul(mean, mean.transpose(1, 2)) / self.pooled_mels
        return self.head(torch.cat([mean.flatten(1), std.flatten(1), gram.flatten(1)], dim=1))


VARIANTS = {
    "wav2small-pool5": lambda **kwargs: Wav2Small(dataclasses.replace(WAV2SMALL_24X14, pool_after=5), **kwargs),
    "wav2small-stats": lambda **kwargs: StatsWav2Small(WAV2SMALL_24X14, **kwargs),
}
"""Variant name → builder, added to :data:`benchmark.students.ARCHITECTURES` by :func:`register`."""


def register() -> None:
    r"""Make the variants buildable by :func:`benchmark.students.build` in this process."""
    students.ARCHITECTURES.update(VARIANTS)


def main(argv: list[str] | None = None) -> int:
    register()
    from benchmark.distill.cli import main as distill

    return distill(argv)


if __name__ == "__main__":
    sys.exit(main())
