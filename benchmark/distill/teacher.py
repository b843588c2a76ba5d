"""The teacher's side of a distillation, beyond the training crops (:mod:`benchmark.distill.annotate`).

Loading the teacher from the registry, checking the gold split, and the
teacher's outputs for whole, clean files: the held-out pool files and a
labelled gold split that validate every epoch, and the training and
refit files that the output layer is refitted on.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark import DIMENSIONS, Registry, ccc_finite, load_model, load_split, resolve_files
from benchmark.data.errors import DatasetConfigError
from benchmark.distill import annotate
from benchmark.distill.annotate import Shards
from benchmark.distill.audio import AudioFiles, Pool, relative_skips, scan_pool
from benchmark.distill.config import REAL_SPEECH_POOL, DistillConfig, DistillError
from benchmark.distill.registry_update import read_model_entries
from benchmark.distill.runtime import Environment, barrier, check_precision
from benchmark.distill.validation import ValidationSet, json_number

DEFAULT_GOLD = "msppodcast:test-2"


FORBIDDEN_SPLITS = ("test-1",)
r"""Splits that must never steer training: test-1 is the benchmark's test set."""


def load_teacher(name: str, models_path: Path) -> tuple[typing.Any, dict]:
    r"""The teacher :class:`~benchmark.models.base.Predictor` and its registry ``source``.

    Only the teacher's entry (and ensemble members) is validated.

    The registry is strict on purpose, but a student entry whose weights
    do not exist yet (they are what this run creates) must not stop the
    teacher from loading.
    """
    if not models_path.exists():
        raise DistillError(f"Model registry {models_path} not found: pass --models PATH.")
    entries = read_model_entries(models_path)
    by_name = {e.get("name"): e for e in entries}
    if name not in by_name:
        teachers = [e["name"] for e in entries if e.get("role") == "teacher"]
        raise DistillError(
            f"Unknown teacher '{name}' in {models_path}; registered teachers: {', '.join(teachers) or 'none'}."
        )
    wanted = [name] + list((by_name[name].get("source") or {}).get("members") or [])
    text = yaml.safe_dump({"models": [by_name[n] for n in wanted if n in by_name]}, sort_keys=False)
    registry = Registry.from_yaml_text(text, root=models_path.parent, path=models_path)
    return load_model(name, registry), dict(by_name[name].get("source") or {})


def share_threads(teacher, workers: int) -> None:
    r"""Let a thread-parallel teacher use the cores: annotation never overlaps training.

    Duck-typed on ``num_workers`` (the eGeMAPS teacher's thread count for
    ``predict_batch``); its outputs do not depend on it.
    """
    if isinstance(getattr(teacher, "num_workers", None), int) and workers > 0:
        teacher.num_workers = workers


def _gold_spec(config: DistillConfig) -> str | None:
    if config.gold == "none":
        return None
    if config.gold == "auto":
        return f"{DEFAULT_GOLD}:demo" if config.data == "demo" else None
    parts = config.gold.split(":")
    if len(parts) == 2:
        parts.append("demo" if config.data == "demo" else "real")
    if len(parts) != 3 or parts[2] not in ("demo", "real"):
        raise DistillError(f"--gold '{config.gold}': use DATASET:SPLIT[:demo|real], 'auto' or 'none'.")
    return ":".join(parts)


def fitted_on(teacher, source: dict) -> tuple[str, str] | None:
    r"""``(dataset, split)`` a teacher was fitted on: its registry ``source``, else its ``meta['data']``.

    A pinned eGeMAPS teacher (``source.path``) records its training data
    in ``model.json``, under the audb name (``demo-msppodcast`` for the
    demo replica of ``msppodcast``).

    Examples:
        >>> fitted_on(None, {"dataset": "msppodcast", "split": "train"})
        ('msppodcast', 'train')

    """
    if "dataset" in source and "split" in source:
        return str(source["dataset"]), str(source["split"])
    data = (getattr(teacher, "meta", None) or {}).get("data") or {}
    if "dataset" not in data or "split" not in data:
        return None
    return str(data["dataset"]).removeprefix("demo-"), str(data["split"])


def check_gold(spec: str | None, teacher_model, source: dict) -> None:
    r"""Refuse a gold split that would leak the test set or that the teacher was fitted on."""
    if spec is None:
        return
    dataset, split, _ = spec.split(":")
    if split in FORBIDDEN_SPLITS:
        raise DistillError(
            f"--gold {dataset}:{split}: '{split}' is the benchmark's test set; selecting checkpoints on it "
            f"would leak the test set into the model. Use {DEFAULT_GOLD} or --gold none."
        )
    if fitted_on(teacher_model, source) == (dataset, split):
        raise DistillError(
            f"--gold {dataset}:{split}: the teacher '{teacher_model.name}' was fitted on this split, so it cannot "
            "serve as unbiased validation. Choose another split or --gold none."
        )


REFIT_MAX_FILES = 4000
r"""Whole files the output-layer refit reads at most (training and refit files together).

A bound on time, not memory: each file costs a teacher call and a student
pass, and is read where it is used (:class:`~benchmark.distill.AudioFiles`),
so only the head's inputs (a row of floats per file) are held. Training
files come first; both are sorted by content hash, so the first ones are a
content-defined pseudo-random subset. The demo's 900 training and 1,000
refit files are all used.
"""


def whole_training_files(
    teacher, train_pool: Pool, dims: list[int], config: DistillConfig, target_range: tuple[float, float]
) -> tuple[ValidationSet, list[str], int]:
    r"""The whole files the tuning trains on and the refit is fitted on.

    :func:`_teacher_files` of at most :data:`REFIT_MAX_FILES` training files.

    Returns:
        them, the files left out as off-scale (named for the provenance
        record), and the teacher calls made (0 on a cache hit)
    """
    files, hashes = train_pool.files[:REFIT_MAX_FILES], train_pool.hashes[:REFIT_MAX_FILES]
    train_files, _, offscale, calls = _teacher_files("train", teacher, files, hashes, dims, config, target_range)
    return train_files, [f"{os.path.basename(f)} (training, whole file)" for f in offscale], calls


def _refit_pool(config: DistillConfig, pool: Pool, train_pool: Pool) -> tuple[Pool | None, dict]:
    r"""The extra files of ``config.refit_data`` the refit is fitted on, found before anything runs.

    Files whose bytes are in ``pool`` (training or held-out) are dropped:
    a held-out file must not be fitted on, and a training file is already
    there. At most :data:`REFIT_MAX_FILES` files are held with the
    training files (content-hash order, as there).

    Returns:
        them (``None`` for ``'none'`` or without a refit, their unreadable
        files in ``missing``), and what the provenance record says of the source
    """
    spec = config.refit_data
    if spec == "auto":
        spec = "demo" if config.data == "demo" else "none"
    if spec == "none" or not config.head_refit:
        return None, {"source": "none"}
    files, source = resolve_files(spec, "demo-refit", "--refit-data")
    scanned = scan_pool(files)
    known = set(pool.hashes)
    fresh = [i for i, h in enumerate(scanned.hashes) if h not in known]
    chosen = fresh[: max(0, REFIT_MAX_FILES - len(train_pool.files))]
    info = {
        "source": source,
        "listed_files": len(files),
        "in_pool_dropped": len(scanned.files) - len(fresh),
        "over_limit_dropped": len(fresh) - len(chosen),
        "duplicates_dropped": scanned.duplicates,
    }
    return Pool([scanned.files[i] for i in chosen], [scanned.hashes[i] for i in chosen], scanned.missing), info


def whole_refit_files(
    teacher,
    refit_pool: Pool | None,
    info: dict,
    dims: list[int],
    config: DistillConfig,
    target_range: tuple[float, float],
) -> tuple[ValidationSet | None, dict, int]:
    r"""The files of :func:`_refit_pool` with the teacher's outputs (:func:`_teacher_files`).

    Returns:
        them (``None`` without any), the provenance record's account of
        them, and the teacher calls made (0 on a cache hit)
    """
    if refit_pool is None:
        return None, info, 0
    refit_files, skipped, offscale, calls = _teacher_files(
        "refit", teacher, refit_pool.files, refit_pool.hashes, dims, config, target_range
    )
    hash_of = dict(zip(refit_pool.files, refit_pool.hashes))
    kept = list(refit_files.reference.index)  # content-hash order, as in refit_pool
    report = {
        **info,
        "files": len(refit_files),
        "files_sha256": Pool(kept, [hash_of[f] for f in kept]).sha256,
        "skipped_count": len(refit_pool.missing) + len(skipped),
        "skipped": relative_skips(refit_pool.missing + skipped, refit_pool.files),
        "offscale_left_out": len(offscale),
        "offscale_examples": [os.path.basename(f) for f in offscale][:20],
    }
    return (refit_files if len(refit_files) else None), report, calls


def _teacher_files(
    name: str,
    teacher,
    files: list[str],
    hashes: list[str],
    dims: list[int],
    config: DistillConfig,
    target_range: tuple[float, float],
) -> tuple[ValidationSet, list[tuple[str, str]], list[str], int]:
    r"""Whole, clean files with the teacher's outputs (cached by content), off-scale ones left out.

    Returns:
        the :class:`ValidationSet` ``name``, the unreadable ``(file, reason)``
        pairs, the files left out as off-scale, and the teacher calls made
        (0 on a cache hit)
    """
    label = {"teacher": "heldout"}.get(name, name)  # the held-out files' cache label predates the set's name
    targets, signals, skipped, calls = annotate.annotate_files(
        teacher, files, hashes, label=label, batch_size=config.teacher_batch
    )
    ok = annotate.in_range(targets.to_numpy(), target_range)
    kept = targets[ok]
    names = [DIMENSIONS[d] for d in dims]
    return ValidationSet(name, AudioFiles(kept.index), kept[names]), skipped, list(targets.index[~ok]), calls


def _validation_sets(
    teacher, held: Pool, gold_spec, gold_set, dims, rank, config, target_range
) -> tuple[list[ValidationSet], dict, int]:
    names = [DIMENSIONS[d] for d in dims]
    info: dict = {"skipped": [], "gold": None, "teacher_vs_gold": {}, "offscale": []}
    if rank != 0:  # only rank 0 validates
        return [ValidationSet("teacher", [], pd.DataFrame(columns=names))], info, 0
    heldout, skipped, offscale, calls = _teacher_files(
        "teacher", teacher, held.files, held.hashes, dims, config, target_range
    )
    info["skipped"] += skipped
    info["offscale"] = [f"{os.path.basename(f)} (held-out, whole file)" for f in offscale]
    sets = [heldout]
    if gold_set is None and gold_spec is not None:
        dataset, split, data = gold_spec.split(":")
        gold_set = load_split(dataset, split, data=data)
    if gold_set is not None:
        files = [str(f) for f in gold_set.files]
        teacher_gold, _, gold_skipped, gold_calls = annotate.annotate_files(
            teacher, files, label=f"gold-{gold_set.audb_name}-{gold_set.split}", batch_size=config.teacher_batch
        )
        calls += gold_calls
        info["skipped"] += gold_skipped
        truth = gold_set.truth.copy()
        truth.index = truth.index.astype(str)
        truth = truth.loc[teacher_gold.index, [d for d in names if d in truth.columns]]
        sets.append(ValidationSet("gold", AudioFiles(truth.index), truth))
        info["gold"] = {**gold_set.provenance(), "files": len(truth)}
        info["teacher_vs_gold"] = {
            d: json_number(ccc_finite(truth[d].to_numpy(), teacher_gold.loc[truth.index, d].to_numpy()))
            for d in truth.columns
        }
    return sets, info, calls


def teacher_for(config: DistillConfig, teacher=None) -> tuple[typing.Any, dict]:
    r"""The run's teacher (``teacher``, else ``config.teacher`` from the registry) and its registry ``source``."""
    if teacher is None:
        return load_teacher(config.teacher, config.models_path)
    return teacher, dict(getattr(teacher, "source", None) or {})


@dataclasses.dataclass
class Data:
    r"""The audio of a run and the teacher's outputs for it (:func:`prepare_data`).

    Attributes:
        files: the files ``config.data`` lists
        source: what the provenance record calls them
        pool: their distinct readable files (at most ``max_files``), by content hash
        train_pool: the training files
        held: the held-out files
        refit_pool: the extra files the output layer is refitted on (:func:`_refit_pool`)
        refit_source: what the provenance record says of them
        dims: indices of the dimensions the teacher predicts
        gold_spec: ``'DATASET:SPLIT:demo|real'`` validated on, or ``None``
        target_range: plausible teacher outputs
        shards: the training crops with the teacher's outputs
        usable: per crop, whether its outputs are in ``target_range``
        offscale: the crops left out, named for the provenance record
        validation: the held-out (and gold) sets (empty on ranks other than 0)
        val_info: skipped and off-scale files, gold provenance, teacher vs gold
        teacher_calls: teacher calls made (0 on cache hits)

    """

    files: list[str]
    source: str
    pool: Pool
    train_pool: Pool
    held: Pool
    refit_pool: Pool | None
    refit_source: dict
    dims: list[int]
    gold_spec: str | None
    target_range: tuple[float, float]
    shards: Shards
    usable: np.ndarray
    offscale: list[str]
    validation: list[ValidationSet]
    val_info: dict
    teacher_calls: int


def pool_sources(config: DistillConfig) -> tuple[list[str], str]:
    r"""The audio files of the pool and what the records say of them: ``config.data`` and ``config.real_speech``.

    Real speech joins as unlabeled audio: the teacher annotates it like
    the rest, and only the train speakers of the EmoDB release are read
    (:func:`benchmark.data.releases.emodb.train_speaker_files`), so the
    test speakers stay for reported numbers.

    Raises:
        DistillError: if ``config.real_speech`` does not name an EmoDB
            release folder with train-speaker files

    """
    files, source = resolve_files(config.data)
    if not config.real_speech:
        return files, source
    from benchmark.data.releases.emodb import real_speech_folder, train_speaker_files

    try:
        real = train_speaker_files(real_speech_folder(config.real_speech))
    except DatasetConfigError as error:
        raise DistillError(str(error)) from None
    return files + [str(s) for s in real["source"]], f"{source} + {REAL_SPEECH_POOL} ({len(real)} files)"


def prepare_data(config: DistillConfig, teacher, teacher_source: dict, gold_set, env: Environment) -> Data:
    r"""Find the pool, split it, check the settings, and annotate the training crops and validation files.

    Everything that can be refused (gold split, pool size, precision) is
    checked before the teacher runs. Rank 0 runs the teacher; the other
    processes wait and then read its cache.
    """
    dims = [DIMENSIONS.index(d) for d in annotate.teacher_dimensions(teacher)]
    gold_spec = _gold_spec(config)
    check_gold(gold_spec, teacher, teacher_source)

    files, source = pool_sources(config)
    pool = scan_pool(files)
    if config.max_files and len(pool.files) > config.max_files:
        pool = Pool(pool.files[: config.max_files], pool.hashes[: config.max_files], pool.missing, pool.duplicates)
    if len(pool.files) < 2:
        raise DistillError(f"Need at least 2 distinct audio files to distil, found {len(pool.files)} in {source}.")
    train_pool, held = pool.split(config.val_fraction)
    refit_pool, refit_source = _refit_pool(config, pool, train_pool)
    recipe = config.recipe()
    check_precision(config.precision, env.device)

    shards = (
        annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch, progress=config.progress)
        if env.rank == 0
        else None
    )
    barrier(env.world_size)
    if shards is None:
        shards = annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch, progress=False)
    target_range = tuple(float(x) for x in config.target_range)
    usable = annotate.in_range(shards.targets, target_range)
    offscale = [
        f"{os.path.basename(shards.files[shards.file_index[i]])} (variant {shards.variant[i]})"
        for i in np.flatnonzero(~usable)
    ]
    validation, val_info, calls = _validation_sets(
        teacher, held, gold_spec, gold_set, dims, env.rank, config, target_range
    )
    return Data(
        files,
        source,
        pool,
        train_pool,
        held,
        refit_pool,
        refit_source,
        dims,
        gold_spec,
        target_range,
        shards,
        usable,
        offscale,
        validation,
        val_info,
        shards.teacher_calls + calls,
    )
