"""Measure the distillation targets (issue 5) on this machine.

1. Wall time of the default ``python -m benchmark distill`` (target: at
   most 15 min on a 2-core CPU), run as a user would, in a fresh process.
2. Agreement of the distilled student with its teacher on the held-out
   demo test set (msppodcast ``test-1``, demo), whole clean files:
   CCC(student, teacher) at least 0.90 for arousal and 0.80 on average
   over arousal, dominance, valence.
3. The int8 model loses at most 0.01 CCC (vs the teacher) per dimension
   compared with fp32.

Each CCC comes with a 95 % bootstrap interval over the split's files,
and each int8 loss with a paired one (the same resampled files for both
models): how precisely the split pins the figure down. A target is met
or missed by the figure itself; the interval says how near the edge it is.

The student is scored through the benchmark's own ``audonnx`` loader,
i.e. exactly as ``python -m benchmark run`` would score it. Figures go
to stdout and to ``targets.json`` in the run's records folder:
``results/distill/<student>/`` for the registered model, ``DIR-records/``
for a scratch model scored with ``--skip-run --out DIR``.

Usage::

    python scripts/distill_targets.py                 # no cached teacher targets, default distill
    python scripts/distill_targets.py --cache fresh   # also build demo data and fit the teacher
    python scripts/distill_targets.py --skip-run      # only score existing weights
    python scripts/distill_targets.py -- --epochs 4   # extra arguments for distill

The exit status is 0 when every target is met, 1 otherwise.
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

TARGETS = {"wall_minutes": 15.0, "ccc_arousal": 0.90, "ccc_mean": 0.80, "int8_loss": 0.01}
BOOTSTRAP = 1000
"""Resamples of the files for the 95 % intervals (seed 0, so a re-run gives the same ones)."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="wav2small", help="student to score (and to distil)")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("--models", default=None, help="models.yaml (default: the project's)")
    parser.add_argument("--out", default=None, help="model folder (default: weights/<student>)")
    parser.add_argument("--skip-run", action="store_true", help="do not distil; score the existing weights")
    parser.add_argument(
        "--cache", choices=("warm", "cold", "fresh"), default="cold",
        help="warm: reuse cached teacher targets and checkpoints; cold: without them, in a temporary cache "
        "that links the demo corpora and fitted teachers (default); fresh: in an empty cache (demo corpora "
        "and teacher fit included)",
    )
    parser.add_argument("distill_args", nargs="*", help="after '--': extra arguments for distill")
    return parser.parse_args(argv)


def run_distill(args, out: Path) -> dict:
    r"""Run the distillation in a fresh process and time it."""
    from benchmark.efficiency import cpu_name
    from benchmark.paths import cache_root

    env = dict(os.environ)
    fresh = None
    if args.cache in ("fresh", "cold"):
        # a temporary cache root: nothing cached is deleted (another run may be reading it)
        fresh = tempfile.mkdtemp(prefix=f"ser-benchmark-{args.cache}-")
        env["SER_BENCHMARK_CACHE"] = fresh
        if args.cache == "cold":  # keep demo corpora and fitted teachers, not the distillation cache
            root = cache_root()
            for entry in (root.iterdir() if root.exists() else []):
                if entry.name != "distill":
                    os.symlink(entry, Path(fresh) / entry.name)
    command = [sys.executable, "-m", "benchmark", "distill", "--student", args.student, "--teacher", args.teacher]
    command += ["--out", str(out)] + (["--models", args.models] if args.models else []) + list(args.distill_args)
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
    import numpy as np
    import pandas as pd

    from benchmark import DIMENSIONS
    from benchmark.data.datasets import load_split
    from benchmark.distill import annotate
    from benchmark.distill.pipeline import load_teacher
    from benchmark.distill.train import ccc
    from benchmark.paths import PROJECT_ROOT
    from benchmark.hashing import sha256_tree
    from benchmark.metrics import bootstrap_ccc_columns, paired_bootstrap
    from benchmark.registry import ModelEntry, load_model

    models = Path(args.models).resolve() if args.models else PROJECT_ROOT / "models.yaml"
    teacher, _ = load_teacher(args.teacher, models)
    evalset = load_split("msppodcast", "test-1", data="demo")
    files = [str(f) for f in evalset.files]
    teacher_pred, signals, skipped, _ = annotate.annotate_files(teacher, files, label="targets-test-1")
    truth = evalset.truth.copy()
    truth.index = truth.index.astype(str)
    truth = truth.loc[teacher_pred.index]
    report = {"split": evalset.provenance(), "files": len(teacher_pred), "skipped": len(skipped), "models": {}}
    predictions = {}
    for label, folder in (("fp32", out), ("int8", out.with_name(out.name + "-int8"))):
        entry = ModelEntry(name=f"{args.student}-{label}", kind="audonnx", role="student",
                           source={"path": str(folder)}, sampling_rate=16000,
                           outputs={d: d for d in DIMENSIONS}, description="", root=folder.parent)
        model = load_model(entry, registry={})
        start = time.perf_counter()
        pred = np.stack([model(signals[f], 16000) for f in teacher_pred.index])
        predictions[label] = pred
        vs_teacher = {d: ccc(teacher_pred[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS)}
        vs_teacher["mean"] = float(np.mean(list(vs_teacher.values())))
        # how precisely the split's files pin down each figure (resampling files)
        intervals = bootstrap_ccc_columns(teacher_pred[list(DIMENSIONS)].to_numpy(), pred, DIMENSIONS, n=BOOTSTRAP)
        # for reference only: without files where the teacher itself fails (off-scale outputs)
        sane = annotate.in_range(teacher_pred.to_numpy())
        vs_sane = {d: ccc(teacher_pred[d].to_numpy()[sane], pred[sane, i]) for i, d in enumerate(DIMENSIONS)}
        vs_sane["mean"] = float(np.mean(list(vs_sane.values())))
        vs_gold = {d: ccc(truth[d].to_numpy(), pred[:, i]) for i, d in enumerate(DIMENSIONS) if d in truth}
        report["models"][label] = {
            "path": str(folder),
            "sha256": sha256_tree(folder),
            "ccc_vs_teacher": vs_teacher,
            "ccc_vs_teacher_ci95": {d: list(v) for d, v in intervals.items()},
            "ccc_vs_teacher_in_range": vs_sane,
            "teacher_off_scale_files": int((~sane).sum()),
            "ccc_vs_gold": vs_gold,
            "seconds_per_file": (time.perf_counter() - start) / len(pred),
        }
    report["teacher_ccc_vs_gold"] = {
        d: ccc(truth[d].to_numpy(), teacher_pred[d].to_numpy()) for d in DIMENSIONS if d in truth
    }
    fp32, int8 = (report["models"][k]["ccc_vs_teacher"] for k in ("fp32", "int8"))
    report["int8_loss"] = {d: fp32[d] - int8[d] for d in fp32}
    index = teacher_pred.index
    paired = {d: paired_bootstrap(teacher_pred[d], pd.Series(predictions["fp32"][:, i], index),
                                  pd.Series(predictions["int8"][:, i], index), n=BOOTSTRAP)
              for i, d in enumerate(DIMENSIONS)}
    report["int8_loss_ci95"] = {d: [v["ci_low"], v["ci_high"]] for d, v in paired.items()}
    report["bootstrap"] = {"resamples": BOOTSTRAP, "level": 0.95, "seed": 0}
    return report


def earlier_timing(path: Path, sha256: str) -> dict | None:
    r"""The timing in an earlier report at ``path`` if it measured the model with this ``sha256``.

    ``--skip-run`` re-scores a model without distilling it; the wall time
    of the run that made that very model stays valid and is kept.
    """
    try:
        earlier = json.loads(path.read_text())
        if earlier["models"]["fp32"].get("sha256") == sha256:
            return earlier.get("timing")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmark.distill.pipeline import default_out, records_folder
    from benchmark.results import atomic_write_text

    out = Path(args.out).resolve() if args.out else default_out(args.student)
    timing = None if args.skip_run else run_distill(args, out)
    report = score(args, out)
    registers = not args.skip_run and "--no-register" not in args.distill_args
    path = records_folder(args.student, out, registers) / "targets.json"
    if timing is None:
        timing = earlier_timing(path, report["models"]["fp32"]["sha256"])
    report["timing"] = timing
    fp32 = report["models"]["fp32"]["ccc_vs_teacher"]
    checks = {
        "CCC(student, teacher) arousal >= 0.90": fp32["arousal"] >= TARGETS["ccc_arousal"],
        "CCC(student, teacher) mean A/D/V >= 0.80": fp32["mean"] >= TARGETS["ccc_mean"],
        "int8 loses <= 0.01 CCC (every dimension)": all(v <= TARGETS["int8_loss"] for v in report["int8_loss"].values()),
    }
    if timing is not None:
        checks["default distill <= 15 min wall"] = timing["wall_seconds"] <= 60 * TARGETS["wall_minutes"]
    report["targets"] = {k: bool(v) for k, v in checks.items()}

    print(f"\nmsppodcast test-1 (demo), {report['files']} files: CCC vs teacher / vs gold")
    print(f"{'':8} {'arousal':>16} {'dominance':>16} {'valence':>16} {'mean':>8}")
    for label in ("fp32", "int8"):
        m = report["models"][label]
        cells = [f"{m['ccc_vs_teacher'][d]:.3f} / {m['ccc_vs_gold'].get(d, float('nan')):.3f}"
                 for d in ("arousal", "dominance", "valence")]
        print(f"{label:8} " + " ".join(f"{c:>16}" for c in cells) + f" {m['ccc_vs_teacher']['mean']:>8.3f}")
        ci = m["ccc_vs_teacher_ci95"]
        print(f"{'  95 %':8} " + " ".join(format(f"{ci[d][0]:.3f}..{ci[d][1]:.3f}", ">16") for d in ("arousal", "dominance", "valence"))
              + f" {ci['mean'][0]:.3f}..{ci['mean'][1]:.3f}")
    teacher_gold = report["teacher_ccc_vs_gold"]
    print("teacher  " + " ".join(f"{'- / ' + format(teacher_gold.get(d, float('nan')), '.3f'):>16}"
                                 for d in ("arousal", "dominance", "valence")))
    sane = report["models"]["fp32"]
    print(f"fp32 without the {sane['teacher_off_scale_files']} files with off-scale teacher outputs: "
          + ", ".join(f"{d} {v:.3f}" for d, v in sane["ccc_vs_teacher_in_range"].items()))
    print("int8 loss: " + ", ".join(f"{d} {v:+.4f}" for d, v in report["int8_loss"].items()))
    if timing is not None:
        print(("earlier run of this model, " if args.skip_run else "")
              + f"wall time: {timing['wall_seconds'] / 60:.1f} min, CPU time {timing['cpu_seconds'] / 60:.1f} min "
              f"({timing['cache']} cache; "
              f"{timing['cpu_count']} CPUs; load average before {timing['load_average_before'][0]}, "
              f"after {timing['load_average_after'][0]})")
    for name, ok in checks.items():
        print(f"  [{'x' if ok else ' '}] {name}")
    atomic_write_text(path, json.dumps(report, indent=2, default=float) + "\n")
    print(f"written: {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
