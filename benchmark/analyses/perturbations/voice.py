"""Voice transforms in pure numpy/scipy: pitch, formants, speed, spectral tilt/EQ, channel.

The one home of these transforms, used by the robustness conditions
``pitch-shift``, ``formant-shift`` and ``spectral-tilt``
(:mod:`benchmark.analyses.perturbations.transforms`), as training
augmentation that the teacher re-labels (:mod:`benchmark.distill.crops`),
and for the *voice shift* proxy of :mod:`benchmark.distill.targets` (how
well a student tracks its teacher when the voice moves: pitch ±2/±4
semitones, formants ±10 %, the same shifts as the ``voice-shift`` group of
``conditions.yaml``). Distilled students and their committed targets were
computed with exactly these numerics: change them only with a new
distillation.

* :func:`formant_shift` warps each frame's spectral envelope (cepstral
  smoothing) along frequency and keeps the harmonics where they are:
  the vocal tract gets longer or shorter, the pitch stays.
* :func:`pitch_shift` stretches time with a phase vocoder and resamples,
  which moves harmonics *and* formants; by default it then warps the
  envelope back, so only the pitch moves.
* :func:`speed` resamples (tempo and pitch together, like a tape).
* :func:`equalize` / :func:`tilt` apply a smooth gain curve over log
  frequency; :func:`channel` band-limits and soft-clips.

Every transform takes a mono signal ``(samples,)``, and is deterministic
(no random draws): the same signal and parameters give the same samples.
Level-preserving transforms keep the input's RMS, so a teacher reading
loudness hears only the voice change.
"""

from __future__ import annotations

import fractions

import numpy as np
import scipy.signal

SAMPLING_RATE = 16000
N_FFT = 512
HOP = 128
LIFTER = 30
r"""Cepstral coefficients kept for the envelope: at 16 kHz quefrencies below 1.9 ms, under the period of a 500 Hz voice."""


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _match_rms(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    r"""``y`` scaled to the RMS of ``reference`` (silence stays silence)."""
    ry, rx = _rms(y), _rms(reference)
    return (y * (rx / ry) if ry > 0 else y).astype(np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    r"""``y`` cut or zero-padded to ``n`` samples."""
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _stft(x: np.ndarray) -> np.ndarray:
    return scipy.signal.stft(x, nperseg=N_FFT, noverlap=N_FFT - HOP, window="hann", boundary="even", padded=True)[2]


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    y = scipy.signal.istft(spec, nperseg=N_FFT, noverlap=N_FFT - HOP, window="hann", boundary=True)[1]
    return _fit(np.asarray(y, dtype=np.float64), n)


def envelope(magnitude: np.ndarray, lifter: int = LIFTER) -> np.ndarray:
    r"""Spectral envelope of STFT magnitudes ``(bins, frames)`` by cepstral smoothing.

    Examples:
        >>> mag = np.ones((257, 2))
        >>> bool(np.allclose(envelope(mag), 1.0))
        True

    """
    log = np.log(np.maximum(magnitude, 1e-8))
    cep = np.fft.irfft(log, axis=0)
    cep[lifter + 1 : cep.shape[0] - lifter] = 0.0
    return np.exp(np.fft.rfft(cep, axis=0).real[: magnitude.shape[0]])


def _warp(env: np.ndarray, ratio: float) -> np.ndarray:
    r"""Envelope moved up in frequency by ``ratio``: ``env'(f) = env(f / ratio)``.

    Linear interpolation between bins, every frame at once, computed as :func:`numpy.interp`
    computes it frame by frame (the same samples, to the bit), beyond the last bin its value.
    """
    last = env.shape[0] - 1
    source = np.arange(env.shape[0], dtype=np.float64) / ratio
    left = np.minimum(np.floor(source).astype(np.intp), last - 1)
    slope = env[left + 1] - env[left]  # bins are 1 apart: numpy.interp's slope, divided by 1.0
    out = slope * (source - left)[:, None] + env[left]
    out[source >= last] = env[last]
    exact = source == left  # on a bin: its value, as numpy.interp
    out[exact] = env[left[exact]]
    return out


def formant_shift(signal: np.ndarray, ratio: float, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    r"""Move the formants by ``ratio`` (1.1: +10 %, a shorter vocal tract), keeping pitch, length and RMS.

    Args:
        signal: mono float signal
        ratio: frequency factor of the spectral envelope (0.5..2)
        sampling_rate: its sampling rate (the transform itself does not depend on it)

    Examples:
        >>> x = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32)
        >>> y = formant_shift(x, 1.1)
        >>> y.shape, y.dtype, bool(np.allclose(formant_shift(x, 1.0), x, atol=1e-4))
        ((16000,), dtype('float32'), True)

    """
    if not 0.5 <= ratio <= 2.0:
        raise ValueError(f"formant ratio {ratio}: give a factor between 0.5 and 2 (1.1 is +10 %).")
    x = np.asarray(signal, dtype=np.float64)
    if ratio == 1.0 or len(x) < N_FFT or not np.any(x):
        return np.asarray(signal, dtype=np.float32).copy()
    spec = _stft(x)
    mag = np.abs(spec)
    env = envelope(mag)
    gain = _warp(env, ratio) / np.maximum(env, 1e-8)
    return _match_rms(_istft(spec * gain, len(x)), x)


def time_stretch(signal: np.ndarray, rate: float) -> np.ndarray:
    r"""Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged.

    Examples:
        >>> x = np.random.default_rng(0).standard_normal(8000)
        >>> len(time_stretch(x, 2.0)), len(time_stretch(x, 0.5))
        (4000, 16000)

    """
    if rate <= 0:
        raise ValueError(f"time-stretch rate {rate}: give a positive factor.")
    x = np.asarray(signal, dtype=np.float64)
    n_out = int(round(len(x) / rate))
    spec = _stft(x)
    steps = np.arange(0, spec.shape[1] - 1, rate)
    left = steps.astype(np.intp)
    frac = steps - left
    expected = 2 * np.pi * HOP * np.arange(spec.shape[0]) / N_FFT
    magnitude, angle = np.abs(spec), np.angle(spec)
    delta = angle[:, left + 1] - angle[:, left] - expected[:, None]
    delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
    # phase[k + 1] = (phase[k] + expected) + delta[k], summed in this order: one cumulative sum
    # over the interleaved terms gives the bits of the frame-by-frame loop
    terms = np.empty((spec.shape[0], 2 * len(steps) + 1))
    terms[:, 0] = angle[:, 0]
    terms[:, 1::2] = expected[:, None]
    terms[:, 2::2] = delta
    phase = np.cumsum(terms, axis=1)[:, 0 : 2 * len(steps) : 2]
    out = ((1 - frac) * magnitude[:, left] + frac * magnitude[:, left + 1]) * np.exp(1j * phase)
    return _istft(out, n_out)


def resample(signal: np.ndarray, factor: float) -> np.ndarray:
    r"""Resample by ``factor`` (output length ≈ ``len / factor``): played at the same rate, everything is ``factor`` × faster and higher.

    Examples:
        >>> len(resample(np.zeros(16000), 1.25))
        12800

    """
    frac = fractions.Fraction(float(factor)).limit_denominator(200)
    y = scipy.signal.resample_poly(np.asarray(signal, dtype=np.float64), frac.denominator, frac.numerator)
    return _fit(y, int(round(len(signal) / factor)))


def pitch_shift(
    signal: np.ndarray, semitones: float, sampling_rate: int = SAMPLING_RATE, *, keep_formants: bool = True
) -> np.ndarray:
    r"""Shift the pitch by ``semitones``, keeping length and RMS (and, by default, the formants).

    Args:
        signal: mono float signal
        semitones: shift (-12..12)
        sampling_rate: its sampling rate
        keep_formants: warp the envelope back, so that only the pitch moves

    Examples:
        >>> sr = 16000
        >>> x = np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32)
        >>> y = pitch_shift(x, 12, keep_formants=False)  # a pure tone has no formants to keep
        >>> spectrum = np.abs(np.fft.rfft(y))
        >>> int(np.argmax(spectrum))  # 1 Hz bins: 200 Hz became 400 Hz
        400

    """
    if not -12 <= semitones <= 12:
        raise ValueError(f"pitch shift {semitones} semitones: give -12..12.")
    x = np.asarray(signal, dtype=np.float64)
    if semitones == 0 or len(x) < N_FFT or not np.any(x):
        return np.asarray(signal, dtype=np.float32).copy()
    ratio = 2.0 ** (semitones / 12.0)
    y = _fit(resample(time_stretch(x, 1.0 / ratio), ratio), len(x))
    if keep_formants:
        y = formant_shift(y, 1.0 / ratio, sampling_rate)
    return _match_rms(y, x)


def speed(signal: np.ndarray, factor: float) -> np.ndarray:
    r"""Play ``factor`` × faster (shorter, and higher by the same factor), like a tape; RMS kept.

    Examples:
        >>> len(speed(np.ones(16000, dtype=np.float32), 1.1))
        14545

    """
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor {factor}: give 0.5..2.")
    x = np.asarray(signal, dtype=np.float64)
    return _match_rms(resample(x, factor), x)


def equalize(signal: np.ndarray, gains_db: dict[float, float], sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    r"""Apply a gain curve given at some frequencies (Hz: dB), interpolated over log frequency; RMS kept.

    Below the lowest and above the highest frequency the curve is flat.

    Examples:
        >>> sr = 16000
        >>> t = np.arange(sr) / sr
        >>> x = (np.sin(2 * np.pi * 250 * t) + np.sin(2 * np.pi * 4000 * t)).astype(np.float32)
        >>> y = equalize(x, {250: -6.0, 4000: 6.0})
        >>> s = np.abs(np.fft.rfft(y))
        >>> round(float(20 * np.log10(s[4000] / s[250])), 1)  # 12 dB apart
        12.0

    """
    x = np.asarray(signal, dtype=np.float64)
    if not gains_db or not np.any(x):
        return np.asarray(signal, dtype=np.float32).copy()
    points = sorted(gains_db.items())
    freqs = np.fft.rfftfreq(len(x), 1.0 / sampling_rate)
    log_f = np.log2(np.maximum(freqs, 1.0))
    curve = np.interp(log_f, np.log2([f for f, _ in points]), [g for _, g in points])
    y = np.fft.irfft(np.fft.rfft(x) * 10.0 ** (curve / 20.0), n=len(x))
    return _match_rms(y, x)


def tilt(
    signal: np.ndarray,
    db_per_octave: float,
    sampling_rate: int = SAMPLING_RATE,
    *,
    pivot_hz: float = 1000.0,
    low_hz: float = 100.0,
    high_hz: float = 8000.0,
) -> np.ndarray:
    r"""Spectral tilt of ``db_per_octave`` between ``low_hz`` and ``high_hz`` (0 dB at ``pivot_hz``); RMS kept.

    The gain is ``db_per_octave * log2(f / pivot_hz)`` dB, held flat below
    ``low_hz`` and above ``high_hz`` (or Nyquist), so nothing grows without
    bound towards DC. With the RMS restored, ``pivot_hz`` only sets where
    the gain is 0 dB before that.

    Args:
        signal: mono float signal
        db_per_octave: slope; positive lifts high frequencies
        sampling_rate: its sampling rate
        pivot_hz: frequency of 0 dB gain (before the level is restored)
        low_hz: frequencies below it get its gain
        high_hz: frequencies above it (or above Nyquist) get its gain

    Examples:
        >>> x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
        >>> s = np.abs(np.fft.rfft(tilt(x, -3.0))) / np.abs(np.fft.rfft(x))
        >>> round(float(20 * np.log10(s[4000] / s[1000])), 1)  # two octaves
        -6.0
        >>> s = np.abs(np.fft.rfft(tilt(x, 3.0, low_hz=400.0))) / np.abs(np.fft.rfft(x))
        >>> round(float(20 * np.log10(s[400] / s[100])), 1)  # flat below low_hz
        0.0

    """
    top = min(high_hz, sampling_rate / 2)
    if not 0 < low_hz < top or pivot_hz <= 0:
        raise ValueError(
            f"spectral tilt band {low_hz}..{top} Hz, pivot {pivot_hz} Hz: give 0 < low_hz < min(high_hz, Nyquist)"
            " and a positive pivot."
        )
    return equalize(
        signal,
        {low_hz: db_per_octave * np.log2(low_hz / pivot_hz), top: db_per_octave * np.log2(top / pivot_hz)},
        sampling_rate,
    )


def channel(
    signal: np.ndarray, low_hz: float, high_hz: float, drive: float = 0.0, sampling_rate: int = SAMPLING_RATE
) -> np.ndarray:
    r"""A recording channel: band-pass ``low_hz``..``high_hz`` (4th-order Butterworth, zero phase) and soft clipping; RMS kept.

    Args:
        signal: mono float signal
        low_hz: lower edge (0: no high-pass)
        high_hz: upper edge (at or above Nyquist: no low-pass)
        drive: soft clipping ``tanh(g x) / tanh(g)`` with ``g = 1 + drive`` on the
            peak-normalised signal (0: linear)
        sampling_rate: its sampling rate

    Examples:
        >>> sr = 16000
        >>> t = np.arange(sr) / sr
        >>> x = (np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
        >>> s = np.abs(np.fft.rfft(channel(x, 300, 3400)))
        >>> bool(s[100] < 0.1 * s[1000])
        True

    """
    x = np.asarray(signal, dtype=np.float64)
    nyquist = sampling_rate / 2
    y = x
    if low_hz > 0 and high_hz < nyquist:
        sos = scipy.signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=sampling_rate, output="sos")
    elif low_hz > 0:
        sos = scipy.signal.butter(4, low_hz, btype="highpass", fs=sampling_rate, output="sos")
    elif high_hz < nyquist:
        sos = scipy.signal.butter(4, high_hz, btype="lowpass", fs=sampling_rate, output="sos")
    else:
        sos = None
    if sos is not None and len(x) > 27:  # sosfiltfilt needs a few samples of padding
        y = scipy.signal.sosfiltfilt(sos, x)
    if drive > 0:
        peak = float(np.max(np.abs(y))) or 1.0
        g = 1.0 + drive
        y = np.tanh(g * y / peak) / np.tanh(g) * peak
    return _match_rms(y, x)


VOICE_SHIFTS: dict[str, tuple[str, float]] = {
    "pitch-4": ("pitch", -4.0),
    "pitch-2": ("pitch", -2.0),
    "pitch+2": ("pitch", 2.0),
    "pitch+4": ("pitch", 4.0),
    "formant-10%": ("formant", 0.9),
    "formant+10%": ("formant", 1.1),
}
r"""The voice-shift conditions (name: kind, semitones or formant factor), as the robustness family defines them."""


def voice_shift(signal: np.ndarray, condition: str, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    r"""``signal`` under one of :data:`VOICE_SHIFTS`.

    Examples:
        >>> voice_shift(np.zeros(1000, dtype=np.float32), "pitch+2").shape
        (1000,)
        >>> voice_shift(np.zeros(10), "pitch+3")
        Traceback (most recent call last):
        ...
        ValueError: voice shift 'pitch+3': choose one of pitch-4, pitch-2, pitch+2, pitch+4, formant-10%, formant+10%.

    """
    if condition not in VOICE_SHIFTS:
        raise ValueError(f"voice shift '{condition}': choose one of {', '.join(VOICE_SHIFTS)}.")
    kind, value = VOICE_SHIFTS[condition]
    if kind == "pitch":
        return pitch_shift(signal, value, sampling_rate)
    return formant_shift(signal, value, sampling_rate)
