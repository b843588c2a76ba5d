import os
import sys

from benchmark import numerics

# Before anything imports numpy or torch: a portable distillation restarts with the
# libraries' vector kernels capped (benchmark/numerics.py); they read that only at start.
_env = numerics.restart_argv(sys.argv[1:])
if _env is not None:
    os.execve(sys.executable, [sys.executable, "-m", "benchmark", *sys.argv[1:]], _env)

try:
    from benchmark.cli import main  # noqa: E402 (after the restart)
except KeyboardInterrupt:  # Ctrl-C while the libraries load: nothing ran yet
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
