"""Teacher annotation: the audio a student trains on, and the teacher's A/D/V for it.

Distillation uses no human labels: the targets are the teacher's
outputs. The teacher is run on *exactly* the audio the student sees:
a seeded random crop of a training file, augmented with auglib
(additive noise or babble from the pool at a random SNR, gain,
filtering), rounded to float16 (the storage format) *before* the
teacher hears it.

Crops are as long as the file, up to ``crop_seconds``, cut down to a
multiple of ``bucket_seconds`` (files are never padded): the benchmark
scores whole files, and an utterance-level teacher such as eGeMAPS
gives a different answer on 2 s of a 4 s file than on all of it. Crops
of equal length are batched together (:mod:`benchmark.distill.train`).

Running the teacher is the expensive part on a CPU, so each file gets
``variants`` pre-computed augmented crops (file ``i`` uses variant
``(e + i) % variants`` in epoch ``e``) and the result is cached on disk as a set of
shards (``audio.npy`` float16, ``targets.npy`` float32) under
``cache_dir('distill', 'teacher', <teacher>-<hash>, <key>)``. The key
covers the teacher artifact hash, the audio files' content hashes, the
crop and augmentation recipe and the seed: a re-run, or the next
student distilled from the same teacher, never runs the teacher again.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import random
import shutil
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import DIMENSIONS
from benchmark.hashing import sha256_file, sha256_text
from benchmark.paths import cache_dir

SAMPLING_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
LIST_EXTENSIONS = (".txt", ".lst", ".csv")
FORMAT_VERSION = 3
r"""Version of the crop/augmentation recipe; bump it to invalidate cached shards."""


TARGET_RANGE = (-0.5, 1.5)
r"""Plausible teacher outputs on the 0..1 scale, with a margin of half the scale.

A regression teacher can fail without returning NaN: one near-zero
denominator in a feature (e.g. a coefficient of variation) sends its
output to -150. Such targets would dominate the CCC of any batch they
are in, so crops whose target leaves this range are not trained on
(and held-out files with such targets are not scored); they are
counted in the provenance record.
"""


def in_range(targets: np.ndarray, target_range: tuple[float, float] = TARGET_RANGE) -> np.ndarray:
    r"""Per row, whether every finite target lies within ``target_range``.

    Examples:
        >>> in_range(np.array([[0.2, 0.9, np.nan], [0.1, -3.0, 0.5]])).tolist()
        [True, False]

    """
    lo, hi = target_range
    t = np.asarray(targets, dtype=np.float64)
    ok = np.isnan(t) | ((t >= lo) & (t <= hi))
    return ok.all(axis=1)


class TeacherError(RuntimeError):
    r"""The teacher produced an unusable target (NaN, wrong shape)."""


class DataError(ValueError):
    r"""The training data cannot be found or is empty."""


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

    @classmethod
    def off(cls) -> "Augmentation":
        r"""No augmentation at all (every variant is a clean crop)."""
        return cls(noise_prob=0.0, babble_prob=0.0, gain_prob=0.0, filter_prob=0.0)


@dataclasses.dataclass(frozen=True)
class Recipe:
    r"""How training crops are cut and augmented; part of the cache key."""

    crop_seconds: float = 4.0
    bucket_seconds: float = 0.5
    variants: int = 3
    seed: int = 0
    augmentation: Augmentation = Augmentation()
    chunk_files: int = 64  # files per shard; babble sources come from the same shard

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


@dataclasses.dataclass
class Pool:
    r"""Audio files of the unlabeled training pool, deduplicated by content.

    Attributes:
        files: absolute paths, sorted by content hash (so the order does
            not depend on where the files live or how they were listed)
        hashes: SHA-256 of each file's bytes
        missing: ``(path, reason)`` for listed files that do not exist
        duplicates: number of files dropped because their bytes repeat another

    """

    files: list[str]
    hashes: list[str]
    missing: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    duplicates: int = 0

    @property
    def sha256(self) -> str:
        r"""Hash of the pool's content (the sorted file hashes)."""
        return sha256_text("\n".join(self.hashes))

    def split(self, fraction: float, minimum: int = 2) -> tuple["Pool", "Pool"]:
        r"""Split into (train, held-out) deterministically by content hash.

        The held-out part does not depend on the seed, so runs with
        different seeds are validated on the same files.

        Examples:
            >>> p = Pool([f"f{i}" for i in range(10)], [f"{i:02d}" for i in range(10)])
            >>> train, held = p.split(0.2)
            >>> len(train.files), held.files
            (8, ['f0', 'f1'])

        """
        n = len(self.files)
        k = 0 if fraction <= 0 or n < 2 * minimum else min(n - minimum, max(minimum, int(round(fraction * n))))
        # files are sorted by their own hash: the first k are a pseudo-random, content-defined subset
        held = Pool(self.files[:k], self.hashes[:k])
        train = Pool(self.files[k:], self.hashes[k:], self.missing, self.duplicates)
        return train, held


@dataclasses.dataclass
class Shards:
    r"""Cached training crops and their teacher targets.

    Attributes:
        folder: the shard set's cache folder
        audio: one float16 array per shard, its crops one after the other (memory-mapped)
        shard: record → index into :attr:`audio`
        start: record → first sample of its crop in its shard's array
        length: record → crop length in samples
        targets: teacher A/D/V per record, ``(records, 3)`` float32
        file_index: record → index into :attr:`files`
        variant: record → augmentation variant
        files: training files (content order) that were readable
        skipped: ``(path, reason)`` for files that could not be read
        teacher_calls: ``predict_batch`` calls made while building (0 on a cache hit)

    """

    folder: Path
    audio: list[np.ndarray]
    shard: np.ndarray
    start: np.ndarray
    length: np.ndarray
    targets: np.ndarray
    file_index: np.ndarray
    variant: np.ndarray
    files: list[str]
    skipped: list[tuple[str, str]]
    teacher_calls: int = 0

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def variants(self) -> int:
        return int(self.variant.max()) + 1 if len(self.variant) else 0

    def records(self, epoch: int) -> np.ndarray:
        r"""Indices of the records of one epoch: one variant of every file.

        File ``i`` contributes variant ``(epoch + i) % variants``, so every
        epoch mixes clean and augmented crops in the same proportion and
        every file cycles through all its variants. (One variant for all
        files per epoch would shift the input statistics from epoch to
        epoch, and with them BatchNorm's running averages.)
        """
        return np.flatnonzero(self.variant == (epoch + self.file_index) % max(1, self.variants))

    def batch(self, indices: typing.Sequence[int]) -> np.ndarray:
        r"""Crops of records of equal length as float32 ``(len(indices), length)``."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = set(self.length[indices].tolist())
        if len(lengths) != 1:
            raise ValueError(f"A batch needs crops of one length, got {sorted(lengths)}.")
        out = np.empty((len(indices), lengths.pop()), dtype=np.float32)
        for i, r in enumerate(indices):
            out[i] = self.audio[self.shard[r]][self.start[r] : self.start[r] + self.length[r]]
        return out


def resolve_files(data: str, demo_database: str = "demo-pool", option: str = "--data") -> tuple[list[str], str]:
    r"""Audio files named by ``data``, and a short description of the source.

    ``data`` is ``'demo'`` (the embedded unlabeled demo database
    ``demo_database``), a folder (searched recursively for audio files), a
    single audio file, a list file (``.txt``/``.lst``/``.csv``: one path
    per line, relative to the list file, ``#`` comments allowed; a CSV
    uses its first column), or a glob pattern (``'data/**/*.wav'``).
    ``option`` names the setting in the error for a spec that finds no audio.
    """
    if data == "demo":
        from benchmark.data import demo

        return [str(f) for f in demo.pool_files(demo_database)], f"demo ({demo_database} {demo.DEMO_VERSION})"
    path = Path(os.path.expanduser(data))
    if path.is_dir():
        files = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        return files, f"folder {path}"
    if path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        return _read_list(path), f"list {path}"
    if path.is_file():
        return [str(path.resolve())], f"file {path}"
    files = sorted(str(Path(p).resolve()) for p in glob.glob(os.path.expanduser(data), recursive=True))
    files = [f for f in files if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
    if not files:
        raise DataError(
            f"No audio found for {option} '{data}': give 'demo', a folder, an audio file, a list file "
            f"({', '.join(LIST_EXTENSIONS)}; one path per line) or a glob pattern such as 'audio/**/*.wav'."
        )
    return files, f"glob {data}"


def _read_list(path: Path) -> list[str]:
    files = []
    for i, line in enumerate(path.read_text().splitlines()):
        line = line.strip()
        if path.suffix.lower() == ".csv":
            line = line.split(",")[0].strip().strip('"')
            if i == 0 and Path(line).suffix.lower() not in AUDIO_EXTENSIONS:
                continue  # a header row
        if not line or line.startswith("#"):
            continue
        p = Path(os.path.expanduser(line))
        files.append(str((p if p.is_absolute() else path.parent / p).resolve()))
    return files


def scan_pool(files: typing.Sequence[str]) -> Pool:
    r"""Hash the files' bytes; missing files are reported, duplicates dropped."""
    by_hash: dict[str, str] = {}
    missing = []
    for f in files:
        try:
            digest = sha256_file(f)
        except OSError as ex:
            missing.append((str(f), f"cannot open: {ex.strerror or ex}"))
            continue
        by_hash.setdefault(digest, str(f))
    hashes = sorted(by_hash)
    return Pool([by_hash[h] for h in hashes], hashes, missing, len(files) - len(missing) - len(hashes))


def read_audio(path: str) -> np.ndarray:
    r"""Read a file as mono float32 at 16 kHz (channels averaged).

    Raises:
        RuntimeError: if the file cannot be decoded or holds no samples

    """
    import audiofile
    import audresample

    try:
        signal, sampling_rate = audiofile.read(path, always_2d=True, dtype="float32")
    except Exception as ex:  # soundfile/ffmpeg raise many types for broken files
        raise RuntimeError(f"cannot decode: {type(ex).__name__}: {ex}") from None
    if signal.size == 0:
        raise RuntimeError("no samples")
    signal = signal.mean(axis=0, keepdims=True)
    if sampling_rate != SAMPLING_RATE:
        signal = audresample.resample(signal, sampling_rate, SAMPLING_RATE)
    signal = np.ascontiguousarray(signal[0], dtype=np.float32)
    if not np.isfinite(signal).all():
        raise RuntimeError("samples are not finite")
    return signal


class AudioFiles(typing.Sequence[np.ndarray]):
    r"""Audio files as a sequence of signals, each read (:func:`read_audio`) when it is indexed.

    Whole files are read one at a time where they are used, not held: the
    refit's 4,000 files of a user's own pool may be hours of audio.
    Slicing and ``+`` give :class:`AudioFiles` again; nothing is read until
    a signal is indexed.

    Args:
        files: paths of files that :func:`read_audio` could read

    Examples:
        >>> files = AudioFiles(["a.wav", "b.wav"]) + AudioFiles(["c.wav"])
        >>> len(files), files[1:].files
        (3, ['b.wav', 'c.wav'])

    """

    def __init__(self, files: typing.Iterable[str]):
        self.files = [str(f) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    @typing.overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @typing.overload
    def __getitem__(self, index: slice) -> AudioFiles: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return AudioFiles(self.files[index])
        path = self.files[index]
        try:
            return read_audio(path)
        except RuntimeError as ex:
            raise DataError(f"{path}: {ex}. It was read when the run started: was it changed "
                            "or removed since? Restore it, or run again to leave it out.") from None

    def __add__(self, other: AudioFiles) -> AudioFiles:
        return AudioFiles(self.files + other.files)

    def __repr__(self) -> str:
        return f"AudioFiles({len(self.files)} files)"


def as_stored(signal: np.ndarray) -> np.ndarray:
    r"""Round a crop to float16 and back: what is stored is what the teacher hears.

    Examples:
        >>> as_stored(np.array([0.1], dtype=np.float32)).tolist()
        [0.0999755859375]

    """
    return np.clip(signal, -65504.0, 65504.0).astype(np.float16).astype(np.float32)


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
    if variant > 0:
        crop, info["transforms"] = augment(crop, rng, recipe.augmentation, babble)
    return as_stored(crop), info


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
    import auglib

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
        transforms.append(auglib.transform.BabbleNoise([babble[i] for i in pick], num_speakers=len(pick), snr_db=babble_snr))
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


def teacher_dimensions(teacher) -> tuple[str, ...]:
    r"""Dimensions the teacher predicts (registry ``outputs``; default all three)."""
    return tuple(getattr(teacher, "dimensions", None) or DIMENSIONS)


def run_teacher(
    teacher,
    signals: typing.Sequence[np.ndarray],
    names: typing.Sequence[str],
    batch_size: int = 64,
) -> tuple[np.ndarray, int]:
    r"""Batched teacher inference with a NaN check.

    Args:
        teacher: a :class:`benchmark.models.base.Predictor`
        signals: mono 16 kHz float32 signals
        names: what to call each signal in an error message (file, crop)
        batch_size: signals per ``predict_batch`` call

    Returns:
        targets ``(len(signals), 3)`` float32 and the number of
        ``predict_batch`` calls

    Raises:
        TeacherError: if the teacher returns a wrong shape or NaN for a
            dimension it predicts

    """
    dims = [DIMENSIONS.index(d) for d in teacher_dimensions(teacher)]
    out = np.full((len(signals), len(DIMENSIONS)), np.nan, dtype=np.float32)
    calls = 0
    for start in range(0, len(signals), batch_size):
        batch = list(signals[start : start + batch_size])
        pred = np.asarray(teacher.predict_batch(batch), dtype=np.float64)
        calls += 1
        if pred.shape != (len(batch), len(DIMENSIONS)):
            raise TeacherError(
                f"Teacher '{teacher.name}' returned shape {pred.shape} for {len(batch)} signals; "
                f"expected ({len(batch)}, 3) for {DIMENSIONS}."
            )
        bad = ~np.isfinite(pred[:, dims]).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            missing = [DIMENSIONS[d] for d in dims if not np.isfinite(pred[i, d])]
            raise TeacherError(
                f"Teacher '{teacher.name}' returned NaN ({', '.join(missing)}) for {names[start + i]} "
                f"({int(bad.sum())} of {len(batch)} signals in this batch). Distillation needs a finite "
                "target for every crop: check the teacher on this file, or remove the file from the "
                "training data."
            )
        out[start : start + len(batch)] = pred
    return out, calls


def shard_key(teacher, pool: Pool, recipe: Recipe) -> str:
    r"""Cache key of a shard set: teacher artifact, audio content, recipe, library versions."""
    import auglib

    payload = {
        "format": FORMAT_VERSION,
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "files_sha256": pool.sha256,
        "recipe": dataclasses.asdict(recipe),
        "auglib": auglib.__version__,
        "numpy": np.__version__.split(".")[0],
    }
    return sha256_text(json.dumps(payload, sort_keys=True))


def teacher_folder(teacher) -> Path:
    r"""Cache folder of one teacher artifact."""
    return cache_dir("distill", "teacher", f"{teacher.name}-{teacher.artifact_hash[:12]}")


def annotate_pool(
    teacher,
    pool: Pool,
    recipe: Recipe,
    *,
    batch_size: int = 64,
    progress: bool = True,
) -> Shards:
    r"""Build (or load from the cache) the training crops and teacher targets.

    Work is done shard by shard (``recipe.chunk_files`` files each) and
    each finished shard is written atomically, so an interrupted
    annotation resumes at the first missing shard.

    Raises:
        TeacherError: if the teacher returns NaN (names the file)
        DataError: if no file of the pool can be read

    """
    folder = teacher_folder(teacher) / shard_key(teacher, pool, recipe)[:20]
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [
        list(range(i, min(i + recipe.chunk_files, len(pool.files))))
        for i in range(0, len(pool.files), recipe.chunk_files)
    ]
    calls = 0
    todo = [i for i in range(len(chunks)) if not (folder / f"shard-{i:05d}" / "done.json").exists()]
    bar = _progress(sum(len(chunks[i]) for i in todo) * recipe.variants, "teacher", progress) if todo else None
    for i in todo:
        calls += _annotate_chunk(teacher, pool, chunks[i], recipe, folder / f"shard-{i:05d}", batch_size, bar)
    if bar is not None:
        bar.close()
    return _load_shards(folder, pool, len(chunks), calls)


def _annotate_chunk(teacher, pool: Pool, chunk: list[int], recipe: Recipe, out: Path, batch_size: int, bar) -> int:
    signals, skipped = {}, []
    for j in chunk:
        try:
            signals[j] = read_audio(pool.files[j])
        except RuntimeError as ex:
            skipped.append((pool.files[j], str(ex)))
    crops, targets, meta, names = [], [], [], []
    for j, signal in signals.items():
        others = [s for k, s in signals.items() if k != j]
        for v in range(recipe.variants):
            crop, info = make_crop(signal, pool.hashes[j], v, recipe, babble=others)
            crops.append(crop)
            meta.append({"file_sha256": pool.hashes[j], "variant": v, **info})
            names.append(f"file {pool.files[j]} (variant {v}, crop at {info['offset'] / SAMPLING_RATE:.2f} s)")
    calls = 0
    if crops:
        targets, calls = run_teacher(teacher, crops, names, batch_size)
    else:
        targets = np.zeros((0, len(DIMENSIONS)), dtype=np.float32)
    if bar is not None:
        bar.update(len(chunk) * recipe.variants)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = 0
    for record, crop in zip(meta, crops):
        record.update(start=start, length=len(crop))
        start += len(crop)
    flat = np.concatenate(crops).astype(np.float16) if crops else np.zeros(0, np.float16)
    np.save(tmp / "audio.npy", flat)
    np.save(tmp / "targets.npy", targets.astype(np.float32))
    (tmp / "done.json").write_text(json.dumps(
        {"records": meta, "skipped": [{"file_sha256": _hash_of(pool, f), "file": f, "reason": r} for f, r in skipped]},
        indent=1,
    ))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return calls


def _hash_of(pool: Pool, file: str) -> str:
    return pool.hashes[pool.files.index(file)]


def _load_shards(folder: Path, pool: Pool, n_chunks: int, calls: int) -> Shards:
    where = dict(zip(pool.hashes, range(len(pool.files))))
    audio, shard_of, start, length, targets, file_index, variant, skipped = [], [], [], [], [], [], [], []
    for i in range(n_chunks):
        shard = folder / f"shard-{i:05d}"
        meta = json.loads((shard / "done.json").read_text())
        audio.append(np.load(shard / "audio.npy", mmap_mode="r"))
        targets.append(np.load(shard / "targets.npy"))
        shard_of += [i] * len(meta["records"])
        start += [r["start"] for r in meta["records"]]
        length += [r["length"] for r in meta["records"]]
        file_index += [where[r["file_sha256"]] for r in meta["records"]]
        variant += [r["variant"] for r in meta["records"]]
        # report the current path of a skipped file (the cache is keyed by content)
        skipped += [(pool.files[where[s["file_sha256"]]], s["reason"]) for s in meta["skipped"]]
    used = sorted(set(file_index))
    remap = {old: new for new, old in enumerate(used)}
    if not used:
        reasons = "; ".join(f"{f}: {r}" for f, r in skipped[:5])
        raise DataError(f"None of the {len(pool.files)} training files could be read ({reasons}).")
    return Shards(
        folder=folder,
        audio=audio,
        shard=np.array(shard_of, dtype=np.int64),
        start=np.array(start, dtype=np.int64),
        length=np.array(length, dtype=np.int64),
        targets=np.concatenate(targets).astype(np.float32),
        file_index=np.array([remap[i] for i in file_index], dtype=np.int64),
        variant=np.array(variant, dtype=np.int64),
        files=[pool.files[i] for i in used],
        skipped=skipped,
        teacher_calls=calls,
    )


def annotate_files(
    teacher,
    files: typing.Sequence[str],
    hashes: typing.Sequence[str] | None = None,
    *,
    batch_size: int = 16,
    label: str = "files",
) -> tuple[pd.DataFrame, AudioFiles, list[tuple[str, str]], int]:
    r"""Teacher A/D/V on whole, clean files (validation), cached by content.

    Every file is read to find the readable ones, and not kept: the
    signals come back as :class:`AudioFiles`, read again where they are used.

    Returns:
        targets (index: the readable files, columns: dimensions),
        the readable files' signals (in the order of the targets), skipped
        ``(file, reason)`` pairs, and the number of teacher calls (0 on a
        cache hit)

    """
    hashes = list(hashes) if hashes is not None else [sha256_file(f) for f in files]
    readable, readable_hashes, skipped = [], [], []
    for f, h in zip(files, hashes):
        try:
            read_audio(f)
        except RuntimeError as ex:
            skipped.append((f, str(ex)))
        else:
            readable.append(f)
            readable_hashes.append(h)
    signals = AudioFiles(readable)
    key = sha256_text(json.dumps({
        "format": FORMAT_VERSION,
        "teacher_sha256": teacher.artifact_hash,
        "files": readable_hashes,
    }))
    path = teacher_folder(teacher) / "files" / f"{label}-{key[:20]}.npy"
    calls = 0
    if path.exists():
        values = np.load(path)
    else:
        values, calls = run_teacher(teacher, signals, [f"file {f}" for f in readable], batch_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, values.astype(np.float32))
        os.replace(tmp, path)
    targets = pd.DataFrame(values.astype(np.float64), index=pd.Index(readable, name="file"), columns=list(DIMENSIONS))
    return targets, signals, skipped, calls


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="crop", disable=not enabled, dynamic_ncols=True, leave=False)
