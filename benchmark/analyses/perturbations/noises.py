"""Synthesized background sounds: music and environmental noise.

No package on the registries this project uses ships recorded music or
sound effects that could be installed and pinned within the project's
build, so both are synthesized from the per-file generator (see
docs/analyses.md). Every sound is a pure function of ``rng``: the same
file seed gives the same sound.

* :func:`music`: a chord progression in a random major key with a bass line
  and a melody, each note a harmonic tone with a plucked (fast attack,
  exponential decay) envelope, at a random tempo.
* :func:`environmental`: one of three scenes: rain (high-frequency hiss and
  random drops), traffic (low rumble with cars passing by) or wind
  (low-frequency noise with gusts).
"""

from __future__ import annotations

import numpy as np

SCENES = ("rain", "traffic", "wind")
"""Scenes of :func:`environmental`, drawn per file."""

_PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 0), (0, 9, 5, 7), (0, 4, 9, 5))
"""Chord roots in semitones above the key (I-V-vi-IV, I-IV-V-I, I-vi-IV-V, I-iii-vi-IV)."""

_MAJOR = (0, 2, 4, 5, 7, 9, 11)


_TONES: dict[tuple[float, int, int], np.ndarray] = {}
r"""Harmonic tones by (frequency, sampling rate, partials), shared by every file's music."""
_TONE_SECONDS = 1.5
r"""Length a tone is first made with: a chord lasts two beats, at most 1.3 s."""


def _tone(frequency: float, samples: int, sampling_rate: int, partials: int) -> np.ndarray:
    r"""The first ``samples`` of the harmonic tone of ``frequency``, unenveloped.

    Each sample depends on its time alone, so a shorter tone is the start of a longer one,
    to the bit: the tones of the few dozen pitches music plays are made once per process,
    not once per note and file.
    """
    key = (frequency, sampling_rate, partials)
    tone = _TONES.get(key)
    if tone is None or len(tone) < samples:
        t = np.arange(max(samples, int(_TONE_SECONDS * sampling_rate))) / sampling_rate
        tone = np.zeros(len(t))
        for k in range(1, partials + 1):
            if k * frequency < sampling_rate / 2:
                tone += np.sin(2 * np.pi * k * frequency * t) / k**1.5
        _TONES[key] = tone
    return tone[:samples]


def _note(frequency: float, samples: int, sampling_rate: int, partials: int = 8) -> np.ndarray:
    t = np.arange(samples) / sampling_rate
    attack = np.minimum(1.0, t / 0.01)
    decay = np.exp(-t / (0.25 * samples / sampling_rate + 0.05))
    return _tone(frequency, samples, sampling_rate, partials) * attack * decay


def _midi(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def music(length: int, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
    r"""Synthetic music of ``length`` samples, drawn from ``rng``.

    Examples:
        >>> x = music(16000, 16000, np.random.default_rng(0))
        >>> x.shape, bool(np.all(np.isfinite(x))), bool(np.std(x) > 0)
        ((16000,), True, True)
        >>> bool(np.array_equal(x, music(16000, 16000, np.random.default_rng(0))))
        True

    """
    key = int(rng.integers(48, 60))  # C3..B3
    beat = int(rng.uniform(0.35, 0.65) * sampling_rate)
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    offset = int(rng.integers(4 * 2 * beat))  # start anywhere in the 4-bar loop
    total = length + offset
    out = np.zeros(total + 2 * beat)
    notes: dict[tuple[float, int], np.ndarray] = {}

    def note(frequency: float, samples: int) -> np.ndarray:
        # chords and melody notes recur within a clip: each pitch and length is enveloped once (the
        # harmonic tones themselves are shared by every clip, _tone)
        if (frequency, samples) not in notes:
            notes[frequency, samples] = _note(frequency, samples, sampling_rate)
        return notes[frequency, samples]

    for position in range(0, total, beat):
        bar, step = divmod(position // beat, 2)
        root = key + progression[bar % len(progression)]
        if step == 0:  # a chord (triad over a bass note) on every bar's first beat
            minor = (root - key) % 12 in (4, 9)
            for interval in (-12, 0, 3 if minor else 4, 7):
                out[position : position + 2 * beat] += 0.5 * note(_midi(root + interval), 2 * beat)
        degree = _MAJOR[int(rng.integers(len(_MAJOR)))]
        out[position : position + beat] += 0.8 * note(_midi(key + 12 + degree), beat)
    return out[offset : offset + length].astype("float32")


def _shaped(noise: np.ndarray, sampling_rate: int, shape) -> np.ndarray:
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(noise.size, 1 / sampling_rate)
    return np.fft.irfft(spectrum * shape(freqs), noise.size)


def _smooth(values: np.ndarray, samples: int) -> np.ndarray:
    # slow control curve: piecewise-linear through the values, spread over the samples
    return np.interp(np.arange(samples), np.linspace(0, samples - 1, values.size), values)


def environmental(length: int, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
    r"""A synthetic environmental scene of ``length`` samples, drawn from ``rng``.

    Examples:
        >>> x = environmental(16000, 16000, np.random.default_rng(1))
        >>> x.shape, bool(np.std(x) > 0)
        ((16000,), True)

    """
    scene = SCENES[int(rng.integers(len(SCENES)))]
    seconds = max(length / sampling_rate, 1e-3)
    white = rng.normal(size=length)
    if scene == "rain":
        hiss = _shaped(white, sampling_rate, lambda f: np.clip(f / 2000, 0, 1))
        drops = np.zeros(length)
        count = rng.poisson(40 * seconds)
        decay = np.exp(-np.arange(int(0.006 * sampling_rate)) / (0.0015 * sampling_rate))
        for start, amplitude in zip(rng.integers(length, size=count), rng.uniform(1, 6, size=count)):
            burst = amplitude * decay * rng.normal(size=decay.size)
            drops[start : start + decay.size] += burst[: length - start]
        return (hiss + _shaped(drops, sampling_rate, lambda f: np.clip(f / 1000, 0, 1))).astype("float32")
    if scene == "traffic":
        rumble = _shaped(white, sampling_rate, lambda f: 1 / np.maximum(f, 40) * (f < 2000))
        t = np.arange(length) / sampling_rate
        passing = np.full(length, 0.2)
        for centre, width in zip(
            rng.uniform(0, seconds, size=rng.poisson(0.5 * seconds) + 1), rng.uniform(1.0, 3.0, size=64)
        ):
            passing += np.exp(-0.5 * ((t - centre) / (width / 2)) ** 2)
        return (rumble * passing).astype("float32")
    gusts = _smooth(rng.uniform(0.2, 1.0, size=int(2 * seconds) + 2), length)
    wind = _shaped(white, sampling_rate, lambda f: 1 / np.maximum(f, 30) * (f < 800))
    return (wind * gusts).astype("float32")
