import os
import sys

from benchmark import numerics

# Before anything imports numpy or torch: a portable distillation restarts with the
# libraries' vector kernels capped (benchmark/numerics.py); they read that only at start.
_env = numerics.restart_argv(sys.argv[1:])
if _env is not None:
    os.execve(sys.executable, [sys.executable, "-m", "benchmark", *sys.argv[1:]], _env)

from benchmark.cli import main  # noqa: E402 (after the restart)

sys.exit(main())
