"""The command line as users start it: ``python -m benchmark`` and the console script ``ser-benchmark``.

Both run :func:`main`, so both restart a portable distillation into its
numerics (:mod:`benchmark.numerics`) before the libraries load.
"""

import os
import sys
import typing

from benchmark import numerics
from benchmark.run_checks import EXIT_INTERRUPTED


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Run a command of :mod:`benchmark.cli` (``argv``, default ``sys.argv[1:]``); its exit code.

    Before anything imports numpy or torch: a portable distillation restarts
    as ``python -m benchmark`` with the libraries' vector kernels capped
    (:func:`benchmark.numerics.restart_argv`); they read that only at start.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    env = numerics.restart_argv(argv)
    if env is not None:
        os.execve(sys.executable, [sys.executable, "-m", "benchmark", *argv], env)
    try:
        from benchmark.cli import main as run_command
    except KeyboardInterrupt:  # Ctrl-C while the libraries load: nothing ran yet
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
