"""Materializing perturbed copies of an evaluation split in the cache, reused by every model."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import typing
from pathlib import Path

import pandas as pd

from benchmark.analyses.perturbations.audio import read_mono, write_wav
from benchmark.analyses.perturbations.conditions import (
    ROOM_TYPES,
    SAMPLING_RATE,
    ConditionError,
    PerturbationError,
    babble_pool,
    check_condition,
    condition_hash,
    file_seed,
)
from benchmark.analyses.perturbations.rooms import rir_bank
from benchmark.analyses.perturbations.transforms import perturb
from benchmark.hashing import sha256_text
from benchmark.paths import cache_dir, check_name

logger = logging.getLogger(__name__)


def file_key(file: str, root: str | os.PathLike | None = None) -> str:
    r"""Machine-independent name of a file: its path relative to ``root``.

    Outside ``root`` (or without one) a hash of the absolute path keeps
    names unique; perturbations then depend on where the file lives.

    Examples:
        >>> file_key("/db/wav/a.wav", "/db")
        'wav/a.wav'

    """
    if root is not None:
        rel = os.path.relpath(os.path.abspath(file), os.path.abspath(root))
        if not rel.startswith(".."):
            return Path(rel).as_posix()
    return f"{sha256_text(os.path.abspath(file))[:12]}-{os.path.basename(file)}"


def condition_folder(
    condition: dict, *, root_key: str, seed: int, sampling_rate: int = SAMPLING_RATE, babble_files=None
) -> Path:
    r"""Cache folder of a condition's perturbed files."""
    check_name(root_key, "dataset")
    check_name(condition["name"], "condition")
    digest = condition_hash(condition, seed=seed, sampling_rate=sampling_rate, babble_files=babble_files)
    return cache_dir("perturbed", root_key, f"{condition['name']}-{digest[:8]}")


def materialize(
    evalset_files: pd.Index,
    condition: dict,
    *,
    root_key: str,
    seed: int,
    babble_files: pd.Index | None = None,
    root: str | os.PathLike | None = None,
    sampling_rate: int = SAMPLING_RATE,
    workers: int = 2,
) -> pd.Series:
    r"""Perturbed copies of ``evalset_files`` under ``condition``, cached.

    Files land in ``cache_dir('perturbed', root_key, NAME-HASH)`` (hash of
    the condition spec and seed, :func:`condition_hash`) under their path
    relative to ``root``. Existing files are reused, so a second model
    costs nothing; each file is written atomically, so an interrupted run
    leaves no truncated file.

    Args:
        evalset_files: original audio files
        condition: a condition dict (:func:`load_conditions`)
        root_key: cache sub-folder of the database, e.g. ``'demo-iemocap-1.0.0'``
        seed: run seed; each file's seed derives from it, the condition and
            the file's key (:func:`file_seed`), not from the file order
        babble_files: babble source pool (speakers disjoint from the test set)
        root: database root; gives machine-independent keys (:func:`file_key`)
        sampling_rate: rate of the perturbed files
        workers: threads

    Returns:
        perturbed WAV path per original file (index: ``evalset_files``).
        Files that cannot be perturbed (too short to crop) are left out
        and listed in ``.attrs['skipped']`` (file → reason)

    """
    condition = check_condition(condition)
    pool = babble_pool(babble_files)
    if condition["type"] == "babble" and not pool:
        raise ConditionError(f"Condition '{condition['name']}' (babble) needs babble_files; none given.")
    digest = condition_hash(condition, seed=seed, sampling_rate=sampling_rate, babble_files=pool)
    folder = condition_folder(condition, root_key=root_key, seed=seed, sampling_rate=sampling_rate, babble_files=pool)
    rirs = (
        rir_bank(folder, condition, seed=seed, sampling_rate=sampling_rate) if condition["type"] in ROOM_TYPES else None
    )

    files = list(evalset_files)
    keys = {f: file_key(f, root) for f in files}
    outputs = {f: folder / (k if k.lower().endswith(".wav") else k + ".wav") for f, k in keys.items()}
    write = functools.partial(
        perturb_file, condition=condition, sampling_rate=sampling_rate, babble_files=pool, rir_files=rirs
    )
    skipped: dict[str, str] = {}
    todo = [f for f in files if not outputs[f].exists()]
    if todo:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
            futures = {f: executor.submit(write, f, outputs[f], seed=file_seed(digest, keys[f])) for f in todo}
            for file, future in futures.items():
                reason = future.result()  # re-raises the first unexpected error
                if reason is not None:
                    skipped[file] = reason
    for file, reason in skipped.items():
        logger.warning("Condition '%s': skipped %s: %s", condition["name"], file, reason)
    kept = [f for f in files if f not in skipped]
    result = pd.Series(
        [str(outputs[f]) for f in kept],
        index=pd.Index(kept, name=getattr(evalset_files, "name", None) or "file"),
        name=condition["name"],
        dtype="object",
    )
    result.attrs["skipped"] = skipped
    return result


def perturb_file(
    file: str,
    output: Path,
    condition: dict,
    *,
    seed: int,
    sampling_rate: int = SAMPLING_RATE,
    babble_files: typing.Sequence[str] = (),
    rir_files: typing.Sequence[str] | None = None,
) -> str | None:
    r"""Write the perturbed copy of one audio file to ``output``; the reason it cannot be made, else ``None``.

    Unreadable audio, a file the condition cannot apply to (too short to
    crop) and any other failure on this file's signal are reasons to skip
    it; a :class:`ConditionError` is raised, as it is wrong for every file.
    """
    try:
        signal = read_mono(file, sampling_rate)
    except Exception as error:  # unreadable or corrupt audio: a skip for this file, never the whole split
        return f"unreadable audio: {first_line(error)}"
    try:
        out = perturb(signal, sampling_rate, condition, seed=seed, babble_files=babble_files, rir_files=rir_files)
    except PerturbationError as error:
        return str(error)
    except ConditionError:
        raise  # the condition is wrong for every file, not this one
    except Exception as error:
        return f"cannot perturb: {first_line(error)}"
    write_wav(output, out, sampling_rate)
    return None


def first_line(error: Exception) -> str:
    r"""``TYPE: first line of the message`` (at most 160 characters of it), for a skip reason.

    Examples:
        >>> first_line(ValueError("bad header\nat byte 12"))
        'ValueError: bad header'
        >>> first_line(OSError())
        'OSError: '

    """
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
