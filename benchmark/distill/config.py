"""The settings of a distillation run and where its outputs go.

:class:`DistillConfig` is what ``python -m benchmark distill`` builds from
its options; a student's ``distilled.recipe`` in ``models.yaml``
(:func:`student_recipe`) supplies defaults of its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from benchmark.distill import annotate
from benchmark.distill.annotate import Augmentation, Recipe
from benchmark.distill.train import Hyper
from benchmark.distill.tune import TuneSettings
from benchmark.hashing import sha256_text
from benchmark.paths import PROJECT_ROOT, cache_dir, results_root


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


def checkpoint_path(out: Path) -> Path:
    r"""Training checkpoint of the run that writes ``out`` (in the cache, not in the model folder)."""
    return cache_dir("distill", "runs", f"{out.name}-{sha256_text(str(out))[:10]}") / "checkpoint.pt"
