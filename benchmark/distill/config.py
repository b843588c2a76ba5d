"""The settings of a distillation run and where its outputs go.

:class:`DistillConfig` is what ``python -m benchmark distill`` builds from
its options; a student's ``distilled.recipe`` in ``models.yaml``
(:func:`benchmark.distill.registry_update.student_recipe`) supplies defaults of its own.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from benchmark import PROJECT_ROOT, cache_dir, results_root, sha256_text
from benchmark.distill.crops import Augmentation, Recipe


class DistillError(ValueError):
    r"""The distillation cannot run as configured; the message says how to fix it."""


PRECISIONS = ("fp32", "bf16")
r"""Arithmetic of the distillation training step (``--precision``)."""


TARGET_RANGE = (-0.5, 1.5)
r"""Plausible teacher outputs on the 0..1 scale, with a margin of half the scale.

A regression teacher can fail without returning NaN: one near-zero denominator in a feature
(e.g. a coefficient of variation) sends its output to -150. Such targets would dominate the CCC
of any batch: crops with them are not trained on, held-out files with them not scored (counted
in the provenance record).
"""


def option(
    default: typing.Any,
    help: str | None,
    *,
    metavar: str | tuple[str, ...] | None = None,
    choices: typing.Sequence[str] | None = None,
    group: str | None = None,
    recipe: bool = False,
    positive: str | None = None,
) -> typing.Any:
    r"""A configuration field that is also a command-line option (:func:`benchmark.distill.cli.build_parser`).

    Args:
        default: the field's default, also the option's
        help: the option's help (``None``: a hidden option)
        metavar: name(s) of the value(s) in the help
        choices: the values allowed
        group: help section (default: the part's ``GROUP``)
        recipe: a student's ``distilled.recipe`` in ``models.yaml`` may set it
        positive: for a switch that is on by default, the help of an explicit
            ``--<name>`` next to ``--no-<name>``

    Examples:
        >>> option(3, "crops per file").metadata["help"]
        'crops per file'

    """
    metadata = {"metavar": metavar, "choices": choices, "group": group, "recipe": recipe, "positive": positive}
    metadata = {"help": help, **{k: v for k, v in metadata.items() if v is not None}}
    return dataclasses.field(default=default, metadata=metadata)


REAL_SPEECH_POOL = "EmoDB train speakers"
r"""How the records name the files ``--real-speech`` adds to the pool (``distilled.data`` in ``models.yaml``)."""


@dataclasses.dataclass(frozen=True)
class Task:
    r"""What to distil: student, teacher, training audio, where the result goes."""

    GROUP: typing.ClassVar[str] = "what to distil"

    student: str = option(
        "wav2small",
        "student architecture (wav2small, wav2small-17k, mobilenetv4-conv-small, ...); also its models.yaml name",
    )
    teacher: str = option("egemaps-teacher", "teacher: a models.yaml name")
    data: str = option(
        "demo",
        "training audio: 'demo' (the embedded unlabeled pool), a folder, an audio file, a "
        "list file (.txt/.lst/.csv, one path per line) or a glob such as 'audio/**/*.wav'",
    )
    refit_data: str = option(
        "auto",
        "more audio, used only whole and clean, that the output layer is refitted on next to the "
        "training files: 'demo' (the embedded demo-refit database), a folder, list or glob as for --data, 'none', "
        "or 'auto' ('demo' with --data demo, else none); pool files in it are dropped",
        metavar="SPEC",
    )
    real_speech: str | None = option(
        None,
        "add the train speakers of an original EmoDB release (emodb=PATH; speakers 03, 08, 09, 10, 11, 13) "
        "to the pool, labelled by the teacher like the rest; its test speakers are never read",
        metavar="emodb=PATH",
    )
    max_files: int = option(0, "use at most N files of the pool (0: all)", metavar="N")
    out: str | None = option(
        None, "model folder (default: weights/<student>); the int8 model goes to DIR-int8", metavar="DIR"
    )
    models: str | None = option(None, "model registry (default: models.yaml)", metavar="PATH")
    register: bool = option(True, "do not update the student's models.yaml entries")
    replace: bool = option(
        False,
        "register the new model even where models.yaml has a committed one for the student; without it "
        "a re-distillation goes to a candidate folder, is compared with the committed model by behaviour "
        "on the demo test splits, and the committed model is kept (benchmark/distill/compare.py)",
    )
    compare_files: int = option(
        0, "files of each demo test split that the comparison with a committed model scores (0: all)", metavar="N"
    )


@dataclasses.dataclass(frozen=True)
class Hyper:
    r"""Optimisation hyper-parameters; all of them are part of the checkpoint fingerprint.

    Args:
        epochs: passes over the training files (one augmentation variant of each file per epoch)
        batch_size: crops per step (per process under DDP)
        lr: peak learning rate of AdamW
        weight_decay: AdamW weight decay
        warmup: fraction of all steps with a linear warm-up
        schedule: ``'cosine'`` (warm-up, then cosine decay to ``lr * final_lr``)
            or ``'onecycle'`` (warm-up, then linear decay to ``lr * final_lr``)
        final_lr: learning rate at the end, relative to ``lr``
        mse_weight: weight of an MSE term added to ``1 - mean CCC``
        loss_weights: weights of arousal, dominance and valence in the
            CCC part of the loss (equal weights: the plain mean). They
            trade one dimension against the others, since all share the
            student's trunk (``docs/distillation.md``)
        grad_clip: maximum gradient norm (0: no clipping)
        bn_calibration: clean training crops to re-estimate BatchNorm
            statistics on before every validation (0: keep the running averages)
        bn_freeze_epochs: train the last N epochs with BatchNorm statistics
            frozen: re-estimated on the ``bn_calibration`` clean crops for
            the weights of that moment, then used in inference mode, so
            the network adapts to the statistics it will be run with
            (a MobileNet trained long with per-batch statistics comes to
            depend on the other crops of its batch; ``docs/distillation.md``)
        ema: decay per step of an exponential moving average of the
            weights; validation, model selection and export use the
            averaged weights (0: the raw weights)
        seed: seeds the student's initialisation and the batch order
        precision: ``'fp32'``, or ``'bf16'``: the training step runs under
            bfloat16 autocast (weights, optimiser state, loss, BatchNorm
            calibration, validation and export stay in float32)

    """

    GROUP: typing.ClassVar[str] = "training"

    epochs: int = option(7, "passes over the training files", recipe=True)
    batch_size: int = option(16, "crops per step (per process)", recipe=True)
    lr: float = option(1.5e-3, "peak learning rate (AdamW)", recipe=True)
    weight_decay: float = option(0.01, "decoupled weight decay (AdamW)", recipe=True)
    warmup: float = option(0.05, "fraction of steps with linear warm-up", recipe=True)
    schedule: str = option("cosine", "decay after warm-up", choices=("cosine", "onecycle"), recipe=True)
    final_lr: float = 0.02
    mse_weight: float = option(0.5, "loss = 1 - mean CCC + w * MSE", recipe=True)
    loss_weights: tuple[float, float, float] = option(
        (1.0, 1.0, 1.0),
        "weights of arousal, dominance and valence in the CCC part of the loss; they trade one "
        "dimension against the others",
        metavar=("A", "D", "V"),
        recipe=True,
    )
    grad_clip: float = 1.0
    bn_calibration: int = option(
        192,
        "re-estimate BatchNorm statistics on this many clean crops before each validation (0: off)",
        metavar="CROPS",
        recipe=True,
    )
    bn_freeze_epochs: int = option(
        0,
        "train the last N epochs with BatchNorm statistics frozen (recalibrated, then inference mode)",
        metavar="N",
        recipe=True,
    )
    ema: float = option(
        0.99, "decay per step of the weight average that is validated and exported (0: off)", recipe=True
    )
    seed: int = option(0, "seeds crops, augmentation, init and batch order")
    precision: str = option(
        "fp32",
        "arithmetic of the training step: float32, or bfloat16 autocast (faster where the hardware has "
        "bf16, e.g. AMX or recent GPUs; weights, validation and export stay float32)",
        choices=PRECISIONS,
        group="running",
        recipe=True,
    )


@dataclasses.dataclass(frozen=True)
class Crops:
    r"""How training crops are cut and augmented (:class:`~benchmark.distill.crops.Recipe`)."""

    GROUP: typing.ClassVar[str] = "training"

    crop_seconds: float = option(
        Recipe.crop_seconds, "longest training crop; shorter files are used whole (never padded)", recipe=True
    )
    bucket_seconds: float = option(
        Recipe.bucket_seconds,
        "crop lengths are cut down to multiples of this; a batch holds crops of one length",
        recipe=True,
    )
    variants: int = option(
        Recipe.variants,
        "crops per file, cycled over epochs: the first clean, the others "
        "randomly augmented (teacher runs once per crop)",
        recipe=True,
    )
    augment: bool = option(True, "no noise/babble/gain/filter augmentation")
    # voice augmentation: on by default since the re-distillation of 0.13.0 tracked the teacher better under
    # voice shifts and per sex, without losing a target (docs/distillation.md)
    aug_pitch: float = option(
        0.5,
        "probability that an augmented crop is pitch-shifted (uniform -4..+4 semitones, "
        "formants kept); the teacher labels the shifted crop",
        metavar="P",
        recipe=True,
    )
    aug_formant: float = option(
        0.5,
        "probability of a formant / vocal-tract-length warp (factor 0.85..1.15, pitch kept)",
        metavar="P",
        recipe=True,
    )
    aug_speed: float = option(
        0.0, "probability of a speed change (factor 0.9..1.1, tempo and pitch, like a tape)", metavar="P", recipe=True
    )
    aug_tilt: float = option(
        0.0, "probability of a spectral tilt (-3..+3 dB per octave around 1 kHz)", metavar="P", recipe=True
    )
    aug_channel: float = option(
        0.0,
        "probability of a recording channel (band-pass 50-400 Hz to 3-8 kHz, soft clipping)",
        metavar="P",
        recipe=True,
    )


@dataclasses.dataclass(frozen=True)
class Finishing:
    r"""What happens after training: the output-layer refit (:mod:`~benchmark.distill.refit`)."""

    GROUP: typing.ClassVar[str] = "training"

    head_refit: bool = option(
        True,
        "keep the trained output layer instead of refitting it in closed form (ridge) "
        "on the whole training files (and --refit-data) after training",
        recipe=True,
    )


@dataclasses.dataclass(frozen=True)
class Validation:
    r"""What every epoch is validated on: held-out pool files, a gold split, plausible teacher outputs."""

    GROUP: typing.ClassVar[str] = "training"

    val_fraction: float = option(0.1, "pool files held out to validate against the teacher", recipe=True)
    target_range: tuple[float, float] = option(
        TARGET_RANGE,
        "teacher outputs outside this range count as teacher failures: those crops are not trained "
        "on, those held-out files not scored (reported in the provenance)",
        metavar=("LOW", "HIGH"),
    )
    gold: str = option(
        "auto",
        "labelled split to report CCC vs human labels on ('auto': msppodcast:test-2 with "
        "--data demo; 'none'); never test-1, the benchmark's test set",
        metavar="DATASET:SPLIT[:demo|real]",
    )


@dataclasses.dataclass(frozen=True)
class Runtime:
    r"""Where and how the run computes; none of it changes the weights (on the CPU)."""

    GROUP: typing.ClassVar[str] = "running"

    device: str = option("auto", "auto (CUDA if available), cpu, cuda")
    threads: int = option(0, "torch CPU threads (0: all cores; 2 under --numerics portable on the CPU)")
    numerics: str = option(
        "portable",
        "CPU kernels: 'portable' caps torch, oneDNN, MKL, numpy and OpenBLAS at paths every x86-64 CPU with AVX2 "
        "runs and uses 2 threads, so a seed gives the same bits on one machine (benchmark/numerics.py); 'native' "
        "uses this CPU's fastest kernels",
        choices=("portable", "native"),
    )
    resume: bool = option(
        True,
        "discard an existing checkpoint and start fresh",
        positive="continue an interrupted run with the same settings (the default)",
    )
    checkpoint_every: int = option(50, "steps between checkpoints (also written at every epoch end)", metavar="STEPS")
    teacher_batch: int = option(64, "signals per teacher call")
    teacher_workers: int = option(0, "threads of a teacher that can use several (e.g. eGeMAPS; 0: --threads)")
    progress: bool = option(True, "hide progress bars")
    stop_after_steps: int | None = option(None, None)


VOICE_OPTIONS = ("aug_pitch", "aug_formant", "aug_speed", "aug_tilt", "aug_channel")
r"""The voice augmentation options of :class:`Crops` (each the probability of one transform)."""

P = typing.TypeVar("P")


@dataclasses.dataclass(frozen=True)
class DistillConfig(Runtime, Validation, Finishing, Crops, Hyper, Task):
    r"""Everything that defines a distillation run (defaults: ``python -m benchmark distill``).

    One flat set of settings made of parts, each declared once with its
    default and its command-line help (:func:`option`): :class:`Task`,
    :class:`Hyper`, :class:`Crops`, :class:`Finishing`, :class:`Validation`,
    :class:`Runtime` (fields in that order; ``python -m benchmark distill``
    has an option for each field with help). :meth:`part` gives one part.

    Args:
        student: architecture of :func:`benchmark.students.build`; also the registry name
        teacher: registry name of the teacher
        data: ``'demo'`` (unlabeled demo pool), a folder, list file or glob of audio
        real_speech: ``'emodb=PATH'``: an original EmoDB release whose train
            speakers join the pool (:func:`benchmark.distill.teacher.pool_sources`)
        out: model folder (default ``weights/<student>``); the int8 model goes to ``<out>-int8``
        epochs, batch_size, lr, weight_decay, warmup, schedule, final_lr, mse_weight, loss_weights,
        grad_clip, bn_calibration, bn_freeze_epochs, ema, seed, precision:
            see :class:`Hyper`
        crop_seconds, bucket_seconds, variants, augment, aug_pitch, aug_formant, aug_speed, aug_tilt,
        aug_channel: how training crops are cut and augmented, see :class:`Crops`
        max_files: use at most this many pool files (content-hash order; 0: all)
        val_fraction: pool files held out to validate against the teacher
        head_refit: after training, replace the student's output layer by its
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
        threads: torch CPU threads (0: all cores, divided among DDP processes;
            :data:`~benchmark.numerics.PORTABLE_THREADS` for a portable run on the CPU)
        numerics: ``'portable'`` (kernels capped at AVX2, pinned host settings;
            :mod:`benchmark.numerics`) or ``'native'``
        resume: continue an interrupted run of the same configuration
        checkpoint_every: steps between checkpoints (also at every epoch end)
        teacher_batch: signals per teacher ``predict_batch`` call
        teacher_workers: threads of a teacher that parallelises ``predict_batch``
            (one with a ``num_workers`` attribute, like the eGeMAPS teacher); 0: ``threads``
        models: path of ``models.yaml`` (default: the project's)
        register: update the student's ``models.yaml`` entries
        progress: show progress bars
        stop_after_steps: stop as if killed after this many steps (testing resume)

    Examples:
        >>> config = DistillConfig(epochs=3)
        >>> config.part(Hyper).epochs, config.part(Runtime).device
        (3, 'auto')

    """

    def __post_init__(self):
        # settings that leave nothing to train (or to export) fail here, before the teacher runs
        counts = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "variants": self.variants,
        }
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
            wrong.append(
                f"loss_weights={shown} (must be three weights, for arousal, dominance and valence, "
                "none negative, not all 0)"
            )
        wrong += [
            f"{k}={getattr(self, k)} (must be a probability, 0..1)"
            for k in VOICE_OPTIONS
            if not 0.0 <= getattr(self, k) <= 1.0
        ]
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

    def part(self, kind: type[P]) -> P:
        r"""The part ``kind`` (e.g. :class:`Hyper`) of this configuration."""
        return kind(**{f.name: getattr(self, f.name) for f in dataclasses.fields(kind)})

    def hyper(self) -> Hyper:
        return self.part(Hyper)

    def recipe(self) -> Recipe:
        return Recipe(
            crop_seconds=self.crop_seconds,
            bucket_seconds=self.bucket_seconds,
            variants=self.variants,
            seed=self.seed,
            augmentation=dataclasses.replace(
                Augmentation() if self.augment else Augmentation.off(),
                **{f"{k.removeprefix('aug_')}_prob": getattr(self, k) for k in VOICE_OPTIONS},
            ),
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


def checkpoint_path(out: Path) -> Path:
    r"""Training checkpoint of the run that writes ``out`` (in the cache, not in the model folder)."""
    return cache_dir("distill", "runs", f"{out.name}-{sha256_text(str(out))[:10]}") / "checkpoint.pt"
