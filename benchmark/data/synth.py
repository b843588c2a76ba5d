r"""Speech-like audio with known emotional cues.

A small source-filter synthesizer (numpy/scipy, seeded, no external
binaries) used to build the embedded demo corpora
(:mod:`benchmark.data.demo`). It is not meant to sound natural; it is
meant to carry the acoustic correlates of arousal, dominance and valence
that the literature reports, with known strength, on top of speaker and
sex differences that a model must learn to ignore:

* source: glottal pulses (Rosenberg flow, differentiated for lip
  radiation) on an f0 contour with jitter and shimmer, plus pulsed
  aspiration noise (breathiness), through a first-order spectral tilt
* filter: a cascade of four second-order resonators (F1-F4), updated
  every 20 ms along a sequence of vowel-like targets (steady states,
  linear transitions between neighbouring vowels for coarticulation)
* rhythm: syllables (optional consonant onset: fricative, stop burst or
  nasal, then a vowel) grouped into phrases separated by pauses

The latent emotion (z-scores, see :class:`Emotion`) drives the acoustic
parameters in :func:`cues`; the speaker (:class:`Speaker`) sets the
baseline. See ``docs/demo-data.md`` for the mapping and its sources.

Examples:
    >>> rng = np.random.default_rng(0)
    >>> spk = make_speaker("s1", "female", rng)
    >>> x = synthesize(spk, Emotion(1.0, 0.5, 0.0), rng, duration=2.0)
    >>> x.dtype, x.ndim, 1.5 <= len(x) / SAMPLING_RATE <= 2.2
    (dtype('float32'), 1, True)

"""

from __future__ import annotations

import dataclasses
import functools
import typing

import numpy as np
import scipy.signal

SAMPLING_RATE = 16000
r"""Sampling rate of all synthesized audio in Hz."""

_CHUNK = 320  # formant update interval in samples (20 ms)
_HOP = 16  # f0 update interval in samples (1 ms)
_TABLE = 2048  # samples of the glottal pulse table

# F1-F4 in Hz of ten American English vowels, adult male speakers
# (Peterson & Barney 1952; F4 fixed). Female speakers scale them up.
VOWELS = np.array(
    [
        [270, 2290, 3010, 3500],  # i
        [390, 1990, 2550, 3500],  # ɪ
        [530, 1840, 2480, 3500],  # ɛ
        [660, 1720, 2410, 3500],  # æ
        [730, 1090, 2440, 3500],  # ɑ
        [570, 840, 2410, 3500],  # ɔ
        [440, 1020, 2240, 3500],  # ʊ
        [300, 870, 2240, 3500],  # u
        [640, 1190, 2390, 3500],  # ʌ
        [490, 1350, 1690, 3500],  # ɝ
    ],
    dtype="float64",
)
_NASAL = np.array([280.0, 1300.0, 2300.0, 3500.0])
_BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])

# Onset consonants: name -> (probability, duration range in s)
_CONSONANTS = {
    "none": (0.30, (0.0, 0.0)),
    "s": (0.18, (0.07, 0.12)),
    "sh": (0.10, (0.07, 0.11)),
    "f": (0.10, (0.06, 0.10)),
    "stop": (0.20, (0.04, 0.07)),
    "nasal": (0.12, (0.05, 0.08)),
}
_FRICATIVE_BANDS = {"s": (3800.0, 7500.0), "sh": (2000.0, 5000.0), "f": (1200.0, 7000.0), "stop": (500.0, 6000.0)}
_FRICATIVE_GAIN = {"s": 0.35, "sh": 0.35, "f": 0.12, "stop": 0.6}  # RMS relative to vowels


@dataclasses.dataclass(frozen=True)
class Emotion:
    r"""Latent emotion of one utterance as z-scores (0 = neutral, ±1 = one SD)."""

    arousal: float
    dominance: float
    valence: float


@dataclasses.dataclass(frozen=True)
class Speaker:
    r"""Vocal identity of a speaker: the baseline the emotion cues act on."""

    id: str
    sex: str  # 'female' or 'male'
    f0: float  # median f0 in Hz of neutral speech
    formant_scale: float  # vocal tract length: factor on the male vowel formants
    breathiness: float  # 0..1, aspiration noise and open quotient
    jitter: float  # relative SD of the period from cycle to cycle
    shimmer: float  # relative SD of the amplitude from cycle to cycle
    rate: float  # syllables per second of neutral speech
    expressiveness: float  # factor on the f0 range
    level: float  # dB offset of the speaking level (incl. microphone distance)
    tilt: float  # offset of the spectral tilt pole
    channel: float  # first-order coloration of the recording channel
    noise_floor: float  # background noise level in dBFS


def make_speaker(speaker_id: str, sex: str, rng: np.random.Generator) -> Speaker:
    r"""Draw a speaker identity.

    Female and male voices differ in f0 (about 210 vs. 120 Hz) and in
    formants (about +15%, shorter vocal tract); all other traits vary
    between speakers regardless of sex.

    Examples:
        >>> spk = make_speaker("x", "male", np.random.default_rng(1))
        >>> 80 < spk.f0 < 180, spk.sex
        (True, 'male')

    """
    if sex not in ("female", "male"):
        raise ValueError(f"sex must be 'female' or 'male', not '{sex}'")
    female = sex == "female"
    n = rng.standard_normal(11)
    return Speaker(
        id=speaker_id,
        sex=sex,
        f0=(210.0 if female else 120.0) * float(np.exp(0.12 * n[0])),
        formant_scale=(1.15 if female else 1.0) * float(np.exp(0.04 * n[1])),
        breathiness=float(np.clip((0.35 if female else 0.25) + 0.1 * n[2], 0.05, 0.8)),
        jitter=0.006 * float(np.exp(0.3 * n[3])),
        shimmer=0.04 * float(np.exp(0.3 * n[4])),
        rate=4.5 * float(np.exp(0.1 * n[5])),
        expressiveness=float(np.exp(0.2 * n[6])),
        level=2.0 * float(n[7]),
        tilt=0.05 * float(n[8]),
        channel=float(np.clip(0.15 * n[9], -0.4, 0.4)),
        noise_floor=-65.0 + 4.0 * float(n[10]),
    )


@dataclasses.dataclass(frozen=True)
class Cues:
    r"""Acoustic parameters of one utterance (see :func:`cues`)."""

    f0: float  # median f0 in Hz
    f0_range: float  # phrase-level f0 excursion in semitones
    level: float  # active-speech RMS in dBFS
    rate: float  # syllables per second
    tilt: float  # pole of the first-order source low-pass (larger: steeper tilt)
    open_quotient: float  # open part of the glottal cycle
    closing: float  # closing part of the open phase (smaller: more abrupt closure)
    terminal: float  # f0 rise (+) or fall (-) at phrase ends in semitones
    formant_shift: float  # factor on F1 and F2
    jitter: float
    shimmer: float
    breathiness: float


def cues(speaker: Speaker, emotion: Emotion, rng: np.random.Generator | None = None) -> Cues:
    r"""Map speaker and latent emotion to acoustic parameters.

    Arousal raises f0 level and range, loudness and rate and flattens
    the spectral tilt (more abrupt glottal closure); dominance raises
    loudness and lowers f0 and rate; valence acts only through weak cues:
    the f0 contour at phrase ends (rising when positive), a small upward
    shift of F1/F2 (smiling) and less jitter. ``rng`` adds per-utterance
    variability that is unrelated to emotion (context, recording gain).

    Examples:
        >>> spk = make_speaker("x", "female", np.random.default_rng(1))
        >>> calm, excited = cues(spk, Emotion(-1, 0, 0)), cues(spk, Emotion(1, 0, 0))
        >>> excited.f0 > calm.f0, excited.level > calm.level, excited.rate > calm.rate
        (True, True, True)

    """
    a, d, v = emotion.arousal, emotion.dominance, emotion.valence
    n = rng.standard_normal(6) if rng is not None else np.zeros(6)
    return Cues(
        f0=speaker.f0 * float(np.exp2((2.0 * a - 0.7 * d + 0.6 * n[0]) / 12)),
        f0_range=float(np.clip(4.0 * speaker.expressiveness * np.exp(0.25 * a + 0.1 * n[1]), 0.5, 14.0)),
        level=float(-28.0 + 3.0 * a + 2.0 * d + speaker.level + 1.5 * n[2]),
        rate=speaker.rate * float(np.exp(0.10 * a - 0.06 * d + 0.06 * n[3])),
        tilt=float(np.clip(0.45 - 0.10 * a + speaker.tilt + 0.04 * n[4], 0.02, 0.9)),
        open_quotient=float(np.clip(0.6 - 0.04 * a + 0.15 * speaker.breathiness, 0.35, 0.85)),
        closing=float(np.clip(0.35 * np.exp(-0.2 * a), 0.12, 0.6)),
        terminal=float(2.0 * v + 1.0 * n[5]),
        formant_shift=1.0 + 0.03 * float(np.tanh(v)),
        jitter=speaker.jitter * float(np.exp(-0.35 * v)),
        shimmer=speaker.shimmer * float(np.exp(-0.1 * a)),
        breathiness=float(np.clip(speaker.breathiness * np.exp(-0.15 * a), 0.02, 0.9)),
    )


class _Segment(typing.NamedTuple):
    kind: str  # 'pause', 'vowel' or a consonant name
    start: int
    length: int
    vowel: int  # index into VOWELS (vowels only)
    stress: bool


def _plan(c: Cues, duration: float, rng: np.random.Generator) -> tuple[list[_Segment], list[tuple[int, int]], int]:
    r"""Syllables, phrases and pauses filling ``duration`` seconds.

    Returns the segments, the phrases as (start, end) samples and the
    total number of samples.
    """
    sr = SAMPLING_RATE
    names = list(_CONSONANTS)
    probs = np.array([p for p, _ in _CONSONANTS.values()])
    pos = int(rng.uniform(0.05, 0.15) * sr)
    end = int((duration - rng.uniform(0.05, 0.15)) * sr)
    segments, phrases, full = [], [], False
    while not full:
        phrase_start, n_syl = pos, int(rng.integers(3, 9))
        for _ in range(n_syl):
            stress = bool(rng.random() < 0.35)
            syllable = (1.3 if stress else 1.0) * float(np.exp(0.2 * rng.standard_normal())) / c.rate
            kind = names[int(rng.choice(len(names), p=probs))]
            lo, hi = _CONSONANTS[kind][1]
            onset = rng.uniform(lo, hi) if kind != "none" else 0.0
            vowel = max(0.05, syllable - onset)
            if pos + int((onset + vowel) * sr) > end and segments:
                full = True
                break
            if kind != "none":
                segments.append(_Segment(kind, pos, int(onset * sr), -1, stress))
                pos += int(onset * sr)
            segments.append(_Segment("vowel", pos, int(vowel * sr), int(rng.integers(len(VOWELS))), stress))
            pos += int(vowel * sr)
        phrases.append((phrase_start, pos))
        pause = int(rng.uniform(0.12, 0.45) * sr)
        full = full or pos + pause + int(0.3 * sr) > end
        pos += 0 if full else pause
    total = max(pos + int(rng.uniform(0.05, 0.15) * sr), int(1.5 * sr))
    return segments, phrases, total


def _ramp(n: int, attack: int, release: int) -> np.ndarray:
    r"""Envelope rising over ``attack`` and falling over ``release`` samples (raised cosine)."""
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(attack) + 0.5) / attack)
    if release:
        env[n - release :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 0.5) / release)
    return env


def _noise_envelope(seg: _Segment) -> np.ndarray:
    r"""Envelope of a fricative, or of a stop: closure silence, then a short decaying burst."""
    sr = SAMPLING_RATE
    if seg.kind != "stop":
        return _ramp(seg.length, sr // 50, sr // 50)
    burst = min(int(0.015 * sr), seg.length)
    env = np.zeros(seg.length)
    env[seg.length - burst :] = np.exp(-np.arange(burst) / (0.004 * sr))
    return env


def _f0_contour(c: Cues, segments, phrases, total: int, rng: np.random.Generator) -> np.ndarray:
    r"""f0 in Hz per sample: declining phrase arcs, pitch accents, terminal rise/fall, slow wander.

    Computed every :data:`_HOP` samples (1 ms) and held in between,
    which is far below what the ear resolves and 16 times cheaper.
    """
    frames = -(-total // _HOP)
    st = np.zeros(frames)
    for start, end in phrases:
        start, end = start // _HOP, end // _HOP
        p = np.linspace(0.0, 1.0, end - start, endpoint=False)
        arc = c.f0_range * (0.5 * np.sin(np.pi * np.minimum(p / 0.3, 1.0) / 2) - 0.5 * p)
        tail = np.clip((p - 0.65) / 0.35, 0.0, 1.0)
        st[start:end] += arc + c.terminal * tail
    for seg in segments:
        if seg.kind == "vowel" and seg.stress:
            start, length = seg.start // _HOP, seg.length // _HOP
            st[start : start + length] += 0.4 * c.f0_range * np.sin(np.pi * np.linspace(0.0, 1.0, length))
    step = SAMPLING_RATE // 10 // _HOP  # wander knots every 100 ms
    knots = np.arange(0, frames + 2 * step, step)
    st += np.interp(np.arange(frames), knots, 0.6 * rng.standard_normal(len(knots)))
    return np.repeat(c.f0 * np.exp2(st / 12), _HOP)[:total]


def _glottal_source(c: Cues, f0: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""Differentiated Rosenberg pulses with jitter and shimmer, and the glottal flow itself."""
    increment = f0 / SAMPLING_RATE
    cycle = np.cumsum(increment).astype(np.int64)
    jitter = 1.0 + c.jitter * rng.standard_normal(cycle[-1] + 2)
    phase = np.cumsum(increment * jitter[cycle])
    k = phase.astype(np.int64)
    # one period of the flow as a table: indexing is much cheaper than cosines per sample
    t = (np.arange(_TABLE) + 0.5) / _TABLE
    opening = c.open_quotient * (1.0 - c.closing)
    closing = c.open_quotient * c.closing
    period = np.where(
        t < opening,
        0.5 - 0.5 * np.cos(np.pi * t / opening),
        np.where(t < c.open_quotient, np.cos(0.5 * np.pi * np.minimum(t - opening, closing) / closing), 0.0),
    )
    shimmer = np.clip(1.0 + c.shimmer * rng.standard_normal(k[-1] + 2), 0.2, None)
    flow = period[((phase - k) * _TABLE).astype(np.int64)] * shimmer[k]
    return np.diff(flow, prepend=0.0), flow


def _resonator_sos(formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    r"""Second-order sections (unity gain at DC) of a cascade of resonators.

    ``formants``: (..., n_formants) in Hz; returns (..., n_formants, 6).
    """
    r = np.exp(-np.pi * bandwidths / SAMPLING_RATE) * np.ones_like(formants)
    theta = 2 * np.pi * formants / SAMPLING_RATE
    a1, a2 = -2 * r * np.cos(theta), r**2
    sos = np.zeros(formants.shape + (6,))
    sos[..., 0] = 1 + a1 + a2
    sos[..., 3] = 1.0
    sos[..., 4] = a1
    sos[..., 5] = a2
    return sos


def _formant_filter(x: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    r"""Filter ``x`` with formants updated every :data:`_CHUNK` samples, carrying the filter state.

    The resonators of a chunk are multiplied out into one direct-form
    filter: one :func:`scipy.signal.lfilter` call per chunk is several
    times faster than a cascade of calls, and float64 keeps order 8 stable.
    """
    sos = _resonator_sos(formants, bandwidths)
    a = sos[:, 0, 3:]
    for k in range(1, sos.shape[1]):  # row-wise polynomial product
        q = sos[:, k, 3:]
        out = np.zeros((len(a), a.shape[1] + 2))
        for j in range(3):
            out[:, j : j + a.shape[1]] += a * q[:, j : j + 1]
        a = out
    b = np.prod(sos[:, :, 0], axis=1)
    # chunks with the same formants (vowel steady states) share one call
    starts = np.flatnonzero(np.r_[True, np.any(formants[1:] != formants[:-1], axis=1)])
    ends = np.r_[starts[1:], len(formants)]
    y = np.empty_like(x)
    zi = np.zeros(a.shape[1] - 1)
    for i, j in zip(starts, ends):
        sl = slice(i * _CHUNK, j * _CHUNK)
        y[sl], zi = scipy.signal.lfilter(b[i : i + 1], a[i], x[sl], zi=zi)
    return y


@functools.cache
def _band_sos(kind: str) -> np.ndarray:
    lo, hi = _FRICATIVE_BANDS[kind]
    return scipy.signal.butter(2, (lo, hi), btype="bandpass", fs=SAMPLING_RATE, output="sos")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def synthesize(
    speaker: Speaker,
    emotion: Emotion,
    rng: np.random.Generator,
    *,
    duration: float | None = None,
) -> np.ndarray:
    r"""Synthesize one utterance.

    Args:
        speaker: vocal identity
        emotion: latent emotion driving the cues (:func:`cues`)
        rng: random generator; the same state gives the same samples
        duration: target length in seconds (default: drawn around 3 s,
            1.5 to 8 s); the result ends after the last complete syllable

    Returns:
        mono signal at :data:`SAMPLING_RATE`, float32 in -1..1

    """
    sr = SAMPLING_RATE
    if duration is None:
        duration = float(np.clip(np.exp(np.log(3.0) + 0.4 * rng.standard_normal()), 1.6, 8.0))
    c = cues(speaker, emotion, rng)
    segments, phrases, total = _plan(c, duration, rng)
    n_chunks = -(-total // _CHUNK)
    total = n_chunks * _CHUNK  # whole formant chunks; the tail is silence

    # envelope of the voiced source (vowels, nasals)
    voiced = np.zeros(total)
    for seg in segments:
        sl = slice(seg.start, seg.start + seg.length)
        if seg.kind == "vowel":
            voiced[sl] = (1.4 if seg.stress else 1.0) * _ramp(seg.length, sr // 60, sr // 30)
        elif seg.kind == "nasal":
            voiced[sl] = 0.3 * _ramp(seg.length, sr // 100, sr // 100)

    # source: pulses with aspiration noise (pulsed with the glottal opening), spectral tilt
    f0 = _f0_contour(c, segments, phrases, total, rng)
    pulses, flow = _glottal_source(c, f0, rng)
    pulses /= _rms(pulses[voiced > 0]) or 1.0
    aspiration = np.diff(rng.standard_normal(total + 1)) * (0.3 + flow) * c.breathiness
    source = scipy.signal.lfilter([1.0 - c.tilt], [1.0, -c.tilt], pulses + aspiration) * voiced

    # filter: formant targets of vowels and nasals, interpolated in between
    knots, targets = [], []
    for seg in segments:
        if seg.kind == "vowel":
            shift = np.array([c.formant_shift, c.formant_shift, 1.0, 1.0])
            target = VOWELS[seg.vowel] * speaker.formant_scale * shift
        elif seg.kind == "nasal":
            target = _NASAL * speaker.formant_scale
        else:
            continue
        # steady state over the middle 60%, transitions to the neighbours outside it
        knots += [seg.start + 0.2 * seg.length, seg.start + 0.8 * seg.length]
        targets += [target, target]
    # snap to chunk centres so that a steady state gives identical rows
    chunk = np.clip(np.round((np.array(knots) - _CHUNK / 2) / _CHUNK), 0, n_chunks - 1)
    formants = np.stack([np.interp(np.arange(n_chunks), chunk, t) for t in np.array(targets).T], axis=1)
    bandwidths = _BANDWIDTHS * (1.0 + c.breathiness)
    speech = _formant_filter(source, np.minimum(formants, 0.45 * sr), bandwidths)
    speech /= _rms(speech[voiced > 0.5]) or 1.0

    active = voiced > 0.5
    for seg in segments:
        if seg.kind in _FRICATIVE_BANDS:
            sl = slice(seg.start, seg.start + seg.length)
            band = scipy.signal.sosfilt(_band_sos(seg.kind), rng.standard_normal(seg.length))
            speech[sl] += _FRICATIVE_GAIN[seg.kind] * band / (_rms(band) or 1.0) * _noise_envelope(seg)
            active[sl] = True

    # recording: channel coloration, speaking level, background noise
    speech = scipy.signal.lfilter([1.0, speaker.channel], [1.0], speech)
    speech *= 10 ** (c.level / 20) / (_rms(speech[active]) or 1.0)
    floor = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(total))
    speech += 10 ** (speaker.noise_floor / 20) * floor / _rms(floor)
    return np.clip(speech, -0.999, 0.999).astype("float32")
