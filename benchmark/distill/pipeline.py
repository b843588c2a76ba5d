"""The distillation stage end to end: data → teacher targets → training → export → records.

:func:`distill` is what ``python -m benchmark distill`` runs. Under
``torchrun`` (``WORLD_SIZE > 1``) it initialises ``torch.distributed``,
every process trains on its share of each epoch (DistributedSampler),
and only rank 0 annotates, validates and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark import DIMENSIONS
from benchmark.distill import annotate, provenance_runs
from benchmark.distill.annotate import Augmentation, Pool, Recipe
from benchmark.distill.train import Hyper, ValidationSet
from benchmark.distill.tune import TuneSettings
from benchmark.hashing import artifact_sha256, sha256_text
from benchmark.paths import PROJECT_ROOT, cache_dir, results_root
from benchmark.results import atomic_write_text, provenance

DEFAULT_GOLD = "msppodcast:test-2"
FORBIDDEN_SPLITS = ("test-1",)
r"""Splits that must never steer training: test-1 is the benchmark's test set."""
OUTPUT_FILES = ("model.onnx", "model.yaml", "provenance.json")


class DistillError(ValueError):
    r"""The distillation cannot run as configured; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    r"""Everything that defines a distillation run (defaults: ``python -m benchmark distill``).

    Args:
        student: architecture of :func:`benchmark.students.build`; also the registry name
        teacher: registry name of the teacher
        data: ``'demo'`` (unlabeled demo pool), a folder, list file or glob of audio
        out: model folder (default ``weights/<student>``); the int8 model goes to ``<out>-int8``
        epochs, batch_size, lr, weight_decay, warmup, schedule, mse_weight, loss_weights,
        bn_calibration, bn_freeze_epochs, ema, seed:
            see :class:`benchmark.distill.train.Hyper`
        crop_seconds: longest training crop; shorter files are used whole
        bucket_seconds: crop lengths are multiples of it (crops of one length form a batch)
        variants: augmented crops per file (each epoch uses one of them, cycling)
        augment: apply noise/babble/gain/filter augmentation to variants 1..
        max_files: use at most this many pool files (content-hash order; 0: all)
        val_fraction: pool files held out to validate against the teacher
        whole_file_epochs: after training, train the best epoch's network this
            many epochs more on the whole, clean training files, BatchNorm
            statistics frozen (:mod:`benchmark.distill.tune`), unless that
            lowers the held-out mean CCC vs the teacher (0, the default: off)
        whole_file_lr: learning rate of that tuning at its first step (decays to zero)
        head_refit: after training (and tuning), replace the student's output layer by its
            closed-form ridge fit on the whole, clean training files and the refit files
            (:mod:`benchmark.distill.refit`), unless that lowers the held-out
            mean CCC vs the teacher
        refit_data: more unlabeled audio the refit is fitted on, whole and clean, next to
            the training files (never cropped or trained on): ``'demo'`` (the
            demo database ``demo-refit``), a folder, list file or glob as for
            ``data``, ``'none'``, or ``'auto'`` (``'demo'`` for demo data, none
            otherwise). Files of the pool (training or held-out) are dropped from it
        target_range: teacher outputs outside it are treated as teacher
            failures: such crops are not trained on, such held-out files not scored
        gold: ``'DATASET:SPLIT[:demo|real]'`` with human labels to validate on,
            ``'auto'`` (``msppodcast:test-2`` for demo data, none otherwise) or ``'none'``
        device: ``'auto'`` (CUDA if available), ``'cpu'``, ``'cuda'``
        precision: ``'fp32'``, or ``'bf16'`` for bfloat16 autocast in the
            training step (see :func:`check_precision`)
        threads: torch CPU threads (0: all cores, divided among DDP processes)
        resume: continue an interrupted run of the same configuration
        checkpoint_every: steps between checkpoints (also at every epoch end)
        teacher_batch: signals per teacher ``predict_batch`` call
        teacher_workers: threads of a teacher that parallelises ``predict_batch``
            (one with a ``num_workers`` attribute, like the eGeMAPS teacher); 0: ``threads``
        models: path of ``models.yaml`` (default: the project's)
        register: update the student's ``models.yaml`` entries
        progress: show progress bars
        stop_after_steps: stop as if killed after this many steps (testing resume)

    """

    student: str = "wav2small"
    teacher: str = "egemaps-teacher"
    data: str = "demo"
    out: str | None = None
    epochs: int = Hyper.epochs
    batch_size: int = Hyper.batch_size
    lr: float = Hyper.lr
    weight_decay: float = Hyper.weight_decay
    warmup: float = Hyper.warmup
    schedule: str = Hyper.schedule
    mse_weight: float = Hyper.mse_weight
    loss_weights: tuple[float, float, float] = Hyper.loss_weights
    bn_calibration: int = Hyper.bn_calibration
    bn_freeze_epochs: int = Hyper.bn_freeze_epochs
    ema: float = Hyper.ema
    seed: int = 0
    crop_seconds: float = Recipe.crop_seconds
    bucket_seconds: float = Recipe.bucket_seconds
    variants: int = Recipe.variants
    augment: bool = True
    max_files: int = 0
    val_fraction: float = 0.1
    whole_file_epochs: int = 0  # off: on the demo pool it costs more wall time than it gains (docs/distillation.md)
    whole_file_lr: float = TuneSettings.lr
    head_refit: bool = True
    refit_data: str = "auto"
    target_range: tuple[float, float] = annotate.TARGET_RANGE
    gold: str = "auto"
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0
    resume: bool = True
    checkpoint_every: int = 50
    teacher_batch: int = 64
    teacher_workers: int = 0
    models: str | None = None
    register: bool = True
    progress: bool = True
    stop_after_steps: int | None = None

    def __post_init__(self):
        # settings that leave nothing to train (or to export) fail here, before the teacher runs
        counts = {"epochs": self.epochs, "batch_size": self.batch_size, "variants": self.variants}
        sizes = {"lr": self.lr, "crop_seconds": self.crop_seconds, "bucket_seconds": self.bucket_seconds}
        wrong = [f"{k}={v} (must be at least 1)" for k, v in counts.items() if v < 1]
        wrong += [f"{k}={v} (must be above 0)" for k, v in sizes.items() if not v > 0]
        try:  # the command line gives a list; a tuple keeps the frozen config hashable
            weights = tuple(float(w) for w in self.loss_weights)
        except (TypeError, ValueError):
            weights = ()
        object.__setattr__(self, "loss_weights", weights or self.loss_weights)
        if len(weights) != 3 or not all(w >= 0 for w in weights) or not sum(weights) > 0:
            shown = " ".join(str(w) for w in weights) if weights else repr(self.loss_weights)
            wrong.append(f"loss_weights={shown} (must be three weights, for arousal, dominance and valence, "
                         "none negative, not all 0)")
        if wrong:
            options = ", ".join("--" + w.replace("_", "-") for w in wrong)
            raise DistillError(f"Cannot distil with {options}; change the option or the student's distilled.recipe.")

    @property
    def out_path(self) -> Path:
        return Path(self.out).expanduser().resolve() if self.out else default_out(self.student)

    @property
    def int8_path(self) -> Path:
        return int8_folder(self.out_path)

    @property
    def records_path(self) -> Path:
        r"""Folder of the run's history, training curve and full provenance (:func:`records_folder`)."""
        return records_folder(self.student, self.out_path, self.register)

    @property
    def models_path(self) -> Path:
        return Path(self.models).expanduser().resolve() if self.models else PROJECT_ROOT / "models.yaml"

    def hyper(self) -> Hyper:
        return Hyper(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            warmup=self.warmup, schedule=self.schedule, mse_weight=self.mse_weight,
            loss_weights=self.loss_weights,
            bn_calibration=self.bn_calibration, bn_freeze_epochs=self.bn_freeze_epochs, ema=self.ema,
            seed=self.seed, precision=self.precision,
        )

    def recipe(self) -> Recipe:
        return Recipe(
            crop_seconds=self.crop_seconds, bucket_seconds=self.bucket_seconds, variants=self.variants, seed=self.seed,
            augmentation=Augmentation() if self.augment else Augmentation.off(),
        )


def default_out(student: str) -> Path:
    r"""The project's model folder of a student, ``weights/<student>``."""
    return PROJECT_ROOT / "weights" / student


def int8_folder(out: Path) -> Path:
    r"""The int8 twin of the fp32 model folder ``out``: ``<out>-int8`` next to it.

    Examples:
        >>> int8_folder(Path("/tmp/try")).as_posix()
        '/tmp/try-int8'

    """
    return Path(out).with_name(Path(out).name + "-int8")


def records_folder(student: str, out: Path, register: bool) -> Path:
    r"""Where the records of a distillation into ``out`` belong.

    ``results/distill/<student>/`` describes the model that ``models.yaml``
    registers as ``<student>`` (the leaderboard reads it): a run that
    registers, or one into the project's own folder ``weights/<student>``,
    writes there. A scratch run (``--out DIR --no-register``) must not
    overwrite them; its records go next to its model, to ``DIR-records/``.

    Examples:
        >>> records_folder("wav2small", Path("/tmp/try"), register=False).as_posix()
        '/tmp/try-records'
        >>> records_folder("wav2small", Path("/tmp/try"), register=True).relative_to(results_root()).as_posix()
        'distill/wav2small'

    """
    out = Path(out).resolve()
    if register or out == default_out(student):
        return results_root() / "distill" / student
    return out.with_name(out.name + "-records")


@dataclasses.dataclass
class DistillOutcome:
    r"""What a distillation produced (on rank 0; other ranks get ``None`` paths)."""

    out: Path | None
    out_int8: Path | None
    provenance: dict
    history: pd.DataFrame
    teacher_calls: int


def distill(
    config: DistillConfig,
    *,
    teacher=None,
    build_student: typing.Callable[[str], typing.Any] | None = None,
    gold_set=None,
    exporter: tuple[typing.Callable, typing.Callable] | None = None,
) -> DistillOutcome:
    r"""Distil ``config.student`` from ``config.teacher``.

    Keyword arguments replace components (for tests and experiments):
    ``teacher`` a :class:`~benchmark.models.base.Predictor`,
    ``build_student`` an architecture → ``nn.Module`` function,
    ``gold_set`` an :class:`~benchmark.data.datasets.EvalSet` with labels,
    ``exporter`` the pair ``(export_onnx, quantize_int8)``.

    Raises:
        DistillError: on a configuration that cannot work
        benchmark.distill.annotate.TeacherError: if the teacher returns NaN
        benchmark.distill.train.CheckpointMismatch: if the checkpoint is another run's

    """
    import torch

    from benchmark.distill import refit, train as training

    started = time.perf_counter()
    rank, world_size, local_rank = _init_distributed()
    device = _device(config.device, local_rank)
    _deterministic(device)
    keep_freed_memory()
    threads = config.threads or max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(threads)

    out, out_int8 = config.out_path, config.int8_path
    if rank == 0:
        _check_out(out)
        _check_out(out_int8)
        if not config.register:
            _check_unregistered_out(config)
    if teacher is None:
        teacher, teacher_source = load_teacher(config.teacher, config.models_path)
    else:
        teacher_source = dict(getattr(teacher, "source", None) or {})
    _share_threads(teacher, config.teacher_workers or threads)
    dims = [DIMENSIONS.index(d) for d in annotate.teacher_dimensions(teacher)]
    gold_spec = _gold_spec(config)
    _check_gold(gold_spec, teacher, teacher_source)

    files, source = annotate.resolve_files(config.data)
    pool = annotate.scan_pool(files)
    if config.max_files and len(pool.files) > config.max_files:
        pool = Pool(pool.files[: config.max_files], pool.hashes[: config.max_files], pool.missing, pool.duplicates)
    if len(pool.files) < 2:
        raise DistillError(f"Need at least 2 distinct audio files to distil, found {len(pool.files)} in {source}.")
    train_pool, held = pool.split(config.val_fraction)
    refit_pool, refit_source = _refit_pool(config, pool, train_pool)
    recipe = config.recipe()
    hyper = config.hyper()
    check_precision(hyper.precision, device)

    # rank 0 runs the teacher; the others wait and then read its cache
    shards = annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch,
                                    progress=config.progress) if rank == 0 else None
    _barrier(world_size)
    if shards is None:
        shards = annotate.annotate_pool(teacher, train_pool, recipe, batch_size=config.teacher_batch, progress=False)
    teacher_calls = shards.teacher_calls
    target_range = tuple(float(x) for x in config.target_range)
    usable = annotate.in_range(shards.targets, target_range)
    offscale = [
        f"{os.path.basename(shards.files[shards.file_index[i]])} (variant {shards.variant[i]})"
        for i in np.flatnonzero(~usable)
    ]

    validation, val_info, calls = _validation_sets(teacher, held, gold_spec, gold_set, dims, rank, config,
                                                   target_range)
    teacher_calls += calls

    build_student = build_student or _default_builder
    torch.manual_seed(config.seed)  # the student's initial weights follow from the seed
    try:
        student = build_student(config.student)
    except ValueError as ex:  # unknown architecture
        raise DistillError(str(ex)) from None
    fingerprint = {
        "student": config.student,
        # the layout, not only the name: a layout changed in the code can keep every
        # parameter shape, and its weights would then resume without complaint
        "architecture": sha256_text(repr(student))[:16],
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "train_files_sha256": train_pool.sha256,
        "heldout_files_sha256": held.sha256,
        "gold": gold_spec,
        "target_range": list(target_range),
        "recipe": json.loads(json.dumps(dataclasses.asdict(recipe))),
        "hyper": dataclasses.asdict(hyper),
        "world_size": world_size,
    }
    results_dir = config.records_path
    result = training.train(
        student, shards, validation, hyper,
        checkpoint=checkpoint_path(out), fingerprint=fingerprint, dims=dims, usable=usable, resume=config.resume,
        device=device, checkpoint_every=config.checkpoint_every, progress=config.progress,
        stop_after_steps=config.stop_after_steps, rank=rank, world_size=world_size,
        on_epoch=lambda history: training.write_history(history, results_dir),
    )
    if rank != 0:
        _barrier(world_size)
        _shutdown_distributed(world_size)
        return DistillOutcome(None, None, {}, result.history, teacher_calls)

    student.load_state_dict(result.best_state)
    train_files, train_offscale, refit_files, refit_info = None, [], None, {"source": "none"}
    refitting = config.head_refit and refit.has_linear_head(student)
    if config.whole_file_epochs or refitting:
        train_files, train_offscale, calls = _training_files(teacher, train_pool, dims, config, target_range)
        teacher_calls += calls
    if refitting:
        refit_files, refit_info, calls = _refit_files(teacher, refit_pool, refit_source, dims, config, target_range)
        teacher_calls += calls
    tuning_started = time.perf_counter()
    tuning, baseline = _tune_on_whole_files(config, student, train_files, dims, validation, result, device)
    tuning_seconds = time.perf_counter() - tuning_started
    before_refit = {k: v.clone() for k, v in student.state_dict().items()}
    head_refit, head_data = _refit_head(config, student, train_files, refit_files, dims, validation, baseline,
                                        device)
    student.to("cpu").eval()
    export_onnx, quantize_int8 = exporter or _default_exporter()
    # export() replaces the folders: read the earlier runs' records first
    earlier = provenance_runs.read_records(*(p / "provenance.json" for p in (out, out_int8, results_dir)))

    def export() -> None:
        _replace_folder(out, lambda tmp: export_onnx(student, tmp))
        _replace_folder(out_int8, lambda tmp: quantize_int8(out, tmp))

    export()
    scored: dict = {}  # ONNX figures by model file: each export is scored once
    if head_refit.get("applied") and "validation" in head_refit:
        head_refit = _int8_guard(config, student, head_data, validation, baseline, before_refit, head_refit, export,
                                 scored)

    record = provenance_record(
        config, teacher, student, out, out_int8, source=source, listed=len(files), pool=pool,
        train_pool=train_pool, held=held, shards=shards, offscale=offscale, val_info=val_info,
        validation=validation, result=result, recipe=recipe, hyper=hyper, world_size=world_size,
        target_range=target_range, train_offscale=train_offscale, whole_file_tuning=tuning, head_refit=head_refit,
        refit_info=refit_info, scored=scored,
    )
    # The copy inside the model folder keeps only what the weights depend on; no
    # record enters the artefact hash (benchmark.hashing.artifact_sha256).
    _write_json(out / "provenance.json", provenance_runs.with_runs(record, earlier[0]))
    quantized_from = {"path": out.name, "onnx_sha256": record["student"]["onnx_sha256"]}
    int8_record = {**record, "quantized_from": quantized_from}
    _write_json(out_int8 / "provenance.json", provenance_runs.with_runs(int8_record, earlier[1]))
    sha, sha_int8 = artifact_sha256(out), artifact_sha256(out_int8)
    full = {
        **record,
        "student": {
            **record["student"], "path": str(out), "sha256": sha, "int8_path": str(out_int8), "int8_sha256": sha_int8,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": provenance()["date"],
        "device": device,
        "threads": threads,
        "teacher_calls": teacher_calls,
        "resumed_from_step": result.resumed_from,
        "whole_file_tuning_seconds": round(tuning_seconds, 1),
        "cache": {"teacher_shards": str(shards.folder), "checkpoint": str(checkpoint_path(out))},
    }
    training.write_history(result.history, results_dir)
    _write_json(results_dir / "provenance.json", provenance_runs.with_runs(full, earlier[2]))
    if config.register:
        from benchmark.distill.registry_update import update_registry

        update_registry(config.models_path, registry_entries(config, teacher, sha, sha_int8, record))
    _barrier(world_size)
    _shutdown_distributed(world_size)
    return DistillOutcome(out, out_int8, full, result.history, teacher_calls)



def provenance_record(
    config: DistillConfig, teacher, student, out: Path, out_int8: Path, *, source: str, listed: int,
    pool: Pool, train_pool: Pool, held: Pool, shards, offscale: list[str], val_info: dict,
    validation: typing.Sequence[ValidationSet], result, recipe: Recipe, hyper: Hyper, world_size: int,
    target_range: tuple[float, float], train_offscale: typing.Sequence[str] = (),
    whole_file_tuning: dict | None = None, head_refit: dict | None = None, refit_info: dict | None = None,
    scored: dict | None = None,
) -> dict:
    r"""What the exported weights depend on: teacher, data, recipe, settings, code, scores.

    Nothing machine- or time-specific: the same configuration re-run
    writes the same record. ``scored``: figures of exports
    already scored (:func:`_score_onnx`).
    """
    best_row = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0].to_dict()
    onnx_metrics = {
        "fp32": _score_onnx(out, validation, "fp32", scored),
        "int8": _score_onnx(out_int8, validation, "int8", scored),
    }
    loss = {key: _num(onnx_metrics["fp32"][key] - onnx_metrics["int8"][key]) for key in onnx_metrics["fp32"]
            if onnx_metrics["fp32"][key] is not None and onnx_metrics["int8"][key] is not None}
    return {
        "student": {
            "name": config.student,
            "architecture": config.student,
            "parameters": int(sum(p.numel() for p in student.parameters() if p.requires_grad)),
            "onnx_sha256": _file_sha(out / "model.onnx"),
            "int8_onnx_sha256": _file_sha(out_int8 / "model.onnx"),
        },
        "teacher": {"name": teacher.name, "sha256": teacher.artifact_hash},
        "data": {
            "source": source,
            "listed_files": listed,
            "files_sha256": pool.sha256,
            "train_files": len(shards.files),
            "train_files_sha256": train_pool.sha256,
            "heldout_files": len(held.files),
            "heldout_files_sha256": held.sha256,
            "duplicates_dropped": pool.duplicates,
            "skipped_count": len(pool.missing) + len(shards.skipped) + len(val_info["skipped"]),
            "skipped": _relative_skips(pool.missing + shards.skipped + val_info["skipped"], pool.files),
            "crops": len(shards),
            "offscale_targets": {
                "range": list(target_range),
                "crops_left_out": len(offscale),
                "heldout_files_left_out": len(val_info["offscale"]),
                "train_files_left_out": len(train_offscale),
                "examples": (offscale + val_info["offscale"] + list(train_offscale))[:20],
            },
            "refit_files": refit_info or {"source": "none"},
        },
        "gold": val_info["gold"],
        "seed": config.seed,
        "recipe": json.loads(json.dumps(dataclasses.asdict(recipe))),
        "hyperparameters": dataclasses.asdict(hyper),
        "code": {k: v for k, v in provenance().items() if k != "date"},
        "training": {"steps": result.steps, "best_epoch": result.best_epoch, "world_size": world_size},
        "whole_file_tuning": whole_file_tuning,
        "head_refit": head_refit,
        "validation": {
            "selection": "best epoch by mean CCC vs the teacher on held-out pool files (whole, clean)",
            "torch_best_epoch": {
                k: _num(v) for k, v in best_row.items() if "_" in k and k.split("_")[0] in ("teacher", "gold")
            },
            "onnx": onnx_metrics,
            "int8_ccc_loss": loss,
            "teacher_vs_gold": val_info["teacher_vs_gold"],
        },
    }


def _raw_entries(models_path: Path) -> list[dict]:
    r"""The entries of a ``models.yaml`` as plain mappings, unvalidated."""
    raw = yaml.safe_load(models_path.read_text()) or {}
    return [e for e in raw.get("models") or [] if isinstance(e, dict)]


def student_recipe(student: str, models_path: str | Path) -> dict:
    r"""``distilled.recipe`` of the student's ``models.yaml`` entry (empty if none).

    Read from the YAML alone: the student's weights need not exist yet.
    """
    path = Path(models_path)
    if not path.exists():
        return {}
    for entry in _raw_entries(path):
        if entry.get("name") == student:
            recipe = (entry.get("distilled") or {}).get("recipe") or {}
            if not isinstance(recipe, dict):
                raise DistillError(f"{path}: distilled.recipe of '{student}' must be a mapping, not {recipe!r}.")
            return dict(recipe)
    return {}


def registry_entries(config: DistillConfig, teacher, sha: str, sha_int8: str, record: dict) -> list[dict]:
    r"""The ``models.yaml`` entries of the fp32 and int8 student."""
    root = config.models_path.parent
    distilled = {
        "teacher": teacher.name,
        "teacher_sha256": teacher.artifact_hash,
        "data": record["data"]["source"],
        "data_sha256": record["data"]["files_sha256"],
        "seed": config.seed,
        "provenance": _relative(config.out_path / "provenance.json", root),
    }
    recipe = student_recipe(config.student, config.models_path)
    if recipe:  # the student's recipe stays with its entry
        distilled["recipe"] = recipe
    entries = []
    for name, path, digest, what in (
        (config.student, config.out_path, sha, "fp32"),
        (config.student + "-int8", config.int8_path, sha_int8, "dynamic int8 (QUInt8) quantisation of the fp32 model"),
    ):
        entries.append({
            "name": name,
            "kind": "audonnx",
            "role": "student",
            "source": {"path": _relative(path, root), "sha256": digest},
            "sampling_rate": 16000,
            "outputs": {d: d for d in DIMENSIONS},
            "architecture": config.student,
            "description": (
                f"{config.student} distilled from {teacher.name} (teacher outputs only, no human labels); {what}."
            ),
            "distilled": distilled,
        })
    return entries


def load_teacher(name: str, models_path: Path) -> tuple[typing.Any, dict]:
    r"""The teacher :class:`~benchmark.models.base.Predictor` and its registry ``source``.

    Only the teacher's entry (and ensemble members) is validated.

    The registry is strict on purpose, but a student entry whose weights
    do not exist yet (they are what this run creates) must not stop the
    teacher from loading.
    """
    from benchmark.registry import Registry, load_model

    if not models_path.exists():
        raise DistillError(f"Model registry {models_path} not found: pass --models PATH.")
    entries = _raw_entries(models_path)
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


def checkpoint_path(out: Path) -> Path:
    r"""Training checkpoint of the run that writes ``out`` (in the cache, not in the model folder)."""
    return cache_dir("distill", "runs", f"{out.name}-{sha256_text(str(out))[:10]}") / "checkpoint.pt"


def _share_threads(teacher, workers: int) -> None:
    r"""Let a thread-parallel teacher use the cores: annotation never overlaps training.

    Duck-typed on ``num_workers`` (the eGeMAPS teacher's thread count for
    ``predict_batch``); its outputs do not depend on it.
    """
    if isinstance(getattr(teacher, "num_workers", None), int) and workers > 0:
        teacher.num_workers = workers


def _default_builder(architecture: str):
    from benchmark.students import build

    return build(architecture)


def _default_exporter() -> tuple[typing.Callable, typing.Callable]:
    from benchmark.students.export import export_onnx, quantize_int8

    return export_onnx, quantize_int8


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


def _check_gold(spec: str | None, teacher_model, source: dict) -> None:
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
r"""Whole files the output-layer refit (training and refit files together) and the whole-file tuning read at most.

A bound on time, not memory: each file costs a teacher call and a student
pass, and is read where it is used (:class:`~benchmark.distill.annotate.AudioFiles`),
so only the head's inputs (a row of floats per file) are held. Training
files come first; both are sorted by content hash, so the first ones are a
content-defined pseudo-random subset. The demo's 900 training and 1,000
refit files are all used.
"""


def _training_files(teacher, train_pool: Pool, dims: list[int], config: DistillConfig,
                    target_range: tuple[float, float]) -> tuple[ValidationSet, list[str], int]:
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
    files, source = annotate.resolve_files(spec, "demo-refit", "--refit-data")
    scanned = annotate.scan_pool(files)
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


def _refit_files(teacher, refit_pool: Pool | None, info: dict, dims: list[int], config: DistillConfig,
                 target_range: tuple[float, float]) -> tuple[ValidationSet | None, dict, int]:
    r"""The files of :func:`_refit_pool` with the teacher's outputs (:func:`_teacher_files`).

    Returns:
        them (``None`` without any), the provenance record's account of
        them, and the teacher calls made (0 on a cache hit)
    """
    if refit_pool is None:
        return None, info, 0
    refit_files, skipped, offscale, calls = _teacher_files("refit", teacher, refit_pool.files, refit_pool.hashes,
                                                           dims, config, target_range)
    hash_of = dict(zip(refit_pool.files, refit_pool.hashes))
    kept = list(refit_files.reference.index)  # content-hash order, as in refit_pool
    report = {
        **info,
        "files": len(refit_files),
        "files_sha256": Pool(kept, [hash_of[f] for f in kept]).sha256,
        "skipped_count": len(refit_pool.missing) + len(skipped),
        "skipped": _relative_skips(refit_pool.missing + skipped, refit_pool.files),
        "offscale_left_out": len(offscale),
        "offscale_examples": [os.path.basename(f) for f in offscale][:20],
    }
    return (refit_files if len(refit_files) else None), report, calls


def _teacher_files(name: str, teacher, files: list[str], hashes: list[str], dims: list[int], config: DistillConfig,
                   target_range: tuple[float, float]) -> tuple[ValidationSet, list[tuple[str, str]], list[str], int]:
    r"""Whole, clean files with the teacher's outputs (cached by content), off-scale ones left out.

    Returns:
        the :class:`ValidationSet` ``name``, the unreadable ``(file, reason)``
        pairs, the files left out as off-scale, and the teacher calls made
        (0 on a cache hit)
    """
    label = {"teacher": "heldout"}.get(name, name)  # the held-out files' cache label predates the set's name
    targets, signals, skipped, calls = annotate.annotate_files(teacher, files, hashes, label=label,
                                                               batch_size=config.teacher_batch)
    ok = annotate.in_range(targets.to_numpy(), target_range)
    kept = targets[ok]
    names = [DIMENSIONS[d] for d in dims]
    return ValidationSet(name, annotate.AudioFiles(kept.index), kept[names]), skipped, list(targets.index[~ok]), calls


def _tune_on_whole_files(config: DistillConfig, student, train_files: ValidationSet | None, dims: list[int],
                         validation: typing.Sequence[ValidationSet], result, device: str) -> tuple[dict, dict]:
    r"""Tune the best epoch's network on the whole training files; keep it unless held-out CCC drops.

    :func:`benchmark.distill.tune.tune` on ``train_files``
    (:func:`_training_files`). The best epoch's held-out figures (computed
    for exactly those weights) are the comparison; tuning that lowers the
    mean CCC vs the teacher on the held-out files is undone.

    Returns:
        the report for the provenance record, and the held-out figures of
        the network it leaves (the comparison for :func:`_refit_head`)
    """
    from benchmark.distill import train as training, tune

    best = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0].to_dict()
    if not config.whole_file_epochs:
        return {"applied": False, "reason": "switched off (--whole-file-epochs 0)"}, best
    if train_files is None or len(train_files) < 2:
        return {"applied": False, "reason": "fewer than 2 training files with an in-range teacher output"}, best
    original = {k: v.clone() for k, v in student.state_dict().items()}
    settings = tune.TuneSettings(epochs=config.whole_file_epochs, lr=config.whole_file_lr,
                                 batch_size=config.batch_size, weight_decay=config.weight_decay,
                                 mse_weight=config.mse_weight)
    report = tune.tune(student, train_files, dims, settings, seed=config.seed,
                       loss_weights=config.loss_weights, device=device)
    if training.selection_key(validation) == "none":
        return {"applied": True, **report, "checked": "no held-out files"}, {}
    figures, dropped, after = _against(student, validation, best, device)
    if dropped:
        student.load_state_dict(original)
        return {"applied": False, "reason": f"{dropped} on the held-out files", **report, "validation": figures}, best
    return {"applied": True, **report, "validation": figures}, after


def _refit_head(config: DistillConfig, student, train_files: ValidationSet | None,
                refit_files: ValidationSet | None, dims: list[int], validation: typing.Sequence[ValidationSet],
                baseline: dict, device: str) -> tuple[dict, typing.Any]:
    r"""Refit the student's output layer in closed form; keep it unless held-out CCC drops.

    ``train_files`` holds the whole training files with the teacher's outputs
    (:func:`_training_files`), ``refit_files`` the extra files of
    ``config.refit_data`` (:func:`_refit_files`); the head is fitted on
    both. ``baseline`` holds the held-out figures of
    the student as it is (the best epoch's, or the tuned network's:
    :func:`_tune_on_whole_files`); a refit that lowers the mean CCC vs the
    teacher on the held-out files below them is undone.

    Returns:
        the report for the provenance record, and the
        :class:`~benchmark.distill.refit.HeadData` it was fitted on (``None``
        without a refit), from which :func:`_int8_guard` refits again
    """
    from benchmark.distill import refit, train as training

    if not config.head_refit:
        return {"applied": False, "reason": "switched off (--no-head-refit)"}, None
    if not refit.has_linear_head(student):
        return {"applied": False, "reason": f"{type(student).__name__} has no linear output layer 'head'"}, None
    if train_files is None or not len(train_files):
        return {"applied": False, "reason": "no training file with an in-range teacher output"}, None
    student.to(device)
    original = {k: v.clone() for k, v in student.head.state_dict().items()}
    heldout = next((v for v in validation if v.name == "teacher" and len(v)), None)
    fitted = train_files
    if refit_files is not None:
        fitted = ValidationSet("refit", train_files.signals + refit_files.signals,
                               pd.concat([train_files.reference, refit_files.reference]))
    data = refit.head_data(student, fitted, dims, heldout, device)
    report = refit.refit_from(student, data, seed=config.seed)
    if refit_files is not None:
        report["fitted_on"] = f"{len(train_files)} whole training files and {len(refit_files)} refit files"
    if training.selection_key(validation) == "none":
        return {"applied": True, **report, "checked": "no held-out files"}, data
    figures, dropped, _ = _against(student, validation, baseline, device)
    if dropped:
        student.head.load_state_dict(original)
        return {"applied": False, "reason": f"{dropped} on the held-out files", **report, "validation": figures}, data
    return {"applied": True, **report, "validation": figures}, data


def _against(student, validation: typing.Sequence[ValidationSet], before: dict,
             device: str = "cpu") -> tuple[dict, str, dict]:
    r"""Held-out figures ``before`` a change and of ``student`` now.

    Returns:
        ``{column: {'before': ..., 'after': ...}}``; if the selecting mean
        CCC dropped, ``'lowered <column>'`` (else ``''``); the figures now
    """
    from benchmark.distill import train as training

    key = training.selection_key(validation)
    after = training.evaluate(student, validation, device)
    figures = {k: {"before": _num(before.get(k)), "after": _num(after[k])} for k in after}
    return figures, f"lowered {key}" if after[key] < before[key] else "", after


INT8_LOSS_LIMIT = 0.01
r"""Held-out CCC the int8 twin of a refitted head may lose on any dimension (the issue's int8 target)."""


def _int8_guard(config: DistillConfig, student, data, validation: typing.Sequence[ValidationSet], baseline: dict,
                before_refit: dict, report: dict, export: typing.Callable[[], None], scored: dict) -> dict:
    r"""Raise a refitted head's penalty until its int8 twin loses at most :data:`INT8_LOSS_LIMIT` held-out CCC.

    A small penalty can lean on directions of the features that 8-bit
    activations blur. The exported pair is scored on the held-out files; while
    the int8 model loses more than the limit on a dimension and a larger
    penalty is left, the head is refitted with the next larger one and the
    pair exported again (from the same ``data``: the network before the head
    does not change). If the head that holds the limit scores below
    ``baseline`` (the held-out figures of ``before_refit``, the student's
    weights before the refit) on the held-out files, ``before_refit`` is
    exported instead, as :func:`_refit_head` promises.
    """
    from benchmark.distill import refit

    heldout = [v for v in validation if v.name == "teacher" and len(v)]
    alpha, losses = report["alpha"], {}
    while True:
        fp32 = _score_onnx(config.out_path, heldout, "fp32", scored)
        int8 = _score_onnx(config.int8_path, heldout, "int8", scored)
        loss = max(fp32[k] - int8[k] for k in fp32 if k != "teacher_mean" and None not in (fp32[k], int8[k]))
        losses[str(alpha)] = _num(loss)
        larger = [a for a in refit.ALPHAS if a > alpha]
        if loss <= INT8_LOSS_LIMIT or not larger:
            break
        alpha = larger[0]
        refit.refit_from(student, data, alphas=(alpha,), seed=config.seed)
        export()
    report = {**report, "int8_loss_by_alpha": losses}
    if alpha == report["alpha"]:
        return report
    figures, dropped, _ = _against(student, validation, baseline)
    report.update(alpha=alpha, validation=figures, chosen_on=report["chosen_on"] + ", raised for the int8 model")
    if dropped:
        student.load_state_dict(before_refit)
        export()
        report.update(applied=False, reason=f"{dropped} on the held-out files once the int8 model held the limit")
    return report


def _validation_sets(
    teacher, held: Pool, gold_spec, gold_set, dims, rank, config, target_range
) -> tuple[list[ValidationSet], dict, int]:
    names = [DIMENSIONS[d] for d in dims]
    info: dict = {"skipped": [], "gold": None, "teacher_vs_gold": {}, "offscale": []}
    if rank != 0:  # only rank 0 validates
        return [ValidationSet("teacher", [], pd.DataFrame(columns=names))], info, 0
    heldout, skipped, offscale, calls = _teacher_files("teacher", teacher, held.files, held.hashes, dims, config,
                                                       target_range)
    info["skipped"] += skipped
    info["offscale"] = [f"{os.path.basename(f)} (held-out, whole file)" for f in offscale]
    sets = [heldout]
    if gold_set is None and gold_spec is not None:
        from benchmark.data.datasets import load_split

        dataset, split, data = gold_spec.split(":")
        gold_set = load_split(dataset, split, data=data)
    if gold_set is not None:
        files = [str(f) for f in gold_set.files]
        teacher_gold, _, gold_skipped, gold_calls = annotate.annotate_files(
            teacher, files, label=f"gold-{gold_set.audb_name}-{gold_set.split}", batch_size=config.teacher_batch)
        calls += gold_calls
        info["skipped"] += gold_skipped
        truth = gold_set.truth.copy()
        truth.index = truth.index.astype(str)
        truth = truth.loc[teacher_gold.index, [d for d in names if d in truth.columns]]
        sets.append(ValidationSet("gold", annotate.AudioFiles(truth.index), truth))
        info["gold"] = {**gold_set.provenance(), "files": len(truth)}
        info["teacher_vs_gold"] = {
            d: _num(_ccc(truth[d].to_numpy(), teacher_gold.loc[truth.index, d].to_numpy())) for d in truth.columns
        }
    return sets, info, calls


def load_export(folder: Path, name: str):
    r"""An exported audonnx model folder as the benchmark loads it (:func:`benchmark.registry.load_model`).

    Args:
        folder: the folder :func:`distill` exports (fp32 or int8)
        name: what the model is called in messages

    """
    from benchmark.registry import ModelEntry, load_model

    entry = ModelEntry(
        name=name, kind="audonnx", role="student", source={"path": str(folder)}, sampling_rate=16000,
        outputs={d: d for d in DIMENSIONS}, description="", root=Path(folder).parent,
    )
    return load_model(entry, registry={})


def _score_onnx(folder: Path, validation: typing.Sequence[ValidationSet], label: str,
                scored: dict | None = None) -> dict[str, float]:
    r"""CCC of an exported model folder on the validation sets, through the benchmark's own loader.

    Files run a thread each (the loader's onnxruntime session has one; its
    outputs do not depend on the order). ``scored`` keeps every set's figures
    by the model file's hash: the int8 check and the provenance record score
    the same export once.
    """
    from benchmark.distill.train import per_file

    scored = {} if scored is None else scored
    onnx_sha = _file_sha(folder / "model.onnx")
    model = None
    metrics = {}
    for vs in validation:
        if not len(vs):
            continue
        key = (onnx_sha, vs.name, len(vs))
        if key not in scored:
            model = model or load_export(folder, f"distilled-{label}")
            pred = np.stack(per_file(lambda s: model(s, 16000), vs.signals))
            figures, values = {}, []
            for d in vs.reference.columns:
                figures[f"{vs.name}_{d}"] = _num(_ccc(vs.reference[d].to_numpy(), pred[:, DIMENSIONS.index(d)]))
                values.append(figures[f"{vs.name}_{d}"])
            figures[f"{vs.name}_mean"] = _num(float(np.mean(values)))
            scored[key] = figures
        metrics.update(scored[key])
    return metrics


def _ccc(truth, prediction) -> float:
    from benchmark.distill.train import ccc

    return ccc(truth, prediction)


def _num(value) -> float | None:
    r"""JSON-friendly float: rounded, ``None`` for NaN."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return None if not np.isfinite(value) else round(value, 6)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _relative_skips(skips: typing.Sequence[tuple[str, str]], files: typing.Sequence[str]) -> list[dict]:
    r"""Skipped files relative to the pool's common folder (no machine-specific prefix)."""
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:
        base = ""
    return [{"file": os.path.relpath(f, base) if base else f, "reason": r} for f, r in skips]


def _file_sha(path: Path) -> str:
    from benchmark.hashing import sha256_file

    return sha256_file(path)


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def _check_out(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(p.name not in OUTPUT_FILES for p in folder.iterdir())):
        raise DistillError(
            f"Output folder {folder} exists and holds other files than {', '.join(OUTPUT_FILES)}; "
            "choose another --out (the model folder is replaced as a whole)."
        )


def _check_unregistered_out(config: DistillConfig) -> None:
    r"""Refuse a ``--no-register`` run into a folder that ``models.yaml`` registers.

    It would replace the registered weights without updating the entry's
    ``sha256``, and the benchmark would then refuse the model.
    """
    out = config.out_path
    if not out.exists() or not config.models_path.exists():
        return
    for entry in _raw_entries(config.models_path):
        path = (entry.get("source") or {}).get("path") if isinstance(entry.get("source"), dict) else None
        if path and (config.models_path.parent / path).resolve() in (out, config.int8_path):
            raise DistillError(
                f"--no-register would overwrite {out}, the weights of '{entry.get('name')}' in "
                f"{config.models_path}, and leave its sha256 stale. Give --out DIR for a scratch run, "
                "or drop --no-register to replace the registered model."
            )


def _replace_folder(folder: Path, write: typing.Callable[[Path], typing.Any]) -> None:
    r"""Write a folder next to ``folder`` and swap it in: a crash never leaves half a model."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _device(requested: str, local_rank: int) -> str:
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise DistillError("--device cuda: no CUDA device is available; use --device cpu or auto.")
        return f"cuda:{local_rank}"
    return requested


PRECISIONS = ("fp32", "bf16")
r"""Arithmetic of the distillation training step (``--precision``)."""


def native_bf16(device: str) -> bool:
    r"""Whether ``device`` computes bfloat16 in hardware (AMX or AVX-512 BF16 on a CPU).

    Elsewhere bf16 is emulated and slower than float32.

    Examples:
        >>> isinstance(native_bf16("cpu"), bool)
        True

    """
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"))


def check_precision(precision: str, device: str) -> None:
    r"""Refuse a training precision ``device`` cannot run; note an emulated one.

    bf16 autocast makes a Wav2Small training step 1.6-1.9× faster on an
    Intel Xeon with AMX, but it is not the default: on the demo pool it
    ends lower than float32 with the same number of epochs (held-out mean
    CCC vs the teacher 0.722 instead of 0.739 after 7 epochs), and 10 bf16
    epochs (the same wall time as 7 in float32) reach only 0.721
    (``docs/distillation.md``).

    Raises:
        DistillError: for an unknown value, or bf16 on a CUDA device without bfloat16

    Examples:
        >>> check_precision("fp32", "cpu")

    """
    if precision not in PRECISIONS:
        raise DistillError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}.")
    if precision != "bf16" or native_bf16(device):
        return
    if device.startswith("cuda"):
        raise DistillError("--precision bf16: this CUDA device has no bfloat16 support; use --precision fp32.")
    print("--precision bf16: this CPU has no bfloat16 instructions (AMX or AVX-512 BF16); "
          "bf16 is emulated and slower than fp32.", flush=True)


def _deterministic(device: str) -> None:
    r"""Ask torch for deterministic kernels (bit-identical on the CPU; best effort on CUDA)."""
    import torch

    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def keep_freed_memory() -> bool:
    r"""Stop glibc from returning freed memory to the system; ``True`` if it took effect.

    A training step allocates and frees activations of 100+ MB. glibc
    serves blocks that large with ``mmap`` and unmaps them on ``free``, so
    every step faults in fresh zeroed pages again: on the 2-core demo
    machine a third of the distillation's CPU time went to the kernel.
    Raising the mmap and trim thresholds keeps those pages in the heap for
    the next step (measured: 23.1 s → 15.6 s wall for 12 Wav2Small steps,
    kernel time 14.5 s → 1.3 s). The process keeps its peak memory, which
    it needs again at the next step anyway. No effect (and ``False``)
    outside glibc; numbers are unaffected.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    limit = ctypes.c_int(2**31 - 1)
    return bool(mallopt(m_mmap_threshold, limit)) and bool(mallopt(m_trim_threshold, limit))


def _init_distributed() -> tuple[int, int, int]:
    r"""``(rank, world_size, local_rank)``; initialises the process group under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return dist.get_rank(), world_size, local_rank


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def _shutdown_distributed(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
