"""Spectral transforms: spectral tilt, and the voice shifts (pitch and formants).

All work on mono float signals ``(1, samples)`` or ``(samples,)``, keep the
length and the RMS level of their input (only the spectral shape changes;
level is a condition of its own), and are deterministic (no random draws).

* :func:`spectral_tilt`: a gain linear in log frequency, ``tilt`` dB per
  octave around ``pivot_hz`` (zero-phase, one FFT over the whole signal).
* :func:`formant_shift`: the spectral envelope of every STFT frame (an LPC
  fit) is warped along frequency by ``factor``; the fine structure,
  and so the harmonics and the pitch, stay where they are.
* :func:`pitch_shift`: a phase vocoder stretches the signal by ``r`` =
  2^(semitones/12), resampling brings it back to its length (every
  frequency × r), and a formant shift by 1/r puts the envelope back: f0
  moves, duration and formants do not.
"""

from __future__ import annotations

import numpy as np

N_FFT = 1024
"""STFT frame (64 ms at 16 kHz) of the phase vocoder and the envelope warp."""

HOP = 256
"""STFT hop (a quarter frame: the Hann windows add up to a constant)."""

LPC_ORDER = 20
"""Order of the all-pole spectral envelope (about one pole pair per kHz at 16 kHz, plus a few for the glottal
source and the channel): low enough that the harmonics stay in the fine structure."""


def _level_like(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    rms_x, rms_y = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    return y * (rms_x / rms_y) if rms_y > 0 else y


def spectral_tilt(
    signal, sampling_rate: int, tilt_db_per_octave: float, pivot_hz: float = 1000.0, low_hz: float = 100.0
):
    r"""Tilt the spectrum by ``tilt_db_per_octave`` dB per octave around ``pivot_hz``.

    The gain at frequency f is ``tilt * log2(f / pivot_hz)`` dB, with f held
    at ``low_hz`` below it (no boost or cut growing without bound towards
    DC). The output is scaled back to the RMS of the input.

    Args:
        signal: ``(samples,)`` or ``(1, samples)``
        sampling_rate: its rate
        tilt_db_per_octave: slope; positive lifts high frequencies
        pivot_hz: frequency of 0 dB gain (before the level is restored)
        low_hz: frequencies below it get its gain

    Returns:
        float32 array of the input's shape

    Examples:
        >>> t = np.arange(16000) / 16000
        >>> x = np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 2000 * t)
        >>> y = spectral_tilt(x, 16000, 3.0)
        >>> spectrum = np.abs(np.fft.rfft(y))
        >>> round(float(20 * np.log10(spectrum[2000] / spectrum[500])), 1)  # 2 octaves × 3 dB
        6.0

    """
    x = np.asarray(signal, dtype="float64")
    n = x.shape[-1]
    freqs = np.fft.rfftfreq(n, 1 / sampling_rate)
    gain_db = tilt_db_per_octave * np.log2(np.maximum(freqs, low_hz) / pivot_hz)
    y = np.fft.irfft(np.fft.rfft(x, axis=-1) * 10 ** (gain_db / 20), n, axis=-1)
    return _level_like(y, x).astype("float32")


def _stft(x: np.ndarray) -> np.ndarray:
    # centred frames (reflect-padded), periodic Hann window; (bins, frames)
    pad = np.pad(x, N_FFT // 2, mode="reflect") if x.size > N_FFT // 2 else np.pad(x, N_FFT // 2)
    frames = 1 + max(0, (pad.size - N_FFT)) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    pad = np.pad(pad, (0, max(0, index.max() + 1 - pad.size)))
    return np.fft.rfft(pad[index] * _window(), axis=1).T


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    frames = spec.shape[1]
    window = _window()
    out = np.zeros(N_FFT + HOP * (frames - 1))
    norm = np.zeros_like(out)
    chunks = np.fft.irfft(spec.T, N_FFT, axis=1) * window
    for i in range(frames):
        out[i * HOP : i * HOP + N_FFT] += chunks[i]
        norm[i * HOP : i * HOP + N_FFT] += window**2
    out = out / np.where(norm > 1e-8, norm, 1.0)
    out = out[N_FFT // 2 :]
    return np.pad(out, (0, max(0, length - out.size)))[:length]


def _window() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


def _envelope(log_magnitude: np.ndarray) -> np.ndarray:
    # LPC envelope per frame (axis 0: bins): the all-pole fit follows narrow
    # resonances that cepstral smoothing would blur, and its low order keeps
    # the harmonics out of it
    power = np.exp(2 * log_magnitude)
    autocorrelation = np.fft.irfft(power, N_FFT, axis=0)[: LPC_ORDER + 1]
    autocorrelation[0] *= 1 + 1e-9  # white-noise floor: a well-conditioned recursion
    a, error = _levinson(autocorrelation)
    response = np.fft.rfft(a, N_FFT, axis=0)
    return 0.5 * np.log(np.maximum(error, 1e-20)) - np.log(np.maximum(np.abs(response), 1e-10))


def _levinson(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Levinson-Durbin over all frames at once; r: (order + 1, frames)
    order, frames = r.shape[0] - 1, r.shape[1]
    a = np.zeros((order + 1, frames))
    a[0] = 1.0
    error = r[0].copy()
    for i in range(1, order + 1):
        safe = np.where(error > 0, error, 1.0)
        k = -np.sum(a[:i] * r[i:0:-1], axis=0) / safe
        k = np.where(error > 0, k, 0.0)
        a[1 : i + 1] = a[1 : i + 1] + k * a[i - 1 :: -1][:i]
        error = error * (1 - k**2)
    return a, error


def _warp_envelope(spec: np.ndarray, factor: float) -> np.ndarray:
    magnitude = np.abs(spec)
    log_magnitude = np.log(np.maximum(magnitude, 1e-10))
    envelope = _envelope(log_magnitude)
    bins = np.arange(spec.shape[0], dtype="float64")
    # the envelope value at bin k moves to bin k * factor
    warped = np.stack([np.interp(bins / factor, bins, column) for column in envelope.T], axis=1)
    return np.exp(log_magnitude - envelope + warped) * np.exp(1j * np.angle(spec))


def formant_shift(signal, sampling_rate: int, factor: float):
    r"""Move the spectral envelope (the formants) by ``factor``, keeping pitch and duration.

    Args:
        signal: ``(samples,)`` or ``(1, samples)``
        sampling_rate: its rate (the warp is relative, so it does not enter)
        factor: 1.1 moves every resonance 10 % up

    Returns:
        float32 array of the input's shape, at the input's RMS level

    """
    x = np.asarray(signal, dtype="float64")
    flat = x.reshape(-1)
    y = _istft(_warp_envelope(_stft(flat), factor), flat.size)
    return _level_like(y, flat).reshape(x.shape).astype("float32")


def time_stretch(x: np.ndarray, rate: float) -> np.ndarray:
    r"""Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged.

    Examples:
        >>> time_stretch(np.zeros(16000), 0.5).size
        32000

    """
    spec = _stft(np.asarray(x, dtype="float64"))
    steps = np.arange(0, spec.shape[1], rate)
    advance = 2 * np.pi * HOP * np.arange(spec.shape[0]) / N_FFT
    spec = np.pad(spec, ((0, 0), (0, 2)))
    phase = np.angle(spec[:, 0])
    out = np.empty((spec.shape[0], steps.size), dtype=complex)
    for i, step in enumerate(steps):
        left, right = spec[:, int(step)], spec[:, int(step) + 1]
        alpha = step % 1
        out[:, i] = ((1 - alpha) * np.abs(left) + alpha * np.abs(right)) * np.exp(1j * phase)
        delta = np.angle(right) - np.angle(left) - advance
        delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
        phase = phase + advance + delta
    return _istft(out, int(round(x.size / rate)))


def pitch_shift(signal, sampling_rate: int, semitones: float):
    r"""Shift the pitch by ``semitones``, keeping duration and formants.

    Args:
        signal: ``(samples,)`` or ``(1, samples)``
        sampling_rate: its rate
        semitones: shift; 12 doubles f0

    Returns:
        float32 array of the input's shape, at the input's RMS level

    """
    import scipy.signal

    x = np.asarray(signal, dtype="float64")
    flat = x.reshape(-1)
    ratio = 2 ** (semitones / 12)
    stretched = time_stretch(flat, 1 / ratio)  # ratio × longer, same pitch
    shifted = scipy.signal.resample(stretched, flat.size)  # back to the length: every frequency × ratio
    y = formant_shift(shifted, sampling_rate, 1 / ratio)  # the envelope back where it was
    return _level_like(np.asarray(y, dtype="float64"), flat).reshape(x.shape).astype("float32")
