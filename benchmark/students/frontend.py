"""Log-mel front end of the student models, in plain, ONNX-exportable torch.

The signal is normalised per utterance, framed and transformed by a
frozen :class:`torch.nn.Conv1d`-style DFT (real and imaginary rows of a
Hann-windowed DFT matrix), turned into power, projected onto a mel
filterbank and compressed to decibels. ``torch.stft`` is avoided on
purpose: the legacy ONNX exporter has no general STFT, while a strided
convolution exports to a plain ``Conv`` node that every runtime knows.

The DFT and mel matrices are fixed signal processing, not learned: they
are registered as non-persistent buffers, so they are neither
parameters (not trained, not counted) nor part of a checkpoint; they
are rebuilt from the configuration and still exported as ONNX
constants.
"""

from __future__ import annotations

import contextlib
import typing

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLING_RATE = 16000
"""Sampling rate every student expects."""


def hann_window(length: int) -> np.ndarray:
    r"""Periodic Hann window (the ``fftbins=True`` variant used for STFTs).

    Examples:
        >>> hann_window(4).round(3).tolist()
        [0.0, 0.5, 1.0, 0.5]

    """
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def dft_matrix(n_fft: int) -> np.ndarray:
    r"""Hann-windowed DFT as convolution weights.

    Returns:
        float32 array of shape ``(2 * (n_fft // 2 + 1), 1, n_fft)``:
        first the real (cosine) rows of the one-sided spectrum,
        then the imaginary (minus sine) rows

    """
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, np.newaxis]
    n = np.arange(n_fft)[np.newaxis, :]
    angle = 2.0 * np.pi * k * n / n_fft
    window = hann_window(n_fft)[np.newaxis, :]
    weights = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
    return weights[:, np.newaxis, :].astype(np.float32)


def hz_to_mel(hz: np.ndarray | float, htk: bool = False) -> np.ndarray:
    r"""Hertz to mel: HTK (``2595 log10(1 + f/700)``) or Slaney (linear below 1 kHz, log above).

    Examples:
        >>> round(float(hz_to_mel(1000.0)), 6)
        15.0
        >>> round(float(hz_to_mel(1000.0, htk=True)), 2)
        999.99

    """
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, linear)


def mel_to_hz(mel: np.ndarray | float, htk: bool = False) -> np.ndarray:
    r"""Inverse of :func:`hz_to_mel`.

    Examples:
        >>> round(float(mel_to_hz(hz_to_mel(3000.0))), 6)
        3000.0

    """
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    linear = mel * f_sp
    log = min_log_hz * np.exp(logstep * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log, linear)


def mel_filterbank(
    n_fft: int,
    n_mels: int,
    *,
    sampling_rate: int = SAMPLING_RATE,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    r"""Triangular mel filterbank with Slaney area normalisation.

    Same construction as ``librosa.filters.mel`` (default Slaney scale
    and ``norm='slaney'``), reimplemented to avoid the dependency.

    Returns:
        float32 array of shape ``(n_fft // 2 + 1, n_mels)``,
        to right-multiply a power spectrogram with

    """
    fmax = sampling_rate / 2 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sampling_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    widths = np.diff(edges)
    ramps = edges[:, np.newaxis] - fft_hz[np.newaxis, :]
    lower = -ramps[:-2] / widths[:-1, np.newaxis]
    upper = ramps[2:] / widths[1:, np.newaxis]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: every filter has the same area, so a white
    # spectrum gives the same energy in every band
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, np.newaxis]
    return weights.T.astype(np.float32)


class Normalize(nn.Module):
    r"""Per-utterance normalisation to zero mean and unit variance.

    Makes the students blind to recording gain, as wav2vec2's
    feature extractor does for the teacher.

    Args:
        eps: added to the variance so that digital silence stays finite

    """

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = eps

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        r"""``[batch, samples]`` → ``[batch, samples]``."""
        centred = signal - signal.mean(dim=-1, keepdim=True)
        variance = (centred * centred).mean(dim=-1, keepdim=True)
        return centred / torch.sqrt(variance + self.eps)


class PowerSpectrogram(nn.Module):
    r"""Short-time power spectrum by a frozen, strided DFT convolution.

    No centre padding: a frame is emitted only where the window fits
    completely, ``1 + (samples - n_fft) // hop_length`` frames.

    Args:
        n_fft: window and DFT length in samples
        hop_length: frame shift in samples

    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("dft", torch.from_numpy(dft_matrix(n_fft)), persistent=False)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        r"""``[batch, samples]`` → ``[batch, n_fft // 2 + 1, frames]``."""
        spectrum = F.conv1d(signal.unsqueeze(1), self.dft, stride=self.hop_length)
        real, imag = spectrum.chunk(2, dim=1)
        return real * real + imag * imag


class LogMel(nn.Module):
    r"""Mel projection of a power spectrogram, in decibels.

    Args:
        n_fft: DFT length the power spectrogram was computed with
        n_mels: number of mel bands
        amin: power floor before the logarithm (−100 dB)
        htk: HTK instead of Slaney mel scale

    """

    def __init__(self, n_fft: int, n_mels: int, amin: float = 1e-10, htk: bool = False):
        super().__init__()
        self.amin = amin
        self.register_buffer(
            "mel",
            torch.from_numpy(mel_filterbank(n_fft, n_mels, htk=htk)),
            persistent=False,
        )

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        r"""``[batch, bins, frames]`` → ``[batch, 1, n_mels, frames]``."""
        mel = torch.matmul(power.transpose(1, 2), self.mel).transpose(1, 2)
        # 10 log10(x) written as a natural log: ONNX has no Log10 operator
        db = (10.0 / np.log(10.0)) * torch.log(torch.clamp(mel, min=self.amin))
        return db.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"amin={self.amin:g}"


class LogMelFrontend(nn.Module):
    r"""Signal → normalised → power spectrum → log-mel image.

    Args:
        n_fft: window and DFT length in samples
        hop_length: frame shift in samples
        n_mels: number of mel bands
        normalize: apply :class:`Normalize` first
        amin: power floor before the logarithm (:class:`LogMel`)

    Examples:
        >>> frontend = LogMelFrontend(n_fft=64, hop_length=32, n_mels=26)
        >>> tuple(frontend(torch.randn(2, 16000)).shape)
        (2, 1, 26, 499)
        >>> sum(p.numel() for p in frontend.parameters())
        0

    """

    def __init__(self, n_fft: int, hop_length: int, n_mels: int, normalize: bool = True, amin: float = 1e-10):
        super().__init__()
        self.normalize = Normalize() if normalize else nn.Identity()
        self.spectrogram = PowerSpectrogram(n_fft, hop_length)
        self.logmel = LogMel(n_fft, n_mels, amin=amin)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        r"""``[batch, samples]`` → ``[batch, 1, n_mels, frames]``.

        Always in float32, also under bf16 autocast (mixed-precision
        training): a power spectrum rounded to 8 significant bits would
        put quantisation noise into every log-mel value, and the
        exported model computes the front end in float32.
        """
        with float32(signal.device.type):
            return self.logmel(self.spectrogram(self.normalize(signal)))


@contextlib.contextmanager
def float32(device_type: str) -> typing.Iterator[None]:
    r"""Compute in float32 inside, also under mixed-precision autocast.

    Layers whose inputs carry small differences on a large offset (a
    log-mel image in dB) lose them when autocast rounds to bfloat16.

    Examples:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     with float32("cpu"):
        ...         inside = torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype
        >>> inside
        torch.float32

    """
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):
            yield
    else:
        yield
