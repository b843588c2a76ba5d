"""The signal transforms: one auglib transform per condition type, applied with a per-file seed."""

from __future__ import annotations

import contextlib
import functools
import math
import random
import threading

import numpy as np

from benchmark.analyses.perturbations import noises, voice
from benchmark.analyses.perturbations.audio import read_mono
from benchmark.analyses.perturbations.conditions import (
    ROOM_TYPES,
    TYPES,
    ConditionError,
    PerturbationError,
    babble_pool,
    check_condition,
    draw_parameters,
)


def build_transform(
    kind: str,
    params: dict,
    signal: np.ndarray,
    sampling_rate: int,
    *,
    rng: np.random.Generator | None = None,
    babble_files=None,
    rir_files=None,
):
    r"""The auglib transform of one file.

    Args:
        kind: condition type, a key of :data:`TYPES`
        params: concrete parameters (:func:`draw_parameters`)
        signal: the mono signal ``(1, samples)`` it will be applied to
            (tone amplitude and crop bounds depend on it)
        sampling_rate: sampling rate of ``signal``
        rng: generator for the babble talkers and their start positions, and for the
            synthesized music and environmental sounds
        babble_files: sorted pool of babble source files
        rir_files: impulse response bank (reverb, mic-position)

    Raises:
        PerturbationError: if the signal is too short for a crop

    """
    import auglib

    t = auglib.transform
    length = signal.shape[-1]
    if kind == "tone":
        # peak SNR: the tone's amplitude is max|x| lowered by snr_db
        amplitude = float(np.max(np.abs(signal))) * 10 ** (-params["snr_db"] / 20) if length else 0.0
        if amplitude == 0:
            return t.GainStage(0.0)  # silence has no peak to relate a tone to: left as it is
        return t.Tone(params["frequency_hz"], gain_db=20 * math.log10(amplitude))
    if kind == "white-noise":
        return t.WhiteNoiseGaussian(snr_db=params["snr_db"])
    if kind == "babble":
        # arrays, not paths: pool files may differ in rate and channels (Mix needs both to match);
        # the transform is applied directly, never serialised by auglib.Augment, so arrays are fine
        return t.Mix(
            _babble(length, sampling_rate, int(params["speakers"]), rng, babble_files), snr_db=params["snr_db"]
        )
    if kind == "gain":
        return t.GainStage(params["gain_db"])
    if kind == "clip":
        if not length:
            raise PerturbationError("clip: empty audio (0 samples) has no level to clip at")
        return t.ClipByRatio(params["ratio"])
    if kind in ("prepend-zeros", "append-zeros"):
        cls = t.PrependValue if kind == "prepend-zeros" else t.AppendValue
        return cls(int(params["samples"]), value=0, unit="samples")
    if kind in ("crop-start", "crop-end"):
        n = int(params["samples"])
        if n >= length:
            raise PerturbationError(f"{kind}: cannot remove {n} samples from a signal of {length}")
        return t.Trim(start_pos=n, unit="samples") if kind == "crop-start" else t.Trim(end_pos=n, unit="samples")
    if kind in ("high-pass", "low-pass"):
        cls = t.HighPass if kind == "high-pass" else t.LowPass
        return cls(params["cutoff_hz"], order=int(params["order"]))
    if kind == "phone":
        args = {k: params[k] for k in ("codec_rate", "low_hz", "high_hz", "order", "mu", "bits")}
        return t.Function(telephone, args, preserve_level=True)
    if kind in ROOM_TYPES:
        # keep_tail=False: same length as the input; level kept so that only the room (and, for
        # mic-position, the direct-to-reverberant ratio) changes, not the loudness
        return t.FFTConvolve(str(rir_files[params["room"]]), keep_tail=False, preserve_level=True)
    if kind in ("music", "environmental"):
        noise = (noises.music if kind == "music" else noises.environmental)(length, sampling_rate, rng)
        return t.Mix(noise[np.newaxis], snr_db=params["snr_db"])
    if kind == "spectral-tilt":
        args = {"db_per_octave": params["tilt_db_per_octave"], "pivot_hz": params["pivot_hz"]}
        return t.Function(functools.partial(on_mono, voice.tilt), {**args, "low_hz": params["low_hz"]})
    if kind == "pitch-shift":
        return t.Function(functools.partial(on_mono, voice.pitch_shift), {"semitones": params["semitones"]})
    if kind == "formant-shift":
        return t.Function(functools.partial(on_mono, voice.formant_shift), {"ratio": params["factor"]})
    raise ConditionError(f"unknown type {kind!r}; use one of {', '.join(TYPES)}")


def on_mono(transform, signal, sampling_rate, **params) -> np.ndarray:
    r"""``transform`` (one of :mod:`~benchmark.analyses.perturbations.voice`) applied to an auglib signal.

    The voice transforms take ``(samples,)``; auglib hands ``(1, samples)``.

    Args:
        transform: e.g. :func:`~benchmark.analyses.perturbations.voice.pitch_shift`
        signal: ``(1, samples)`` or ``(samples,)``
        sampling_rate: its rate
        **params: the transform's own parameters

    Returns:
        float32 array of the input's shape

    Examples:
        >>> x = np.zeros((1, 4), dtype="float32")
        >>> on_mono(voice.pitch_shift, x, 16000, semitones=2).shape
        (1, 4)

    """
    x = np.asarray(signal, dtype="float32")
    return np.asarray(transform(x.reshape(-1), sampling_rate=sampling_rate, **params), dtype="float32").reshape(x.shape)


def telephone(signal, sampling_rate, codec_rate=8000, low_hz=300, high_hz=3400, order=2, mu=255, bits=8):
    r"""Narrow-band telephone channel: resample, band-pass, mu-law codec, resample back.

    Self-contained (imports inside) so that an ``auglib.transform.Function``
    holding it stays serialisable.

    Args:
        signal: ``(channels, samples)``
        sampling_rate: rate of ``signal``
        codec_rate: rate of the channel
        low_hz: lower band edge (Butterworth band-pass)
        high_hz: upper band edge
        order: band-pass order
        mu: mu-law constant
        bits: bits of the quantised companded signal (sign included)

    """
    import audresample
    import auglib
    import numpy as np

    length = signal.shape[-1]
    x = audresample.resample(signal.astype("float32"), sampling_rate, codec_rate)
    x = auglib.transform.BandPass(center=(low_hz + high_hz) / 2, bandwidth=high_hz - low_hz, order=int(order))(
        x, codec_rate
    )
    scale = max(float(np.max(np.abs(x))) if x.size else 0.0, 1.0)  # companding is defined on [-1, 1]
    x = x / scale
    levels = 2 ** (int(bits) - 1) - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * levels) / levels
    x = np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu * scale
    x = audresample.resample(x.astype("float32"), codec_rate, sampling_rate)
    if x.shape[-1] >= length:  # resampling may add or lose a sample
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


def _babble(length: int, sampling_rate: int, speakers: int, rng, babble_files) -> np.ndarray:
    r"""Sum of ``speakers`` talkers, each at 0 dB RMS, looped from a random start."""
    import auglib

    pool = list(babble_files or [])
    if not pool:
        raise ConditionError("babble needs source files (babble_files), none given")
    chosen = rng.choice(len(pool), size=speakers, replace=len(pool) < speakers)
    noise = np.zeros((1, length), dtype="float32")
    for index in chosen:
        source = _load_source(str(pool[int(index)]), sampling_rate)
        start = int(rng.integers(source.shape[1]))
        rms = float(np.sqrt(np.mean(source.astype("float64") ** 2)))
        gain_db = -20 * math.log10(rms) if rms > 0 else 0.0
        noise = auglib.transform.Mix(source, read_pos_aux=start, unit="samples", loop_aux=True, gain_aux_db=gain_db)(
            noise, sampling_rate
        )
    return noise


@functools.lru_cache(maxsize=64)
def _load_source(path: str, sampling_rate: int) -> np.ndarray:
    source = read_mono(path, sampling_rate)
    source.flags.writeable = False  # shared between threads and files: must never change
    return source


_RANDOM_LOCK = threading.Lock()


@contextlib.contextmanager
def _seeded(seed: int):
    r"""Seed auglib (and so numpy's and Python's global generators) for one file.

    auglib draws from process-global random state, so the seeding and the
    transform call hold a lock (threads would otherwise interleave draws),
    and the previous state is restored for the rest of the program.
    """
    import auglib
    from auglib.core import seed as auglib_seed

    with _RANDOM_LOCK:
        np_state, py_state, old = np.random.get_state(), random.getstate(), auglib_seed.get_seed()
        auglib.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
            auglib_seed.SEED = old


def perturb(
    signal: np.ndarray,
    sampling_rate: int,
    condition: dict,
    *,
    seed: int,
    babble_files=None,
    rir_files=None,
) -> np.ndarray:
    r"""Apply ``condition`` to a mono signal, deterministically for ``seed``.

    Args:
        signal: ``(samples,)`` or ``(1, samples)``
        sampling_rate: its rate
        condition: a condition dict
        seed: per-file seed (:func:`file_seed`)
        babble_files: pool of babble sources (type ``babble``)
        rir_files: impulse response bank (type ``reverb``, see :func:`rir_bank`)

    Returns:
        float32 ``(1, samples')``

    Examples:
        >>> x = np.full((1, 4), 0.5, dtype="float32")
        >>> cond = {"name": "g", "group": "x", "type": "append-zeros", "parameters": {"samples": 2}}
        >>> perturb(x, 16000, cond, seed=0).tolist()
        [[0.5, 0.5, 0.5, 0.5, 0.0, 0.0]]

    """
    condition = check_condition(condition)
    signal = np.atleast_2d(np.asarray(signal, dtype="float32"))
    if signal.shape[-1] == 0:  # nothing to perturb; auglib's clip, filters and mixers fail on it
        raise PerturbationError(f"{condition['type']}: empty audio (0 samples)")
    rng = np.random.default_rng(seed)
    params = draw_parameters(condition, rng)
    transform = build_transform(
        condition["type"],
        params,
        signal,
        sampling_rate,
        rng=rng,
        babble_files=babble_pool(babble_files),
        rir_files=rir_files,
    )
    with _seeded(seed):
        out = transform(signal.copy(), sampling_rate)
    return np.atleast_2d(np.asarray(out, dtype="float32"))
