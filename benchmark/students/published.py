"""The network of audEERING's published Wav2Small (Hugging Face ``audeering/wav2small``), in plain torch.

Rebuilt from the model card's description (module names as its checkpoint's
keys) with its fixed settings; the loader and the checkpoint checks are
:mod:`benchmark.models.wav2small_hf`.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.students.frontend import dft_matrix, mel_filterbank

ARCHITECTURE = {"half_mel": 13, "n_fft": 64, "n_time": 64, "hop": 32, "hidden": 338}
"""The card's fixed settings (its ``Wav2SmallConfig``); its modules ignore other values, so they are refused."""

CHANNELS = 13
N_MELS = 26
LABELS = ("arousal", "dominance", "valence")
"""Order of the ``adv`` outputs, as the model card reads them."""


class SpectrogramExtractor(nn.Module):
    r"""Power spectrum by two frozen strided DFT convolutions (real and imaginary rows)."""

    def __init__(self):
        super().__init__()
        n_fft, hop = ARCHITECTURE["n_fft"], ARCHITECTURE["hop"]
        bins = n_fft // 2 + 1
        rows = torch.from_numpy(dft_matrix(n_fft))  # the real rows, then the imaginary ones
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        with torch.no_grad():
            self.conv_real.weight.copy_(rows[:bins])
            self.conv_imag.weight.copy_(rows[bins:])
        self.requires_grad_(False)

    def forward(self, x):
        x = x.unsqueeze(1)
        return self.conv_real(x) ** 2 + self.conv_imag(x) ** 2  # [batch, bins, frames]


class LogmelExtractor(nn.Module):
    r"""Mel projection in decibels, floored at ``amin``; the image is ``[batch, 1, frames, mels]``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("melW", torch.from_numpy(mel_filterbank(ARCHITECTURE["n_fft"], N_MELS)))
        self.register_buffer("amin", torch.tensor([1e-10]))

    def forward(self, power):
        mel = torch.matmul(power.transpose(1, 2).unsqueeze(1), self.melW)
        return 10.0 * torch.log10(torch.maximum(mel, self.amin))


class Block(nn.Module):
    r"""3×3 convolution without bias → BatchNorm → ReLU."""

    def __init__(self, c_in: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, CHANNELS, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(CHANNELS)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)))


class Vgg7(nn.Module):
    r"""Front end, seven blocks (max-pool after the third), attention pooling and Gram features."""

    def __init__(self):
        super().__init__()
        for i in range(1, 8):
            setattr(self, f"l{i}", Block(1 if i == 1 else CHANNELS))
        self.maxpool_A = nn.MaxPool2d(3, stride=2, padding=1)
        self.lin = nn.Conv2d(CHANNELS, CHANNELS, 1)
        self.sof = nn.Conv2d(CHANNELS, CHANNELS, 1)
        self.spectrogram_extractor = SpectrogramExtractor()
        self.logmel_extractor = LogmelExtractor()

    def forward(self, signal):
        centred = signal - signal.mean(dim=1, keepdim=True)
        x = centred / torch.sqrt((centred * centred).mean(dim=1, keepdim=True) + 1e-7)
        x = self.logmel_extractor(self.spectrogram_extractor(x))
        for i in range(1, 8):
            x = getattr(self, f"l{i}")(x)
            if i == 3:
                x = self.maxpool_A(x)
        # dim 2 is time: every channel and mel band gets its own weights over the frames
        pooled = (self.lin(x) * torch.softmax(self.sof(x), dim=2)).sum(dim=2)  # [batch, C, mels']
        gram = torch.bmm(pooled, pooled.transpose(1, 2))  # [batch, C, C]
        return torch.cat([pooled, gram], dim=2).flatten(1)


class PublishedWav2Small(nn.Module):
    r"""``vgg7`` features → ``adv`` linear head: signal ``[batch, samples]`` → ``[batch, 3]``."""

    def __init__(self):
        super().__init__()
        self.vgg7 = Vgg7()
        self.adv = nn.Linear(ARCHITECTURE["hidden"], len(LABELS))

    def forward(self, signal):
        return self.adv(self.vgg7(signal))
