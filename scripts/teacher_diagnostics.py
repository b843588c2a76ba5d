"""Why a student misses its eGeMAPS teacher: three measurements behind docs/distillation.md.

1. **Fit gap.** CCC(student, teacher) on training pool files against held-out
   pool files, whole and clean. Equal figures mean the student does not overfit:
   more unlabeled audio would not help; what it cannot fit is the limit.
2. **What the teacher's valence is made of.** Its ridge weights on the
   standardised features of the training pool files: the two largest, the
   correlation of their features, the variance of their net contribution, of
   the rest and of the output, and how the student's and the teacher's valence
   correlate with each part.
3. **Test-retest.** CCC between a model's outputs on the test-1 files and on
   the same files without their first ``k`` samples. 800 samples (50 ms) are
   5 frames of the teacher's 10 ms hop, so it recomputes the same frames;
   80 and 7 samples move every frame. A student cannot agree with its teacher
   better than the teacher agrees with itself under such a shift.

Usage::

    python scripts/teacher_diagnostics.py                      # wav2small, 400 training files
    python scripts/teacher_diagnostics.py --student mobilenetv3-large --files 200
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIMS = ("arousal", "dominance", "valence")


def cccs(a: np.ndarray, b: np.ndarray) -> str:
    from benchmark.metrics import ccc_numpy

    return " / ".join(f"{ccc_numpy(a[:, d], b[:, d]):.3f}" for d in range(a.shape[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="wav2small")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("--files", type=int, default=400, help="training pool files to sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from benchmark.data.datasets import load_split
    from benchmark.data.demo import pool_files
    from benchmark.distill import annotate
    from benchmark.distill.pipeline import load_teacher
    from benchmark.models.egemaps import standardise
    from benchmark.registry import load_model

    teacher, _ = load_teacher(args.teacher, ROOT / "models.yaml")
    teacher.num_workers = os.cpu_count() or 1  # threads for predict_batch; outputs do not depend on them
    student = load_model(args.student)
    train, held = annotate.scan_pool(sorted(str(f) for f in pool_files())).split(0.1)
    rng = np.random.default_rng(args.seed)
    sample = list(rng.choice(train.files, min(args.files, len(train.files)), replace=False))

    # the training files' features serve both the teacher's outputs (1.) and its decomposition (2.)
    train_signals = [annotate.read_audio(f) for f in sample]
    with concurrent.futures.ThreadPoolExecutor(teacher.num_workers) as pool:
        train_features = np.stack(list(pool.map(teacher.features, train_signals)))
    train_t, train_s = teacher.regress(train_features), student.predict_batch(train_signals)
    held_signals = [annotate.read_audio(f) for f in held.files]
    held_t, held_s = teacher.predict_batch(held_signals), student.predict_batch(held_signals)

    print(f"1. CCC({args.student}, {args.teacher}), whole clean pool files, A / D / V")
    for label, t, s in ((f"{len(sample)} training files", train_t, train_s),
                        (f"{len(held.files)} held-out files", held_t, held_s)):
        ok = annotate.in_range(t)
        print(f"   {label:20s} {cccs(t[ok], s[ok])}")

    print(f"\n2. {args.teacher}'s valence on the {len(sample)} training files")
    a = teacher.arrays
    z = standardise(train_features, a["mean"], a["scale"], float(a["clip"][0]))
    names = teacher.meta.get("feature_names") or [f"feature {i}" for i in range(z.shape[1])]
    coef = a["coef"][DIMS.index("valence")]
    i, j = np.argsort(-np.abs(coef))[:2]
    pair = z[:, [i, j]] @ coef[[i, j]]
    rest = z @ coef - pair
    valence = z @ coef
    print(f"   penalty alpha {float(a['alpha'][2]):g}; largest weights {coef[i]:+.3f} {names[i]}, {coef[j]:+.3f} {names[j]}")
    print(f"   correlation of those two features {np.corrcoef(z[:, i], z[:, j])[0, 1]:.4f}; "
          f"next largest |weight| {np.sort(np.abs(coef))[-3]:.3f}; largest arousal |weight| {np.abs(a['coef'][0]).max():.3f}")
    print(f"   variance: their net contribution {pair.var():.4f}, the other features' {rest.var():.4f}, "
          f"output {valence.var():.4f} (covariance of the parts {np.cov(pair, rest)[0, 1]:+.4f})")
    for label, v in (("teacher", train_t[:, 2]), (args.student, train_s[:, 2])):
        print(f"   correlation of {label}'s valence with the pair {np.corrcoef(v, pair)[0, 1]:+.2f}, "
              f"with the rest {np.corrcoef(v, rest)[0, 1]:+.2f}")

    evalset = load_split("msppodcast", "test-1", data="demo")
    signals = [annotate.read_audio(str(f)) for f in evalset.files]
    print(f"\n3. Test-retest on msppodcast test-1 ({len(signals)} files): CCC(outputs, outputs without the first k samples), A / D / V")
    for label, model in ((args.teacher, teacher), (args.student, student)):
        whole = model.predict_batch(signals)
        for k in (800, 80, 7):
            print(f"   {label:20s} k = {k:3d}: {cccs(whole, model.predict_batch([x[k:] for x in signals]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
