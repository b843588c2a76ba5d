"""Command line of the distillation stage: ``python -m benchmark distill [options]``.

Also ``nox -s distill -- [options]`` and, for several GPUs,
``torchrun --nproc_per_node=N -m benchmark distill [options]``.
With no options it distils Wav2Small from the offline eGeMAPS teacher
on the embedded demo pool, with no configuration needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    r"""Shows defaults, but not for switches and options without one.

    ``ArgumentDefaultsHelpFormatter`` would print ``(default: True)`` after
    ``--no-register``, which reads as if registration were off by default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from benchmark.distill.pipeline import PRECISIONS, DistillConfig

    d = DistillConfig()
    parser = argparse.ArgumentParser(
        prog="python -m benchmark distill",
        description="Train a student (Wav2Small, MobileNets) on a teacher's A/D/V outputs alone: no human "
        "labels. Writes weights/<student>/ (ONNX fp32), weights/<student>-int8/, a provenance record, "
        "results/distill/<student>/ (history, curve) and updates the student's models.yaml entries.",
        formatter_class=_HelpFormatter,
    )
    what = parser.add_argument_group("what to distil")
    what.add_argument("--student", default=d.student,
                      help="student architecture (wav2small, wav2small-2.0, mobilenetv4-conv-small, ...); "
                      "also its models.yaml name")
    what.add_argument("--teacher", default=d.teacher, help="teacher: a models.yaml name")
    what.add_argument("--data", default=d.data,
                      help="training audio: 'demo' (the embedded unlabeled pool), a folder, an audio file, a "
                      "list file (.txt/.lst/.csv, one path per line) or a glob such as 'audio/**/*.wav'")
    what.add_argument("--refit-data", default=d.refit_data, metavar="SPEC",
                      help="more audio, used only whole and clean, that the output layer is refitted on next to the "
                      "training files: 'demo' (the embedded demo-refit database), a folder, list or glob as for "
                      "--data, 'none', or 'auto' ('demo' with --data demo, else none); pool files in it are dropped")
    what.add_argument("--max-files", type=int, default=d.max_files, metavar="N",
                      help="use at most N files of the pool (0: all)")
    what.add_argument("--out", default=None, metavar="DIR",
                      help="model folder (default: weights/<student>); the int8 model goes to DIR-int8")
    what.add_argument("--models", default=None, metavar="PATH", help="model registry (default: models.yaml)")
    what.add_argument("--no-register", dest="register", action="store_false",
                      help="do not update the student's models.yaml entries")

    opt = parser.add_argument_group("training")
    opt.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training files")
    opt.add_argument("--batch-size", type=int, default=d.batch_size, help="crops per step (per process)")
    opt.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    opt.add_argument("--weight-decay", type=float, default=d.weight_decay, help="decoupled weight decay (AdamW)")
    opt.add_argument("--warmup", type=float, default=d.warmup, help="fraction of steps with linear warm-up")
    opt.add_argument("--schedule", choices=("cosine", "onecycle"), default=d.schedule,
                     help="decay after warm-up")
    opt.add_argument("--mse-weight", type=float, default=d.mse_weight, help="loss = 1 - mean CCC + w * MSE")
    opt.add_argument("--loss-weights", type=float, nargs=3, default=d.loss_weights, metavar=("A", "D", "V"),
                     help="weights of arousal, dominance and valence in the CCC part of the loss; they trade one "
                     "dimension against the others")
    opt.add_argument("--bn-calibration", type=int, default=d.bn_calibration, metavar="CROPS",
                     help="re-estimate BatchNorm statistics on this many clean crops before each validation (0: off)")
    opt.add_argument("--bn-freeze-epochs", type=int, default=d.bn_freeze_epochs, metavar="N",
                     help="train the last N epochs with BatchNorm statistics frozen (recalibrated, then inference mode)")
    opt.add_argument("--ema", type=float, default=d.ema,
                     help="decay per step of the weight average that is validated and exported (0: off)")
    opt.add_argument("--seed", type=int, default=d.seed, help="seeds crops, augmentation, init and batch order")
    opt.add_argument("--crop-seconds", type=float, default=d.crop_seconds,
                     help="longest training crop; shorter files are used whole (never padded)")
    opt.add_argument("--bucket-seconds", type=float, default=d.bucket_seconds,
                     help="crop lengths are cut down to multiples of this; a batch holds crops of one length")
    opt.add_argument("--variants", type=int, default=d.variants,
                     help="crops per file, cycled over epochs: the first clean, the others randomly augmented "
                     "(teacher runs once per crop)")
    opt.add_argument("--no-augment", dest="augment", action="store_false",
                     help="no noise/babble/gain/filter augmentation")
    opt.add_argument("--whole-file-epochs", type=int, default=d.whole_file_epochs, metavar="N",
                     help="after training, train N epochs more on the whole, clean training files with BatchNorm "
                     "statistics frozen, kept unless the held-out CCC drops (0: off; 1 is the tested setting)")
    opt.add_argument("--whole-file-lr", type=float, default=d.whole_file_lr,
                     help="learning rate of the whole-file tuning at its first step (decays to zero)")
    opt.add_argument("--no-head-refit", dest="head_refit", action="store_false",
                     help="keep the trained output layer instead of refitting it in closed form (ridge) on the "
                     "whole training files (and --refit-data) after training")
    opt.add_argument("--val-fraction", type=float, default=d.val_fraction,
                     help="pool files held out to validate against the teacher")
    opt.add_argument("--target-range", type=float, nargs=2, default=d.target_range, metavar=("LOW", "HIGH"),
                     help="teacher outputs outside this range count as teacher failures: those crops are not "
                     "trained on, those held-out files not scored (reported in the provenance)")
    opt.add_argument("--gold", default=d.gold, metavar="DATASET:SPLIT[:demo|real]",
                     help="labelled split to report CCC vs human labels on ('auto': msppodcast:test-2 with "
                     "--data demo; 'none'); never test-1, the benchmark's test set")

    run = parser.add_argument_group("running")
    run.add_argument("--device", default=d.device, help="auto (CUDA if available), cpu, cuda")
    run.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                     help="arithmetic of the training step: float32, or bfloat16 autocast (faster where the "
                          "hardware has bf16, e.g. AMX or recent GPUs; weights, validation and export stay float32)")
    run.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: all cores)")
    run.add_argument("--resume", dest="resume", action="store_true", default=True,
                     help="continue an interrupted run with the same settings (the default)")
    run.add_argument("--no-resume", dest="resume", action="store_false",
                     help="discard an existing checkpoint and start fresh")
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="STEPS",
                     help="steps between checkpoints (also written at every epoch end)")
    run.add_argument("--teacher-batch", type=int, default=d.teacher_batch, help="signals per teacher call")
    run.add_argument("--teacher-workers", type=int, default=d.teacher_workers,
                     help="threads of a teacher that can use several (e.g. eGeMAPS; 0: --threads)")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    run.add_argument("--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS)
    return parser


RECIPE_KEYS = (
    "epochs", "batch_size", "lr", "weight_decay", "warmup", "schedule", "mse_weight", "loss_weights", "bn_calibration",
    "bn_freeze_epochs", "ema", "crop_seconds", "bucket_seconds", "variants", "val_fraction", "precision",
    "whole_file_epochs", "whole_file_lr", "head_refit",
)
r"""Settings a student's ``distilled.recipe`` in ``models.yaml`` may set (defaults for that student)."""


def config_from_args(args: argparse.Namespace):
    r"""A :class:`~benchmark.distill.pipeline.DistillConfig` from parsed arguments."""
    from benchmark.distill.pipeline import DistillConfig

    fields = {f for f in DistillConfig.__dataclass_fields__}
    return DistillConfig(**{k: v for k, v in vars(args).items() if k in fields})


def config_from_argv(argv: typing.Sequence[str]):
    r"""The configuration of a command line: options given > the student's recipe > defaults.

    The student's ``models.yaml`` entry may carry ``distilled.recipe``
    (e.g. ``{epochs: 12}``): settings that student needs instead of the
    global defaults. The registry entry is the recipe.
    """
    from benchmark.distill.pipeline import DistillError, student_recipe

    config = config_from_args(build_parser().parse_args(list(argv)))
    recipe = student_recipe(config.student, config.models_path)
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise DistillError(
            f"{config.models_path}: distilled.recipe of '{config.student}' has unknown setting(s) "
            f"{', '.join(unknown)}; allowed: {', '.join(RECIPE_KEYS)}."
        )
    given = _given_options(argv)
    defaults = {}
    for key, value in recipe.items():
        if key in given:
            continue
        kind = type(getattr(config, key))
        try:
            defaults[key] = tuple(float(v) for v in value) if kind in (tuple, list) else kind(value)
        except (TypeError, ValueError):
            raise DistillError(
                f"{config.models_path}: distilled.recipe of '{config.student}' sets {key}: {value!r}, "
                f"which is not a {'list of numbers' if kind in (tuple, list) else kind.__name__}."
            ) from None
    return dataclasses.replace(config, **defaults)


def _given_options(argv: typing.Sequence[str]) -> set[str]:
    r"""Destinations of the options that appear on the command line."""
    probe = build_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(list(argv))))


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Run the distillation; returns the exit status (0 ok, 1 failed, 2 usage/configuration error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    build_parser().parse_args(argv)  # usage errors exit here, before anything is imported
    from benchmark.distill.annotate import DataError, TeacherError
    from benchmark.distill.pipeline import DistillError, distill
    from benchmark.distill.registry_update import RegistryUpdateError
    from benchmark.distill.train import CheckpointMismatch, Interrupted, NoTrainingData
    from benchmark.registry import RegistryError

    try:
        outcome = distill(config_from_argv(argv))
    except (DistillError, DataError, CheckpointMismatch, NoTrainingData, RegistryError, RegistryUpdateError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return EXIT_USAGE
    except TeacherError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return EXIT_FAILURE
    except Interrupted as ex:
        print(f"stopped: {ex} Re-run the same command to resume.", file=sys.stderr)
        return EXIT_FAILURE
    if outcome.out is not None:
        _report(outcome)
    return EXIT_OK


def _report(outcome) -> None:
    p = outcome.provenance
    onnx = p["validation"]["onnx"]
    print(f"student: {outcome.out} (sha256 {p['student']['sha256'][:12]})")
    print(f"int8:    {outcome.out_int8} (sha256 {p['student']['int8_sha256'][:12]})")
    print(f"teacher: {p['teacher']['name']} ({p['teacher']['sha256'][:12]}); "
          f"{p['data']['train_files']} training files, {p['data']['crops']} crops, "
          f"{p['data']['skipped_count']} skipped; {p['teacher_calls']} teacher calls")
    for label in ("fp32", "int8"):
        scores = ", ".join(f"{k} {v:.3f}" for k, v in onnx[label].items() if v is not None)
        print(f"CCC {label}: {scores}")
    tuning = p.get("whole_file_tuning") or {}
    if "files" in tuning:  # it ran (and was kept or undone)
        kept = "" if tuning.get("applied") else f"; undone: {tuning.get('reason')}"
        print(f"whole-file tuning: {tuning['epochs']} epoch(s) on {tuning['files']} training files "
              f"({p.get('whole_file_tuning_seconds', 0):.0f} s{_heldout_shift(tuning)}){kept}")
    elif tuning:
        print(f"no whole-file tuning: {tuning.get('reason')}")
    refit = p.get("head_refit") or {}
    if refit.get("applied"):
        print(f"output layer refitted (ridge, alpha {refit['alpha']:g}, {refit['fitted_on']}{_heldout_shift(refit)})")
    elif refit:
        print(f"output layer not refitted: {refit.get('reason')}")
    print(f"best epoch {p['training']['best_epoch']}; wall time {p['wall_seconds']:.0f} s")


def _heldout_shift(report: dict) -> str:
    r"""``', held-out mean CCC <before> -> <after>'`` of a stage's report, empty if unknown."""
    change = (report.get("validation") or {}).get("teacher_mean") or {}
    if change.get("before") is None or change.get("after") is None:
        return ""
    return f", held-out mean CCC {change['before']:.3f} -> {change['after']:.3f}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
