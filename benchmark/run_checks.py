"""Checks of a run's options before any work starts.

Counts are checked as the command line is parsed (argparse types: a bad
value exits 2 with argparse's usage message). What needs the registries
or the results folder (datasets, splits, robustness conditions, the
folder's settings and summary file) is checked by :func:`check_run`
before the first prediction, so a mistake never costs a predict phase
and never leaves a row behind.
"""

from __future__ import annotations

import argparse
import math
import os
import typing
from pathlib import Path

RAY_TIMEOUT_ENV = "SER_BENCHMARK_RAY_TIMEOUT"
"""Environment variable with the default of ``--ray-timeout`` (seconds)."""

RAY_TIMEOUT = 30.0
"""Seconds to wait for a Ray cluster named by ``--address`` when neither the option nor the variable says."""


EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit codes of the command line: done, some test failed, a usage error (as argparse), interrupted (Ctrl-C)."""


class UsageError(ValueError):
    r"""A run option that cannot work; the message names the option and the fix."""


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a{'n integer' if kind is int else ' number'}, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"give a finite number, not {text!r}")
    return value


def positive_int(text: str) -> int:
    r"""An argparse type: an integer of at least 1.

    Examples:
        >>> positive_int("3")
        3
        >>> positive_int("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: give 1 or more, not 0

    """
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"give 1 or more, not {value}")
    return value


def count_or_all(text: str) -> int:
    r"""An argparse type: an integer of at least 0 (0: no limit).

    Examples:
        >>> count_or_all("0")
        0
        >>> count_or_all("-5")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: give 0 (all) or more, not -5

    """
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"give 0 (all) or more, not {value}")
    return value


def non_negative_float(text: str) -> float:
    r"""An argparse type: a finite number of at least 0.

    Examples:
        >>> non_negative_float("0.5")
        0.5
        >>> non_negative_float("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: give 0 or more, not -1.0

    """
    value = float(_number(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"give 0 or more, not {value}")
    return value


def positive_float(text: str) -> float:
    r"""An argparse type: a finite number above 0.

    Examples:
        >>> positive_float("3")
        3.0
        >>> positive_float("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: give a number above 0, not 0.0

    """
    value = float(_number(text, float))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"give a number above 0, not {value}")
    return value


def ray_timeout_default() -> float:
    r"""Default of ``--ray-timeout``: :data:`RAY_TIMEOUT_ENV` if set, else :data:`RAY_TIMEOUT`.

    Raises:
        UsageError: the variable holds no positive number

    """
    text = os.environ.get(RAY_TIMEOUT_ENV, "")
    if not text.strip():
        return RAY_TIMEOUT
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError as ex:
        raise UsageError(f"{RAY_TIMEOUT_ENV}={text!r}: {ex} (seconds to wait for a Ray cluster)") from None


def check_run(
    args: argparse.Namespace, models: typing.Sequence[str], registry, dataset_registry, results_dir: Path | None = None
) -> None:
    r"""Check what a ``run`` asks for before any work; raise the first problem found.

    Args:
        args: the parsed ``run`` options
        models: the model names the run uses (known to ``registry``)
        registry: the model registry
        dataset_registry: the dataset registry
        results_dir: the results folder (default :func:`benchmark.paths.results_root`)

    Raises:
        UsageError: an option that cannot work with the registries
        benchmark.results.SettingsConflictError: the results folder was made with other settings
        benchmark.report.SummaryFileError: the folder holds a ``summary.csv`` the benchmark did not write

    """
    from benchmark import report, results
    from benchmark.data.datasets import check_splits

    if args.address and args.executor != "ray":
        raise UsageError(
            f"--address {args.address} needs --executor ray (a Ray cluster to join); add it or drop --address."
        )
    for name in models:
        registry[name]  # unknown names fail here, with the registered ones listed
    names = args.dataset or list(dataset_registry)
    unknown = [n for n in names if n not in dataset_registry]
    if unknown:
        raise UsageError(
            f"--dataset: Unknown dataset {', '.join(map(repr, unknown))}. Registered: {', '.join(dataset_registry)} "
            "(python -m benchmark list); add an entry to datasets.yaml or pass --datasets PATH."
        )
    try:
        check_splits(args.split, [dataset_registry[n] for n in names])
    except ValueError as ex:
        raise UsageError(f"--split: {ex}") from None
    check_conditions(args.conditions)
    settings = results.run_settings(args.seed, run_options(args), args.tests)
    results.check_settings(settings, results_dir)
    report.check_summary(results_dir)


def check_conditions(selection: typing.Sequence[str] | None) -> None:
    r"""Every name of ``--conditions`` must be a condition or a group of ``conditions.yaml``.

    Raises:
        UsageError: naming the unknown ones and listing the valid names

    """
    from benchmark.analyses import perturbations, robustness

    if not selection:
        return
    try:
        robustness.select_conditions(perturbations.load_conditions(), list(selection))
    except perturbations.ConditionError as ex:
        raise UsageError(f"--conditions: {ex} Pick names from conditions.yaml (or 'all').") from None


def run_options(args: argparse.Namespace) -> dict:
    r"""The per-family options of a ``run`` (what the analyses read), from its parsed arguments."""
    return {
        "bootstrap": args.bootstrap,
        "max_files": args.max_files or None,
        "ci_unit": args.ci_unit,
        **({"conditions": args.conditions} if args.conditions else {}),
        **({"babble": args.babble} if args.babble else {}),
        **({"batch_size": args.batch_size} if args.batch_size > 1 else {}),
    }


def user_errors() -> tuple[type[BaseException], ...]:
    r"""The exceptions that name the user's mistake: the command line prints their message and exits 2."""
    from benchmark.analyses.perturbations import ConditionError
    from benchmark.data.audio_files import DataError
    from benchmark.data.datasets import DatasetConfigError
    from benchmark.executors.driver import ClusterUnreachableError
    from benchmark.paths import InvalidNameError
    from benchmark.registry import RegistryError, UnknownModelError
    from benchmark.report import SummaryFileError, ThresholdsError
    from benchmark.results import SettingsConflictError

    # only errors that name the user's mistake; any other exception is a bug and shows its traceback
    errors: list[type[BaseException]] = [
        RegistryError,
        DatasetConfigError,
        UnknownModelError,
        ThresholdsError,
        InvalidNameError,
        SettingsConflictError,
        ConditionError,
        DataError,
        UsageError,
        SummaryFileError,
        ClusterUnreachableError,
    ]
    try:
        from benchmark.models.download import ChecksumError, WeightsUnavailableError

        errors += [WeightsUnavailableError, ChecksumError]
    except ImportError:
        pass
    return tuple(errors)
