"""Time the README's first command from a fresh clone: install included, empty cache, median of N runs.

Usage (from the repository root)::

    python scripts/first_run.py [--runs 3] [--model wav2small] [--keep]

Each run clones this repository's committed HEAD into a new temporary
folder, makes a fresh virtual environment there and runs, as a new user
would, ``pip install nox uv`` and then ``nox -s benchmark -- --model
wav2small`` (the README's first command) with ``$SER_BENCHMARK_CACHE`` pointing at an empty folder.
The run's last line is its timing line (``timing: data … · predict … ·
score … · report … · docs …``, :mod:`benchmark.timing`); ``install`` is
the rest of the command's wall time (``pip install nox uv``, nox creating
its environment and installing the package). Prints each run, the median
of every phase and of the whole command, the cache size after the run,
the CPU count and the load average before and after: other work on the
machine slows every run, so report the load with the figures. Each run also
counts the files its clone's ``git status`` shows changed (``changed_files``):
0 means the cold run reproduced the committed results and docs byte for byte.

pip's and uv's download caches are left as they are unless ``--no-pip-cache``
(a new user's machine has none: use it for the figures you publish).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark import PHASES, parse_timing  # noqa: E402  (the checkout's own module, not an installed one)


def folder_bytes(path: Path) -> int:
    r"""Bytes of the files under ``path`` (links not followed)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(command: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, str]:
    r"""Run ``command``; its wall seconds and output (also written to ``log``). Exits if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    log.write_text(proc.stdout)
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed (exit {proc.returncode}); its output: {log}\n{proc.stdout[-3000:]}")
    return seconds, proc.stdout


def run_once(work: Path, model: str, no_pip_cache: bool) -> dict[str, float]:
    r"""One fresh clone, venv and run in ``work``: seconds per phase, ``install``, ``total`` and ``cache_mb``."""
    clone, cache = work / "clone", work / "cache"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SER_BENCHMARK_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(SER_BENCHMARK_CACHE=str(cache), PATH=f"{work / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    if no_pip_cache:
        env.update(PIP_NO_CACHE_DIR="1", UV_NO_CACHE="1")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    pip_s, _ = timed(["pip", "install", "--quiet", "nox", "uv"], clone, env, work / "pip.log")
    nox_s, out = timed(["nox", "-s", "benchmark", "--", "--model", model], clone, env, work / "nox.log")
    phases = parse_timing(out)
    if not phases:
        sys.exit(f"no timing line in the output of nox -s benchmark (see {work / 'nox.log'})")
    figures = dict(phases)
    figures["install"] = pip_s + nox_s - sum(phases.values())
    figures["total"] = pip_s + nox_s
    figures["cache_mb"] = folder_bytes(cache) / 2**20
    figures["changed_files"] = len(changed_files(clone))
    return figures


def changed_files(clone: Path) -> list[str]:
    r"""Files of ``clone`` that the run changed or added (none: it reproduced the committed results and docs)."""
    out = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    return [line[3:] for line in out.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh clones to time (default: 3; the median is reported)")
    parser.add_argument("--model", default="wav2small", help="the model of the README's first command")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (their logs) and print them")
    parser.add_argument("--no-pip-cache", action="store_true", help="download every package, as on a new machine")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    load_before = os.getloadavg()
    runs = []
    for i in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="ser-first-run-"))
        try:
            figures = run_once(work, args.model, args.no_pip_cache)
        finally:
            if args.keep:
                print(f"run {i + 1}: kept {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        runs.append(figures)
        print(
            f"run {i + 1}: "
            + " · ".join(f"{k} {v:g}" if k == "changed_files" else f"{k} {v:.1f}" for k, v in figures.items()),
            flush=True,
        )
    keys = ["install", *[p for p in PHASES if all(p in r for r in runs)], "total"]
    median = {k: statistics.median(r[k] for r in runs) for k in keys}
    cache = statistics.median(r["cache_mb"] for r in runs)
    print(
        f"median of {len(runs)} (s): "
        + " · ".join(f"{k} {v:.1f}" for k, v in median.items())
        + f" ({median['total'] / 60:.1f} min); cache after: {cache:.0f} MB"
    )
    reproduced = sum(r["changed_files"] == 0 for r in runs)
    print(f"{reproduced} of {len(runs)} runs left git status clean (the committed results and docs, byte for byte)")
    print(f"cpus {os.cpu_count()}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
