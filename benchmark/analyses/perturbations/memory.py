"""Perturbed signals made in memory, file by file, where the model reads them.

A :class:`Perturber` gives a condition's signal of one file exactly as a
perturbed copy written by :func:`~benchmark.analyses.perturbations.materialize`
and read back would hold it: the same per-file seed (condition hash and the
file's path relative to the database root), the same 16 kHz mono float32
samples. So no copy of a split is written, and predictions are the same
bits either way.

Several models that share the conditions may keep the perturbed signals in
a bounded :class:`SignalCache` on disk instead of perturbing each file again.
"""

from __future__ import annotations

import os
import threading
import time
import typing
from pathlib import Path

import numpy as np

from benchmark.analyses.perturbations.audio import read_mono
from benchmark.analyses.perturbations.cache import condition_folder, file_key
from benchmark.analyses.perturbations.conditions import (
    ROOM_TYPES,
    SAMPLING_RATE,
    ConditionError,
    PerturbationError,
    check_condition,
    condition_hash,
    file_seed,
)
from benchmark.analyses.perturbations.rooms import rir_bank
from benchmark.analyses.perturbations.transforms import perturb
from benchmark.atomic import atomic_path
from benchmark.hashing import sha256_text
from benchmark.sources import SkipFile


class Unperturbable(SkipFile):
    r"""A file cannot be perturbed (unreadable, too short to crop …); the message is the skip reason."""


class SignalCache:
    r"""Perturbed signals on disk (``.npy``), at most ``max_mb`` megabytes in all.

    Least recently used entries go first, but only those no process of this
    run has used yet: a run walks the grid model after model, so plain LRU
    would evict every signal just before the next model asks for it. Once
    only this run's entries are left, new ones are not kept, and the kept
    share keeps paying for every further model.

    Examples:
        >>> import tempfile
        >>> cache = SignalCache(tempfile.mkdtemp(), max_mb=1)
        >>> cache.put("k", np.ones((1, 4), dtype="float32"))
        True
        >>> cache.get("k").tolist(), cache.get("other")
        ([[1.0, 1.0, 1.0, 1.0]], None)

    """

    def __init__(self, folder: str | os.PathLike, max_mb: float):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.started = time.time() - 1.0  # mtime resolution: an entry of this run is never older than this
        self._lock = threading.Lock()
        self._size = sum(p.stat().st_size for p in self.folder.glob("*.npy"))
        # once an eviction runs out of earlier runs' entries there are none left to find:
        # scanning the folder again at every put made a full cache quadratic in its entries
        self._evictable = True

    def path(self, key: str) -> Path:
        return self.folder / f"{sha256_text(key)[:32]}.npy"

    def get(self, key: str) -> np.ndarray | None:
        r"""The stored signal of ``key`` (its use recorded), or ``None``."""
        path = self.path(key)
        try:
            signal = np.load(path, allow_pickle=False)
            os.utime(path)
        except (OSError, ValueError):  # absent, or evicted by another process meanwhile
            return None
        return signal

    def put(self, key: str, signal: np.ndarray) -> bool:
        r"""Keep ``signal`` if it fits (after evicting entries of earlier runs); whether it was kept."""
        size = int(signal.nbytes) + 128  # .npy header
        with self._lock:
            if self._size + size > self.max_bytes and self._evictable:
                self._evict(self._size + size - self.max_bytes)
            if self._size + size > self.max_bytes:
                return False
            self._size += size
        path = self.path(key)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fp:
                np.save(fp, signal, allow_pickle=False)
        return True

    def _evict(self, need: int) -> None:
        entries = []
        for p in self.folder.glob("*.npy"):
            try:
                stat = p.stat()
            except OSError:
                continue
            if stat.st_mtime < self.started:
                entries.append((stat.st_mtime, stat.st_size, p))
        for _, size, p in sorted(entries):
            if need <= 0:
                break
            try:
                p.unlink()
            except OSError:
                continue
            self._size -= size
            need -= size
        if need > 0:
            self._evictable = False


class Perturber:
    r"""A condition's perturbed signals of a split's files, made on demand.

    Called with a file (the runner's signal source), it returns
    ``(1, samples)`` float32 at :attr:`sampling_rate`, or raises
    :class:`Unperturbable` with the reason the file is skipped.

    Args:
        condition: a condition dict
        root_key: cache sub-folder of the database (room impulse responses)
        seed: run seed
        babble_files: babble source pool (type ``babble``)
        root: database root (machine-independent file keys and seeds)
        sampling_rate: rate the audio is perturbed at
        cache: keep the signals here for the next model

    Raises:
        ConditionError: the condition is invalid, or babble has no sources

    """

    def __init__(
        self,
        condition: dict,
        *,
        root_key: str,
        seed: int,
        babble_files: typing.Sequence | None = None,
        root: str | os.PathLike | None = None,
        sampling_rate: int = SAMPLING_RATE,
        cache: SignalCache | None = None,
    ):
        self.condition = check_condition(condition)
        if self.condition["type"] == "babble" and (babble_files is None or len(babble_files) == 0):
            raise ConditionError(f"Condition '{self.condition['name']}' (babble) needs babble_files; none given.")
        self.babble_files = list(babble_files) if babble_files is not None else None
        self.digest = condition_hash(self.condition, seed=seed, sampling_rate=sampling_rate, babble_files=babble_files)
        self.root, self.sampling_rate, self.cache = root, int(sampling_rate), cache
        self.rirs = None
        if self.condition["type"] in ROOM_TYPES:
            folder = condition_folder(
                self.condition, root_key=root_key, seed=seed, sampling_rate=sampling_rate, babble_files=babble_files
            )
            self.rirs = rir_bank(folder, self.condition, seed=seed, sampling_rate=sampling_rate)

    def signal(self, file: str) -> np.ndarray:
        r"""The perturbed signal of ``file`` (no cache); raises as :func:`read_mono` and :func:`perturb` do."""
        return self._perturb(read_mono(file, self.sampling_rate), file)

    def _perturb(self, signal: np.ndarray, file: str) -> np.ndarray:
        out = perturb(
            signal,
            self.sampling_rate,
            self.condition,
            seed=file_seed(self.digest, file_key(file, self.root)),
            babble_files=self.babble_files,
            rir_files=self.rirs,
        )
        # the samples a float32 WAV copy holds and a reader returns: (channels, samples)
        return np.atleast_2d(np.asarray(out, dtype="<f4"))

    def __call__(self, file: str) -> np.ndarray:
        key = f"{self.digest}\0{file_key(file, self.root)}"
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        try:
            signal = read_mono(file, self.sampling_rate)
        except Exception as ex:  # unreadable or corrupt audio: a skip for this file, never the whole split
            raise Unperturbable(f"unreadable audio: {_first_line(ex)}") from ex
        try:
            signal = self._perturb(signal, file)
        except PerturbationError as ex:
            raise Unperturbable(str(ex)) from ex
        except ConditionError:
            raise  # the condition is wrong for every file, not this one
        except Exception as ex:
            raise Unperturbable(f"cannot perturb: {_first_line(ex)}") from ex
        if self.cache is not None:
            self.cache.put(key, signal)
        return signal


def _first_line(ex: BaseException) -> str:
    return f"{type(ex).__name__}: {str(ex).splitlines()[0][:160] if str(ex) else ''}"
