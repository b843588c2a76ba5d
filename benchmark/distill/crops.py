"""Training crops: seeded, augmented with auglib, rounded to their storage format."""

from __future__ import annotations

import dataclasses
import random
import typing

import numpy as np

from benchmark.distill.audio import SAMPLING_RATE, as_stored


@dataclasses.dataclass(frozen=True)
class Augmentation:
    r"""On-the-fly augmentation of the training crops (auglib).

    Each transform is applied independently with its probability;
    parameters are drawn uniformly from the ranges. Variant 0 of every
    file is always clean, so the student also sees the teacher's
    behaviour on undistorted speech (the benchmark's test condition).

    Gain is off by default: the students normalise every input to unit
    variance (:class:`benchmark.students.frontend.Normalize`), so they
    cannot see a gain change, while a teacher reading loudness features
    (eGeMAPS) changes its output. Gain augmentation would only add
    targets the student cannot learn.

    The *voice* transforms (:mod:`benchmark.analyses.perturbations.voice`)
    change the speaker rather than the scene: pitch (formants kept),
    formants / vocal-tract length (pitch kept), speed (tape-like), a
    spectral tilt and a recording channel (band-pass and soft clipping).
    They are off by default (probability 0): the committed models were
    distilled without them, and a re-distillation that shows they help
    has not been run. The teacher labels the transformed crop, so the
    target follows the audio the student hears. They draw from a
    generator of their own, so switching them on leaves every other
    random choice of a crop as it was.
    """

    noise_prob: float = 0.2
    babble_prob: float = 0.1
    gain_prob: float = 0.0
    filter_prob: float = 0.2
    snr_db: tuple[float, float] = (10.0, 30.0)
    babble_snr_db: tuple[float, float] = (10.0, 25.0)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    lowpass_hz: tuple[float, float] = (2500.0, 7000.0)
    highpass_hz: tuple[float, float] = (50.0, 400.0)
    pitch_prob: float = 0.0
    pitch_semitones: tuple[float, float] = (-4.0, 4.0)
    formant_prob: float = 0.0
    formant_ratio: tuple[float, float] = (0.85, 1.15)
    speed_prob: float = 0.0
    speed_factor: tuple[float, float] = (0.9, 1.1)
    tilt_prob: float = 0.0
    tilt_db_per_octave: tuple[float, float] = (-3.0, 3.0)
    channel_prob: float = 0.0
    channel_low_hz: tuple[float, float] = (50.0, 400.0)
    channel_high_hz: tuple[float, float] = (3000.0, 8000.0)
    channel_drive: tuple[float, float] = (0.0, 2.0)

    @classmethod
    def off(cls) -> Augmentation:
        r"""No augmentation at all (every variant is a clean crop)."""
        return cls(noise_prob=0.0, babble_prob=0.0, gain_prob=0.0, filter_prob=0.0)

    @property
    def voice(self) -> bool:
        r"""Whether any voice transform can apply.

        Examples:
            >>> Augmentation().voice, Augmentation(pitch_prob=0.5).voice
            (False, True)

        """
        return any(getattr(self, f"{name}_prob") > 0 for name in VOICE_TRANSFORMS)

    def record(self) -> dict:
        r"""The settings as a plain mapping; without the voice fields while all voice transforms are off.

        Cache keys and provenance records of runs without voice
        augmentation stay what they were before it existed.

        Examples:
            >>> "pitch_prob" in Augmentation().record(), "pitch_prob" in Augmentation(pitch_prob=0.5).record()
            (False, True)

        """
        out = dataclasses.asdict(self)
        if not self.voice:
            out = {k: v for k, v in out.items() if k.split("_")[0] not in VOICE_TRANSFORMS}
        return out


VOICE_TRANSFORMS = ("pitch", "formant", "speed", "tilt", "channel")
r"""The voice transforms of :class:`Augmentation`, in the order they are applied."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    r"""How training crops are cut and augmented; part of the cache key."""

    crop_seconds: float = 4.0
    bucket_seconds: float = 0.5
    variants: int = 3
    seed: int = 0
    augmentation: Augmentation = Augmentation()
    chunk_files: int = 64  # files per shard; babble sources come from the same shard

    def record(self) -> dict:
        r"""The recipe as a plain mapping (cache key, provenance): :meth:`Augmentation.record` for its augmentation."""
        return {**dataclasses.asdict(self), "augmentation": self.augmentation.record()}

    @property
    def bucket_samples(self) -> int:
        return max(1, int(round(self.bucket_seconds * SAMPLING_RATE)))

    @property
    def crop_samples(self) -> int:
        r"""Longest crop in samples (a multiple of :attr:`bucket_samples`)."""
        b = self.bucket_samples
        return max(b, int(round(self.crop_seconds * SAMPLING_RATE)) // b * b)

    def crop_length(self, samples: int) -> int:
        r"""Length of the crops of a file with ``samples`` samples.

        Examples:
            >>> r = Recipe(crop_seconds=4.0, bucket_seconds=0.5)
            >>> [r.crop_length(n) / 16000 for n in (4000, 24000, 30000, 100000)]
            [0.5, 1.5, 1.5, 4.0]

        """
        b = self.bucket_samples
        return max(b, min(samples, self.crop_samples) // b * b)


def make_crop(
    signal: np.ndarray,
    file_hash: str,
    variant: int,
    recipe: Recipe,
    babble: typing.Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, dict]:
    r"""The seeded, augmented crop ``variant`` of one file.

    Everything random is drawn from a generator seeded by
    ``(seed, variant, file hash)``, so the crop does not depend on the
    order files are processed in. Its length is
    :meth:`Recipe.crop_length`; only a file shorter than one bucket is
    repeated to fill it (never zero-padded: padding would change the
    statistics the teacher measures).

    Returns:
        the float32 crop (already rounded by :func:`as_stored`) and a
        description of what was done (offset, transforms)

    """
    rng = np.random.default_rng([recipe.seed, variant, int(file_hash[:15], 16)])
    n = recipe.crop_length(len(signal))
    offset = int(rng.integers(0, max(0, len(signal) - n) + 1))
    crop = np.resize(signal[offset : offset + n], n).astype(np.float32)  # np.resize repeats
    info: dict = {"offset": offset, "transforms": []}
    voice_names: list[str] = []
    if variant > 0 and recipe.augmentation.voice:
        # a generator of its own: the draws below stay those of a run without voice transforms
        voice_rng = np.random.default_rng([recipe.seed, variant, int(file_hash[:15], 16), VOICE_STREAM])
        crop, voice_names = augment_voice(signal, offset, n, voice_rng, recipe.augmentation)
    if variant > 0:
        crop, info["transforms"] = augment(crop, rng, recipe.augmentation, babble)
        info["transforms"] = voice_names + info["transforms"]
    return as_stored(crop), info


VOICE_STREAM = 34
r"""Last word of the seed of the voice transforms' generator (``(seed, variant, file hash, VOICE_STREAM)``)."""


def augment_voice(
    signal: np.ndarray, offset: int, n: int, rng: np.random.Generator, aug: Augmentation
) -> tuple[np.ndarray, list[str]]:
    r"""The crop of ``n`` samples at ``offset`` with the voice transforms of ``aug`` that ``rng`` draws.

    Speed changes the length, so a sped-up crop is cut from a longer (a
    slowed one from a shorter) stretch of ``signal`` at the same offset;
    the result has ``n`` samples whatever applies.

    Examples:
        >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
        >>> out, names = augment_voice(x, 0, 8000, np.random.default_rng(0), Augmentation(pitch_prob=1.0))
        >>> out.shape, names
        ((8000,), ['pitch +3.3st'])

    """
    from benchmark import voice

    u = rng.random(len(VOICE_TRANSFORMS))
    semitones = rng.uniform(*aug.pitch_semitones)
    ratio = rng.uniform(*aug.formant_ratio)
    factor = rng.uniform(*aug.speed_factor)
    slope = rng.uniform(*aug.tilt_db_per_octave)
    low, high, drive = (
        rng.uniform(*aug.channel_low_hz),
        rng.uniform(*aug.channel_high_hz),
        rng.uniform(*aug.channel_drive),
    )
    names = []
    if u[2] < aug.speed_prob:
        source = int(np.ceil(n * factor))
        crop = voice.speed(np.resize(signal[offset : offset + source], source), factor)
        crop = np.resize(crop, n)
        names.append(f"speed x{factor:.3f}")
    else:
        crop = np.resize(signal[offset : offset + n], n)
    crop = crop.astype(np.float32)
    if u[0] < aug.pitch_prob:
        crop = voice.pitch_shift(crop, semitones)
        names.append(f"pitch {semitones:+.1f}st")
    if u[1] < aug.formant_prob:
        crop = voice.formant_shift(crop, ratio)
        names.append(f"formant x{ratio:.3f}")
    if u[3] < aug.tilt_prob:
        crop = voice.tilt(crop, slope)
        names.append(f"tilt {slope:+.1f}dB/oct")
    if u[4] < aug.channel_prob:
        crop = voice.channel(crop, low, high, drive)
        names.append(f"channel {low:.0f}-{high:.0f}Hz drive {drive:.2f}")
    return np.nan_to_num(crop).astype(np.float32), names


def augment(
    crop: np.ndarray, rng: np.random.Generator, aug: Augmentation, babble: typing.Sequence[np.ndarray] = ()
) -> tuple[np.ndarray, list[str]]:
    r"""Apply the transforms of ``aug`` that ``rng`` draws to one crop (auglib).

    Args:
        crop: float32 signal at 16 kHz
        rng: the crop's generator: it decides which transforms apply and
            their parameters, and seeds auglib's own noise
        aug: probabilities and parameter ranges
        babble: signals to mix as babble (at least 2 are needed)

    Returns:
        the transformed crop (same length; ``crop`` itself is left
        unchanged) and a description of each transform applied

    Examples:
        >>> crop = np.sin(np.arange(8000) / 10).astype(np.float32)
        >>> out, names = augment(crop, np.random.default_rng(0), Augmentation(noise_prob=1.0, filter_prob=0.0))
        >>> names
        ['white-noise snr=26.3dB']
        >>> out.shape, bool(np.any(out != crop))
        ((8000,), True)

    """
    import auglib  # slow to import (seconds); the command line imports this module

    # Draw every decision up front from our own generator: the draws do
    # not depend on which transforms are enabled by earlier draws.
    u = rng.random(4)
    snr = rng.uniform(*aug.snr_db)
    babble_snr = rng.uniform(*aug.babble_snr_db)
    gain = rng.uniform(*aug.gain_db)
    pink = bool(rng.random() < 0.5)
    lowpass = bool(rng.random() < 0.5)
    cutoff = rng.uniform(*aug.lowpass_hz) if lowpass else rng.uniform(*aug.highpass_hz)
    n_speakers = int(rng.integers(3, 7))
    pick = rng.permutation(len(babble))[:n_speakers] if len(babble) else []
    auglib_seed = int(rng.integers(0, 2**31 - 1))

    transforms, names = [], []
    if u[0] < aug.noise_prob:
        noise = auglib.transform.PinkNoise if pink else auglib.transform.WhiteNoiseGaussian
        transforms.append(noise(snr_db=snr))
        names.append(f"{'pink' if pink else 'white'}-noise snr={snr:.1f}dB")
    if u[1] < aug.babble_prob and len(pick) >= 2:
        transforms.append(
            auglib.transform.BabbleNoise([babble[i] for i in pick], num_speakers=len(pick), snr_db=babble_snr)
        )
        names.append(f"babble x{len(pick)} snr={babble_snr:.1f}dB")
    if u[3] < aug.filter_prob:
        f = auglib.transform.LowPass if lowpass else auglib.transform.HighPass
        transforms.append(f(cutoff, order=2))
        names.append(f"{'lowpass' if lowpass else 'highpass'} {cutoff:.0f}Hz")
    if u[2] < aug.gain_prob:
        transforms.append(auglib.transform.GainStage(gain, clip=True))
        names.append(f"gain {gain:+.1f}dB")
    if not transforms or not np.any(crop):
        return crop, names
    # auglib draws noise from the global numpy/python generators: seed them
    # per crop and restore them afterwards, so nothing else is disturbed.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        auglib.seed(auglib_seed)
        # auglib transforms its input in place: give it a copy, the caller's crop stays clean
        out = auglib.transform.Compose(transforms)(crop[np.newaxis].copy(), SAMPLING_RATE)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    out = np.asarray(out, dtype=np.float32).reshape(-1)[: len(crop)]
    return np.nan_to_num(out), names
