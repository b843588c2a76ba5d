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

from benchmark.distill import compare
from benchmark.distill.config import REAL_SPEECH_POOL, DistillConfig, DistillError
from benchmark.distill.registry_update import student_distilled, student_recipe

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
    r"""The command line, an option for each field of :class:`~benchmark.distill.config.DistillConfig` with help.

    Name, type, default, help and section come from the field
    (:func:`~benchmark.distill.config.option`); a switch that is on by
    default becomes ``--no-<name>``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmark distill",
        description="Train a student (Wav2Small, MobileNets) on a teacher's A/D/V outputs alone: no human "
        "labels. Writes weights/<student>/ (ONNX fp32), weights/<student>-int8/, a provenance record, "
        "results/distill/<student>/ (history, curve) and updates the student's models.yaml entries.",
        formatter_class=_HelpFormatter,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    hints = typing.get_type_hints(DistillConfig)
    for part in reversed(DistillConfig.__mro__[1:-1]):  # the parts, in field order
        for field in dataclasses.fields(part):
            if "help" not in field.metadata:
                continue  # a setting without an option (e.g. Hyper.final_lr)
            title = field.metadata.get("group", part.GROUP)
            group = groups.get(title) or groups.setdefault(title, parser.add_argument_group(title))
            _add_option(group, field, hints[field.name])
    return parser


def _add_option(group: argparse._ArgumentGroup, field: dataclasses.Field, hint: typing.Any) -> None:
    r"""The option(s) of one configuration field."""
    meta = field.metadata
    flag = "--" + field.name.replace("_", "-")
    help = argparse.SUPPRESS if meta["help"] is None else meta["help"]
    if hint is bool and field.default is False:  # a switch that is off by default: --<name> turns it on
        group.add_argument(flag, dest=field.name, action="store_true", default=False, help=help)
        return
    if hint is bool:
        if "positive" in meta:
            group.add_argument(flag, dest=field.name, action="store_true", default=field.default, help=meta["positive"])
        group.add_argument("--no-" + flag[2:], dest=field.name, action="store_false", help=help)
        return
    kwargs: dict[str, typing.Any] = {"default": field.default, "help": help}
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        kwargs.update(type=args[0], nargs=len(args))
    elif (args[0] if args else hint) is not str:  # argparse's default type is str
        kwargs["type"] = args[0] if args else hint
    for key in ("metavar", "choices"):
        if key in meta:
            kwargs[key] = meta[key]
    group.add_argument(flag, **kwargs)


RECIPE_KEYS = tuple(f.name for f in dataclasses.fields(DistillConfig) if f.metadata.get("recipe"))
r"""Settings a student's ``distilled.recipe`` in ``models.yaml`` may set (defaults for that student)."""


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    r"""A :class:`~benchmark.distill.config.DistillConfig` from parsed arguments."""
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    return DistillConfig(**{k: v for k, v in vars(args).items() if k in fields})


def config_from_argv(argv: typing.Sequence[str]):
    r"""The configuration of a command line: options given > the student's recipe > defaults.

    The student's ``models.yaml`` entry may carry ``distilled.recipe``
    (e.g. ``{epochs: 12}``): settings that student needs instead of the
    global defaults. The registry entry is the recipe.
    """
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
    from benchmark import DataError, RegistryError
    from benchmark.distill.annotate import TeacherError
    from benchmark.distill.checkpoint import CheckpointMismatch
    from benchmark.distill.pipeline import distill
    from benchmark.distill.registry_update import RegistryUpdateError
    from benchmark.distill.train import Interrupted, NoTrainingData

    try:
        config, committed = compare.plan(config_from_argv(argv))
        if committed is not None:
            print(
                f"{committed} is the committed '{config.student}' (models.yaml): distilling a candidate into "
                f"{config.out_path}, to compare by behaviour; --replace registers the new model instead"
            )
        pool = str(student_distilled(config.student, config.models_path).get("data", ""))
        if REAL_SPEECH_POOL in pool and not config.real_speech:
            print(
                f"note: the committed '{config.student}' was distilled on {pool}; without --real-speech "
                "emodb=PATH (an original EmoDB release) this run trains on another pool and gives another model"
            )
        outcome = distill(config)
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
        if committed is not None:
            print(compare.judge(config, outcome.out, committed))
    return EXIT_OK


def _report(outcome) -> None:
    p = outcome.provenance
    onnx = p["validation"]["onnx"]
    print(f"student: {outcome.out} (sha256 {p['student']['sha256'][:12]})")
    print(f"int8:    {outcome.out_int8} (sha256 {p['student']['int8_sha256'][:12]})")
    print(
        f"teacher: {p['teacher']['name']} ({p['teacher']['sha256'][:12]}); "
        f"{p['data']['train_files']} training files, {p['data']['crops']} crops, "
        f"{p['data']['skipped_count']} skipped; {p['teacher_calls']} teacher calls"
    )
    for label in ("fp32", "int8"):
        scores = ", ".join(f"{k} {v:.3f}" for k, v in onnx[label].items() if v is not None)
        print(f"CCC {label}: {scores}")
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
