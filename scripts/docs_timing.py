"""Time ``python -m benchmark docs`` when nothing changed: the median of repeated runs.

Usage (from the repository root)::

    python scripts/docs_timing.py [--runs 5] [--change MODEL]

One untimed run first brings the docs and the figure cache up to date
(it draws what changed since the last build: everything on a fresh
cache). Then ``--runs`` timed runs, each a fresh process as a user
starts it, each checked to have written and drawn nothing. Prints every
wall and CPU time, the median, the CPU count and the load average
before and after: other work on the machine slows every run, so report
the load with the figure. Uses ``$SER_BENCHMARK_CACHE`` as the command does.

``--change MODEL`` then also times the build after one result of one
model changed, as after a benchmark run of that model: in a copy of
``results/`` and ``docs/`` (the checkout is left alone), the CCC of the
first row of the model's current artefact in ``correctness.csv`` is moved by 0.001 and the docs
of the copy are regenerated once.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"docs: (\d+) files, (\d+) written, (\d+) removed; (\d+) figures drawn, (\d+) reused")


def run_once(command: tuple[str, ...] = ("benchmark", "docs", "--timing")) -> tuple[float, float, tuple[int, ...]]:
    r"""Wall seconds, CPU seconds (user + system) and the summary counts of one run of ``python -m COMMAND``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"python -m benchmark docs failed:\n{proc.stderr[-3000:]}")
    match = SUMMARY.search(proc.stdout + proc.stderr)
    if not match:
        sys.exit(f"no summary line in the output of python -m benchmark docs --timing:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, tuple(int(x) for x in match.groups())


def one_model_changed(model: str) -> None:
    r"""Time the build of a copy of the docs after one result row of ``model`` changed."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from benchmark.docs.cache import manifest_path
    from benchmark.docs.inputs import load_inputs

    with tempfile.TemporaryDirectory(prefix="docs-timing-") as tmp:
        results, docs = Path(tmp) / "results", Path(tmp) / "docs"
        shutil.copytree(ROOT / "results", results)
        shutil.copytree(ROOT / "docs", docs)
        # the copy's figures are the checkout's: so is what the manifest says about them
        manifest_path(docs).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest_path(ROOT / "docs"), manifest_path(docs))
        table = pd.read_csv(results / "correctness.csv", dtype=str, keep_default_na=False)
        current = load_inputs(results).current.get(model)  # the artefact the leaderboard shows
        rows = table.index[table["model"].eq(model) & table["model_sha256"].eq(current)]
        if not len(rows):
            sys.exit(f"no correctness rows of model {model!r} in results/correctness.csv")
        table.loc[rows[0], "ccc"] = f"{float(table.loc[rows[0], 'ccc']) + 0.001:.6g}"
        table.to_csv(results / "correctness.csv", index=False, lineterminator="\n")
        wall, cpu, counts = run_once(("benchmark", "docs", "--timing", "--results", str(results), "--docs", str(docs)))
        where = " · ".join(table.loc[rows[0], ["dataset", "split", "dimension"]])
        print(
            f"one result of {model} changed ({where}): {wall:.2f} s wall, {cpu:.2f} s CPU; "
            f"{counts[1]} files written, {counts[3]} figures drawn, {counts[4]} reused"
        )
        manifest_path(docs).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--change", metavar="MODEL", help="also time a build after one result of MODEL changed")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    wall, _, counts = run_once()
    print(f"warm-up: {wall:.1f} s, {counts[1]} files written, {counts[3]} figures drawn")
    walls, cpus = [], []
    for i in range(args.runs):
        wall, cpu, counts = run_once()
        files, written, removed, drawn, reused = counts
        if written or removed or drawn:
            sys.exit(
                f"run {i + 1} changed the docs ({written} written, {removed} removed, {drawn} drawn): "
                "something else is writing results/ or docs/; measure on a quiet checkout"
            )
        walls.append(wall)
        cpus.append(cpu)
        print(f"run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU ({files} files, {reused} figures reused)")
    load_after = os.getloadavg()
    print(
        f"median of {args.runs}: {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU; "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    if args.change:
        one_model_changed(args.change)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
