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
import json
import os
import shutil
import typing
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmark import DIMENSIONS, atomic_path, cache_dir, numerics, sha256_file, sha256_text
from benchmark.distill.audio import (
    SAMPLING_RATE,
    AudioFiles,
    DataError,
    Pool,
    read_audio,
)
from benchmark.distill.config import TARGET_RANGE
from benchmark.distill.crops import Recipe, make_crop

FORMAT_VERSION = 3
r"""Version of the crop/augmentation recipe; bump it to invalidate cached shards."""


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
    import auglib  # slow to import (seconds); the command line imports this module

    payload = {
        "format": FORMAT_VERSION,
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "files_sha256": pool.sha256,
        "recipe": recipe.record(),
        "auglib": auglib.__version__,
        "numpy": np.__version__.split(".")[0],
        "numerics": numerics.current(),  # the teacher's numpy kernels set its last bits
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
    (tmp / "done.json").write_text(
        json.dumps(
            {
                "records": meta,
                "skipped": [{"file_sha256": _hash_of(pool, f), "file": f, "reason": r} for f, r in skipped],
            },
            indent=1,
        )
    )
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
    key = sha256_text(
        json.dumps(
            {
                "format": FORMAT_VERSION,
                "teacher_sha256": teacher.artifact_hash,
                "files": readable_hashes,
                "numerics": numerics.current(),
            }
        )
    )
    path = teacher_folder(teacher) / "files" / f"{label}-{key[:20]}.npy"
    calls = 0
    if path.exists():
        values = np.load(path)
    else:
        values, calls = run_teacher(teacher, signals, [f"file {f}" for f in readable], batch_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npy") as tmp:  # np.save would add .npy to any other name
            np.save(tmp, values.astype(np.float32))
    targets = pd.DataFrame(values.astype(np.float64), index=pd.Index(readable, name="file"), columns=list(DIMENSIONS))
    return targets, signals, skipped, calls


def _progress(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="crop", disable=not enabled, dynamic_ncols=True, leave=False)
