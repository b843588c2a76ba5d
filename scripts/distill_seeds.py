"""The distillation targets over seeds: median, minimum and maximum of the default recipe (or another).

Runs ``python -m benchmark distill --seed N --out DIR/seedN --no-register``
for every seed (plus any extra distill arguments: a recipe change is judged
against this spread, not against one run), each in a fresh process, then
scores each exported model as ``scripts/distill_targets.py`` does
(:func:`benchmark.distill.targets.score`, msppodcast ``test-1`` of the
demo data, against the teacher, voice shifts included) and reads the
held-out pool figures from its records. A seed whose model folder already
holds a finished run of that seed is not run again, so an interrupted
measurement resumes. After every seed ``DIR/seeds.json`` and the Markdown
table ``DIR/seeds.md`` (``--markdown``: another file) are rewritten: what
finished is reported even if a later seed does not. The table goes into
``docs/research/distill-seeds.md`` by hand, beside the earlier ones.

The seed changes the student's initial weights, the crop offsets, the
augmentation draws, the batches and dropout; the teacher annotates each
seed's crops once (cached). The models go to ``DIR`` only: the script
never registers a model, so ``models.yaml`` and ``weights/`` stay as they are.

Usage::

    python scripts/distill_seeds.py --out /tmp/seeds                      # seeds 0, 1, 2, the defaults
    python scripts/distill_seeds.py --out /tmp/lw --seeds 0 1 2 3 4 -- --loss-weights 1 1 3

The exit status is 0 when the worst seed meets every target, 1 otherwise.
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
sys.path.insert(0, str(ROOT))

DIMS = ("arousal", "dominance", "valence", "mean")
COLUMNS = (
    [f"held-out {d}" for d in DIMS]
    + [f"test-1 {d}" for d in DIMS]
    + ["int8 loss max", "voice-shift arousal", "wall minutes"]
)
r"""Figures of a seed's model; the targets are judged on the test-1 ones, the int8 loss and the voice shifts."""

HIGHER_IS_BETTER = {"int8 loss max": False, "wall minutes": False}
r"""Figures where the worst seed is the maximum; for the others it is the minimum."""


def finished(folder: Path, seed: int) -> bool:
    r"""Whether ``folder`` holds an exported model of a run with ``seed`` (and its int8 twin)."""
    from benchmark.distill.config import int8_folder

    provenance = folder / "provenance.json"
    int8 = int8_folder(folder) / "model.onnx"
    return provenance.exists() and int8.exists() and json.loads(provenance.read_text())["seed"] == seed


def earlier_rows(path: Path) -> dict[int, dict]:
    r"""Seed → its row in an earlier ``seeds.json`` at ``path`` (none if there is no such file)."""
    if not path.exists():
        return {}
    return {row["seed"]: row for row in json.loads(path.read_text())["seeds"]}


def reusable(row: dict | None, folder: Path, voice_shifts: bool) -> dict | None:
    r"""An earlier ``row`` if it scored the model now in ``folder`` (same hash) as fully as asked, else ``None``.

    Scoring a seed takes minutes (voice shifts included), and a resumed
    measurement would otherwise also lose the wall time of its finished seeds.
    """
    from benchmark import artifact_sha256

    if row is None or row.get("sha256") != artifact_sha256(folder, "audonnx"):
        return None
    if voice_shifts and row.get("voice-shift arousal") is None:
        return None
    return row


def distill(student: str, seed: int, folder: Path, extra: list[str]) -> float:
    r"""Run one distillation in a fresh process; returns its wall time in seconds."""
    command = [sys.executable, "-m", "benchmark", "distill", "--student", student, "--seed", str(seed)]
    command += ["--out", str(folder), "--no-register", "--no-progress", *extra]
    start = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit(f"distill failed: {' '.join(command[1:])}")
    return time.perf_counter() - start


def figures(student: str, folder: Path, teacher, voice_shifts: tuple[str, ...] = ()) -> dict:
    r"""Held-out pool CCCs of the exported fp32 model (from its records) and its test-1 figures vs the teacher."""
    from benchmark.distill import targets
    from benchmark.distill.config import records_folder

    records = json.loads((records_folder(student, folder, register=False) / "provenance.json").read_text())
    held = records["validation"]["onnx"]["fp32"]
    report = targets.score(folder, teacher, voice_shifts=voice_shifts)
    test = report["models"]["fp32"]["ccc_vs_teacher"]
    row = {f"held-out {d}": held[f"teacher_{d}"] for d in DIMS}
    row |= {f"test-1 {d}": test[d] for d in DIMS}
    row["int8 loss max"] = max(v for d, v in report["int8_loss"].items() if d != "mean")
    if report.get("voice_shift"):
        row["voice-shift arousal"] = report["voice_shift"]["pooled"]["arousal"]
    row["best epoch"] = records["training"]["best_epoch"]
    row["sha256"] = report["models"]["fp32"]["sha256"]
    row["targets"] = targets.checks(report)
    return row


def summary(rows: list[dict]) -> dict:
    r"""Median, minimum, maximum and the worst seed's value of every figure that all seeds have.

    Examples:
        >>> s = summary([{"test-1 mean": 0.70}, {"test-1 mean": 0.76}, {"test-1 mean": 0.74}])
        >>> {k: round(v, 3) for k, v in s["test-1 mean"].items()}
        {'median': 0.74, 'min': 0.7, 'max': 0.76, 'worst': 0.7}
        >>> summary([{"int8 loss max": 0.004}, {"int8 loss max": 0.012}])["int8 loss max"]["worst"]
        0.012

    """
    out = {}
    for column in (c for c in COLUMNS if rows and all(r.get(c) is not None for r in rows)):
        values = np.array([r[column] for r in rows], dtype=float)
        worst = values.min() if HIGHER_IS_BETTER.get(column, True) else values.max()
        out[column] = {
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
            "worst": float(worst),
        }
    return out


def worst_seed_checks(rows: list[dict]) -> dict[str, bool]:
    r"""Each target met by every seed (the worst seed meets it).

    Examples:
        >>> worst_seed_checks([{"targets": {"a": True, "b": True}}, {"targets": {"a": True, "b": False}}])
        {'a': True, 'b': False}

    """
    names = [name for name in rows[0]["targets"] if all(name in r["targets"] for r in rows)] if rows else []
    return {name: all(r["targets"][name] for r in rows) for name in names}


def markdown(report: dict) -> str:
    r"""The seeds' figures and their median / minimum / maximum as a Markdown page."""
    shown = [c for c in COLUMNS if c in report["summary"]]
    lines = [
        "# Distillation targets over seeds",
        "",
        f"`python scripts/distill_seeds.py --seeds {' '.join(str(r['seed']) for r in report['seeds'])}"
        + (f" -- {' '.join(report['distill_args'])}" if report["distill_args"] else "")
        + f"`: student `{report['student']}`, teacher `{report['teacher']}`, "
        f"{'the default recipe' if not report['distill_args'] else 'extra distill arguments as given'}; "
        f"CCC against the teacher, fp32 (held-out pool files and msppodcast test-1 of the demo data); "
        f"{report['cpu']}; {report['date']}. Wall minutes are of a shared machine: they do not judge the "
        "wall-time target.",
        "",
        "| seed | " + " | ".join(shown) + " | best epoch | sha256 |",
        "|---" * (len(shown) + 3) + "|",
    ]
    for row in report["seeds"]:
        cells = [f"{row[c]:.3f}" if row.get(c) is not None else "–" for c in shown]
        lines.append(f"| {row['seed']} | " + " | ".join(cells) + f" | {row['best epoch']} | `{row['sha256'][:12]}` |")
    for key in ("median", "min", "max"):
        lines.append(f"| **{key}** | " + " | ".join(f"{report['summary'][c][key]:.3f}" for c in shown) + " | | |")
    lines += ["", "Targets met by the worst seed:", ""]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in report["worst_seed_targets"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the seeds' models (DIR/seedN); outside the project")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--student", default="wav2small")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("--markdown", help="write the Markdown table here (default: DIR/seeds.md)")
    parser.add_argument("--no-voice-shifts", action="store_true", help="skip the voice-shift target (faster)")
    parser.add_argument("distill_args", nargs="*", help="after '--': extra arguments for distill")
    args = parser.parse_args(argv)

    from benchmark import VOICE_SHIFTS, atomic_write_text, numerics
    from benchmark.distill.teacher import load_teacher

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    teacher, _ = load_teacher(args.teacher, ROOT / "models.yaml")
    shifts = () if args.no_voice_shifts else tuple(VOICE_SHIFTS)
    earlier = earlier_rows(out / "seeds.json")
    rows = []
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        row = None
        if finished(folder, seed):
            row = reusable(earlier.get(seed), folder, bool(shifts))
            print(f"seed {seed}: reusing the finished run in {folder}" + (" and its figures" if row else ""))
            wall = None
        else:
            wall = distill(args.student, seed, folder, args.distill_args)
        if row is None:
            row = {"seed": seed, **figures(args.student, folder, teacher, shifts)}
            row["wall minutes"] = None if wall is None else wall / 60
        rows.append(row)
        report = {
            "student": args.student,
            "teacher": args.teacher,
            "distill_args": args.distill_args,
            "cpu": numerics.cpu_model(),
            "date": time.strftime("%Y-%m-%d"),
            "seeds": rows,
            "summary": summary(rows),
            "worst_seed_targets": worst_seed_checks(rows),
        }
        atomic_write_text(out / "seeds.json", json.dumps(report, indent=2, default=float) + "\n")
        table = Path(args.markdown) if args.markdown else out / "seeds.md"
        atomic_write_text(table, markdown(report))
        print(f"seed {seed}: written {out / 'seeds.json'} and {table}", flush=True)
    print(markdown(report))
    return 0 if all(report["worst_seed_targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
