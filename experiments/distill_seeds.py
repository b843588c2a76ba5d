"""How far the distilled student moves from seed to seed (docs/distillation.md, *Seed to seed*).

Runs ``python -m benchmark distill --seed N --out DIR/seedN --no-register``
for every seed (plus any extra distill arguments: a recipe change is judged
against this spread, not against one run), each in a fresh process, then
reads the held-out pool figures of the exported model from its records and
scores it on test-1 against the teacher (:func:`benchmark.distill.targets.score`).
A seed whose model folder already holds a finished run of that seed is not
run again, so an interrupted measurement resumes; ``DIR/seeds.json`` is
rewritten after every seed.

The seed changes the student's initial weights, the crop offsets, the
augmentation draws, the batches and dropout; the teacher annotates each
seed's crops once (cached).

Usage::

    python experiments/distill_seeds.py --out /tmp/seeds                      # seeds 0..4, the defaults
    python experiments/distill_seeds.py --out /tmp/lw --seeds 0 1 2 -- --loss-weights 1 1 3

"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

DIMS = ("arousal", "dominance", "valence", "mean")
COLUMNS = [f"held-out {d}" for d in DIMS] + [f"test-1 {d}" for d in DIMS] + ["int8 loss max"]


def finished(folder: Path, seed: int) -> bool:
    r"""Whether ``folder`` holds an exported model of a run with ``seed`` (and its int8 twin)."""
    from benchmark.distill.pipeline import int8_folder

    provenance = folder / "provenance.json"
    int8 = int8_folder(folder) / "model.onnx"
    return provenance.exists() and int8.exists() and json.loads(provenance.read_text())["seed"] == seed


def distill(student: str, seed: int, folder: Path, extra: list[str]) -> float:
    r"""Run one distillation in a fresh process; returns its wall time in seconds."""
    command = [
        sys.executable,
        "-m",
        "benchmark",
        "distill",
        "--student",
        student,
        "--seed",
        str(seed),
        "--out",
        str(folder),
        "--no-register",
        "--no-progress",
        *extra,
    ]
    start = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit(f"distill failed: {' '.join(command[1:])}")
    return time.perf_counter() - start


def figures(student: str, folder: Path, teacher) -> dict:
    r"""Held-out pool CCCs of the exported fp32 model (from its records) and its test-1 CCCs vs the teacher."""
    from benchmark.distill import targets
    from benchmark.distill.pipeline import records_folder

    records = json.loads((records_folder(student, folder, register=False) / "provenance.json").read_text())
    held = records["validation"]["onnx"]["fp32"]
    report = targets.score(folder, teacher)
    test = report["models"]["fp32"]["ccc_vs_teacher"]
    row = {f"held-out {d}": held[f"teacher_{d}"] for d in DIMS}
    row |= {f"test-1 {d}": test[d] for d in DIMS}
    row["int8 loss max"] = max(v for d, v in report["int8_loss"].items() if d != "mean")
    row["best epoch"] = records["training"]["best_epoch"]
    row["sha256"] = report["models"]["fp32"]["sha256"]
    return row


def summary(rows: list[dict]) -> dict:
    r"""Mean, sample standard deviation, minimum and maximum of every figure over the seeds.

    Examples:
        >>> s = summary([{"test-1 mean": 0.70}, {"test-1 mean": 0.76}])
        >>> [round(v, 3) for v in s["test-1 mean"].values()]
        [0.73, 0.042, 0.7, 0.76]

    """
    out = {}
    for column in (c for c in COLUMNS if all(c in r for r in rows)):
        values = np.array([r[column] for r in rows], dtype=float)
        sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[column] = {"mean": float(values.mean()), "sd": sd, "min": float(values.min()), "max": float(values.max())}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the seeds' models (DIR/seedN)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--student", default="wav2small")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("distill_args", nargs="*", help="after '--': extra arguments for distill")
    args = parser.parse_args(argv)

    from benchmark.distill.pipeline import load_teacher
    from benchmark.results import atomic_write_text

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    teacher, _ = load_teacher(args.teacher, ROOT / "models.yaml")
    rows = []
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        wall = None
        if finished(folder, seed):
            print(f"seed {seed}: reusing the finished run in {folder}")
        else:
            wall = distill(args.student, seed, folder, args.distill_args)
        rows.append({"seed": seed, "wall_seconds": wall, **figures(args.student, folder, teacher)})
        report = {
            "student": args.student,
            "teacher": args.teacher,
            "distill_args": args.distill_args,
            "seeds": rows,
            "summary": summary(rows),
        }
        atomic_write_text(out / "seeds.json", json.dumps(report, indent=2) + "\n")

    print(
        f"\nCCC({args.student}, {args.teacher}): held-out pool files and msppodcast test-1 (demo), "
        f"fp32; extra distill arguments: {' '.join(args.distill_args) or 'none'}"
    )
    print(
        f"{'seed':>12} "
        + " ".join(f"{c.replace('held-out', 'held').replace('dominance', 'dom'):>15}" for c in COLUMNS)
        + "  best epoch"
    )
    for row in rows:
        print(f"{row['seed']:>12} " + " ".join(f"{row[c]:>15.3f}" for c in COLUMNS) + f"  {row['best epoch']:>10}")
    stats = report["summary"]
    for key in ("mean", "sd", "min", "max"):
        print(f"{key:>12} " + " ".join(f"{stats[c][key]:>15.3f}" for c in COLUMNS))
    print(f"written: {out / 'seeds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
