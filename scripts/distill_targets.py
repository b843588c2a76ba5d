"""Measure the distillation targets (:data:`benchmark.distill.targets.TARGETS`) on this machine.

1. Wall time of the default ``python -m benchmark distill`` (target: at
   most 15 min on a 2-core CPU), run as a user would, in a fresh process;
   with ``--repeat N`` the median of N such runs (each in its own cold
   cache), every run's figures recorded.
2. Agreement of the distilled student with its teacher on the held-out
   demo test set (msppodcast ``test-1``, demo), whole clean files:
   CCC(student, teacher) at least 0.90 for arousal and 0.80 on average
   over arousal, dominance, valence.
3. The int8 model loses at most 0.01 CCC (vs the teacher) per dimension
   compared with fp32.
4. Voice shifts: CCC(student, teacher) on test-1 audio shifted
   in pitch (±2, ±4 semitones) and formants (±10 %), all shifts pooled,
   at least 0.85 for arousal. Reported with it, without a target: the
   agreement within each sex on the demo test splits and its gap.

Scoring and checks are :mod:`benchmark.distill.targets`: the student is
scored through the benchmark's own ``audonnx`` loader, i.e. exactly as
``python -m benchmark run`` would score it, each CCC with a 95 % bootstrap
interval over the split's files (the int8 loss with a paired one). A
target is met or missed by the figure itself. Figures go
to stdout and to ``targets.json`` in the run's records folder:
``results/distill/<student>/`` for the registered model, ``DIR-records/``
for a scratch model scored with ``--skip-run --out DIR``.

Usage::

    python scripts/distill_targets.py                 # no cached teacher targets, default distill
    python scripts/distill_targets.py --cache fresh   # also build demo data and fit the teacher
    python scripts/distill_targets.py --repeat 3      # wall time: median of 3 runs
    python scripts/distill_targets.py --skip-run      # only score existing weights
    python scripts/distill_targets.py -- --epochs 4   # extra arguments for distill

The exit status is 0 when every target is met, 1 otherwise. A run that
registers passes ``--replace`` to distill: the model it times and scores
replaces the committed one (``docs/distillation.md``, *Re-distilling*).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="wav2small", help="student to score (and to distil)")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("--models", default=None, help="models.yaml (default: the project's)")
    parser.add_argument("--out", default=None, help="model folder (default: weights/<student>)")
    parser.add_argument("--skip-run", action="store_true", help="do not distil; score the existing weights")
    parser.add_argument(
        "--cache",
        choices=("warm", "cold", "fresh"),
        default="cold",
        help="warm: reuse cached teacher targets and checkpoints; cold: without them, in a temporary cache "
        "that links the demo corpora and fitted teachers (default); fresh: in an empty cache (demo corpora "
        "and teacher fit included)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="distil N times and judge the wall time by the median run (the model is the same: "
        "training is deterministic)",
    )
    parser.add_argument("distill_args", nargs="*", help="after '--': extra arguments for distill")
    return parser.parse_args(argv)


def run_distill(args, out: Path) -> dict:
    r"""Run the distillation in a fresh process and time it."""
    from benchmark import cache_root, cpu_name, project_relative

    env = dict(os.environ)
    fresh = None
    if args.cache in ("fresh", "cold"):
        # a temporary cache root: nothing cached is deleted (another run may be reading it)
        fresh = tempfile.mkdtemp(prefix=f"ser-benchmark-{args.cache}-")
        env["SER_BENCHMARK_CACHE"] = fresh
        if args.cache == "cold":  # keep demo corpora and fitted teachers, not the distillation cache
            root = cache_root()
            for entry in root.iterdir() if root.exists() else []:
                if entry.name != "distill":
                    os.symlink(entry, Path(fresh) / entry.name)
    command = [sys.executable, "-m", "benchmark", "distill", "--student", args.student, "--teacher", args.teacher]
    # run from the project root, so the recorded command names the folder as a user types it
    command += (
        ["--out", project_relative(out)] + (["--models", args.models] if args.models else []) + list(args.distill_args)
    )
    if "--no-register" not in command and "--replace" not in command:
        # the script measures the model it makes: over a committed one, distill would keep that one instead
        command.append("--replace")
    load_before = os.getloadavg()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if fresh:
        shutil.rmtree(fresh, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"distill failed with exit status {proc.returncode}: {' '.join(command)}")
    return {
        "command": " ".join(command[1:]),
        "cache": args.cache,
        "wall_seconds": round(wall, 1),
        # CPU time of the run: with other work on the machine, wall time overstates it
        "cpu_seconds": round(cpu, 1),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),  # wall times of different CPUs do not compare
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def score(args, out: Path) -> dict:
    r"""CCC of the fp32 and int8 students against the teacher (and the gold labels) on test-1."""
    from benchmark import PROJECT_ROOT
    from benchmark.distill import targets
    from benchmark.distill.teacher import load_teacher

    teacher, _ = load_teacher(
        args.teacher, Path(args.models).resolve() if args.models else PROJECT_ROOT / "models.yaml"
    )
    from benchmark import VOICE_SHIFTS

    return targets.score(out, teacher, voice_shifts=tuple(VOICE_SHIFTS), sex_splits=targets.SEX_SPLITS)


def relative_paths(report: dict, root: Path = ROOT) -> dict:
    r"""The report with its model folders and the timed command's ``--out`` relative to ``root``.

    ``root`` is the project the report was made in; folders outside it stay absolute.
    """
    from benchmark import project_relative

    for model in report["models"].values():
        model["path"] = project_relative(model["path"], root)
    command = (report.get("timing") or {}).get("command")
    if command:
        words = command.split(" ")
        if "--out" in words[:-1]:
            at = words.index("--out") + 1
            words[at] = project_relative(words[at], root)
            report["timing"]["command"] = " ".join(words)
    return report


def migrate(path: Path) -> None:
    r"""Rewrite a ``targets.json`` written with absolute paths: only the paths change.

    The project it was made in is the folder above ``weights/`` in its fp32 path.
    """
    from benchmark import atomic_write_text

    report = json.loads(Path(path).read_text())
    fp32 = Path(report["models"]["fp32"]["path"])
    if fp32.is_absolute() and fp32.parent.name == "weights":
        relative_paths(report, fp32.parent.parent)
        atomic_write_text(Path(path), json.dumps(report, indent=2, default=float) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmark import atomic_write_text
    from benchmark.distill import targets
    from benchmark.distill.config import default_out, records_folder

    out = Path(args.out).resolve() if args.out else default_out(args.student)
    if args.repeat < 1:
        sys.exit(f"--repeat {args.repeat}: give at least 1 run.")
    timing = None if args.skip_run else targets.median_timing([run_distill(args, out) for _ in range(args.repeat)])
    report = score(args, out)
    registers = not args.skip_run and "--no-register" not in args.distill_args
    path = records_folder(args.student, out, registers) / "targets.json"
    if timing is None:
        timing = targets.earlier_timing(path, report["models"]["fp32"]["sha256"])
    report["timing"] = timing
    relative_paths(report)
    checks = report["targets"] = targets.checks(report)

    print(f"\nmsppodcast test-1 (demo), {report['files']} files: CCC vs teacher / vs gold")
    print(f"{'':8} {'arousal':>16} {'dominance':>16} {'valence':>16} {'mean':>8}")
    for label in ("fp32", "int8"):
        m = report["models"][label]
        cells = [
            f"{m['ccc_vs_teacher'][d]:.3f} / {m['ccc_vs_gold'].get(d, float('nan')):.3f}"
            for d in ("arousal", "dominance", "valence")
        ]
        print(f"{label:8} " + " ".join(f"{c:>16}" for c in cells) + f" {m['ccc_vs_teacher']['mean']:>8.3f}")
        ci = m["ccc_vs_teacher_ci95"]
        print(
            f"{'  95 %':8} "
            + " ".join(format(f"{ci[d][0]:.3f}..{ci[d][1]:.3f}", ">16") for d in ("arousal", "dominance", "valence"))
            + f" {ci['mean'][0]:.3f}..{ci['mean'][1]:.3f}"
        )
    teacher_gold = report["teacher_ccc_vs_gold"]
    print(
        "teacher  "
        + " ".join(
            f"{'- / ' + format(teacher_gold.get(d, float('nan')), '.3f'):>16}"
            for d in ("arousal", "dominance", "valence")
        )
    )
    sane = report["models"]["fp32"]
    print(
        f"fp32 without the {sane['teacher_off_scale_files']} files with off-scale teacher outputs: "
        + ", ".join(f"{d} {v:.3f}" for d, v in sane["ccc_vs_teacher_in_range"].items())
    )
    shift = report.get("voice_shift")
    if shift:
        print(
            f"voice shifts, fp32 vs teacher ({shift['files']} files each): "
            + "; ".join(f"{name} A {c['arousal']:.3f} mean {c['mean']:.3f}" for name, c in shift["conditions"].items())
        )
        print("  pooled: " + ", ".join(f"{d} {v:.3f}" for d, v in shift["pooled"].items()))
    for name, agreement in (report.get("sex_agreement") or {}).items():
        print(
            f"per sex, fp32 vs teacher, {name}: "
            + "; ".join(
                f"{g} ({agreement[g]['files']}) A {agreement[g]['arousal']:.3f} D {agreement[g]['dominance']:.3f} "
                f"V {agreement[g]['valence']:.3f}"
                for g in ("female", "male")
            )
            + "; gap F−M "
            + ", ".join(f"{d} {v:+.3f}" for d, v in agreement["gap"].items())
        )
    print("int8 loss: " + ", ".join(f"{d} {v:+.4f}" for d, v in report["int8_loss"].items()))
    if timing is not None:
        runs = timing.get("runs") or []
        print(
            ("earlier run of this model, " if args.skip_run else "")
            + (
                f"median of {len(runs)} runs (" + ", ".join(f"{r['wall_seconds'] / 60:.1f}" for r in runs) + " min), "
                if runs
                else ""
            )
            + f"wall time: {timing['wall_seconds'] / 60:.1f} min, CPU time {timing['cpu_seconds'] / 60:.1f} min "
            f"({timing['cache']} cache; "
            f"{timing['cpu_count']} CPUs; load average before {timing['load_average_before'][0]}, "
            f"after {timing['load_average_after'][0]})"
        )
    for name, ok in checks.items():
        print(f"  [{'x' if ok else ' '}] {name}")
    atomic_write_text(path, json.dumps(report, indent=2, default=float) + "\n")
    print(f"written: {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
