"""Why a student misses its eGeMAPS teacher: six measurements behind docs/distillation.md.

1. **Fit gap.** CCC(student, teacher) on training pool files against held-out
   pool files, whole and clean. Equal figures mean the student does not overfit:
   more unlabeled audio would not help; what it cannot fit is the limit.
2. **What the teacher's valence is made of.** Its ridge weights on the
   standardised features of the training pool files: the two largest, the
   correlation of their features, the variance of their net contribution, of
   the rest and of the output, and how the student's and the teacher's valence
   correlate with each part; then the same by feature group (F0, jitter/shimmer/HNR,
   formants, loudness, spectral, temporal).
3. **Test-retest.** CCC between a model's outputs on the test-1 files and on
   the same files without their first ``k`` samples. 800 samples (50 ms) are
   5 frames of the teacher's 10 ms hop, so it recomputes the same frames;
   80 and 7 samples move every frame. A student cannot agree with its teacher
   better than the teacher agrees with itself under such a shift.
4. **The training augmentations.** CCC between a model's outputs on the clean
   training crops and on the same crops under one transform of the default
   recipe at a time (noise, babble, filter; parameters drawn from its ranges).
   Distillation trains on the teacher's outputs for the augmented crops: where
   they part from its clean outputs, the student learns how the teacher fails.
5. **Split to split.** CCC(student, teacher) with 95 % bootstrap intervals on
   every demo corpus split (whole, clean files; no labels needed) and on the
   held-out pool files: how far the figure on test-1, the split the targets
   are measured on, is a property of that split. The pool's speakers are not
   in any corpus split; msppodcast ``train`` is the audio the teacher was fitted on.
6. **By duration.** CCC(student, teacher) with 95 % bootstrap intervals on the
   test-1 files grouped by duration (under 2 s, 2-3 s, 3-4 s, 4 s and more):
   where on test-1 the student parts from its teacher. Training crops are at
   most 4 s (``--crop-seconds``), cut to a multiple of 0.5 s.

Usage::

    python experiments/teacher_diagnostics.py                      # wav2small, 400 training files
    python experiments/teacher_diagnostics.py --student mobilenetv3-large --files 200
    python experiments/teacher_diagnostics.py --measure 4          # only the augmentations
    python experiments/teacher_diagnostics.py --measure 5          # test-1 against the other splits
    python experiments/teacher_diagnostics.py --measure 6          # test-1 by file duration
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

DIMS = ("arousal", "dominance", "valence")


def cccs(a: np.ndarray, b: np.ndarray) -> str:
    from benchmark import ccc_numpy

    return " / ".join(f"{ccc_numpy(a[:, d], b[:, d]):.3f}" for d in range(a.shape[1]))


FEATURE_GROUPS = {
    # eGeMAPS feature name patterns, checked in this order
    "F0": r"F0semitone",
    "jitter/shimmer/HNR": r"jitter|shimmer|HNR",
    "formants": r"F[123](frequency|bandwidth|amplitude)",
    "loudness": r"loudness|equivalentSoundLevel",
    "spectral": r"alpha|hammarberg|slope|mfcc|spectralFlux|H1-H2|H1-A3",
    "temporal": r"Rate|Segment|Seconds",
    "other": r"",
}


def feature_group(name: str) -> str:
    r"""The group of an eGeMAPS feature, e.g. ``'F0'`` for ``F0semitoneFrom27.5Hz_sma3nz_amean``."""
    import re

    return next(g for g, pattern in FEATURE_GROUPS.items() if re.search(pattern, name))


def fit_gap(names, train_t, train_s, held_t, held_s, n_train) -> None:
    r"""1. The student against its teacher on training and on held-out pool files."""
    from benchmark.distill import annotate

    print(f"1. CCC({names[1]}, {names[0]}), whole clean pool files, A / D / V")
    for label, t, s in (
        (f"{n_train} training files", train_t, train_s),
        (f"{len(held_t)} held-out files", held_t, held_s),
    ):
        ok = annotate.in_range(t)
        print(f"   {label:20s} {cccs(t[ok], s[ok])}")


def valence_parts(teacher, names, features, train_t, train_s) -> None:
    r"""2. The teacher's valence: its two largest ridge weights against the rest."""
    from benchmark import egemaps

    print(f"\n2. {names[0]}'s valence on the {len(features)} training files")
    a = teacher.arrays
    z = egemaps.standardise(features, a["mean"], a["scale"], float(a["clip"][0]))
    feature = teacher.meta.get("feature_names") or [f"feature {i}" for i in range(z.shape[1])]
    coef = a["coef"][DIMS.index("valence")]
    i, j = np.argsort(-np.abs(coef))[:2]
    pair = z[:, [i, j]] @ coef[[i, j]]
    rest = z @ coef - pair
    valence = z @ coef
    print(
        f"   penalty alpha {float(a['alpha'][2]):g}; largest weights {coef[i]:+.3f} {feature[i]}, {coef[j]:+.3f} {feature[j]}"
    )
    print(
        f"   correlation of those two features {np.corrcoef(z[:, i], z[:, j])[0, 1]:.4f}; "
        f"next largest |weight| {np.sort(np.abs(coef))[-3]:.3f}; largest arousal |weight| {np.abs(a['coef'][0]).max():.3f}"
    )
    print(
        f"   variance: their net contribution {pair.var():.4f}, the other features' {rest.var():.4f}, "
        f"output {valence.var():.4f} (covariance of the parts {np.cov(pair, rest)[0, 1]:+.4f})"
    )
    for label, v in (("teacher", train_t[:, 2]), (names[1], train_s[:, 2])):
        print(
            f"   correlation of {label}'s valence with the pair {np.corrcoef(v, pair)[0, 1]:+.2f}, "
            f"with the rest {np.corrcoef(v, rest)[0, 1]:+.2f}"
        )
    print(
        "   by feature group: variance of its part of the valence, correlation with the teacher's and "
        f"{names[1]}'s valence"
    )
    groups = np.array([feature_group(n) for n in feature])
    for g in FEATURE_GROUPS:
        part = z[:, groups == g] @ coef[groups == g]
        if (groups == g).any() and part.var() > 0:
            print(
                f"   {g:20s} {int((groups == g).sum()):2d} features  variance {part.var():.4f}  "
                f"teacher {np.corrcoef(part, train_t[:, 2])[0, 1]:+.2f}  {names[1]} {np.corrcoef(part, train_s[:, 2])[0, 1]:+.2f}"
            )


def test_retest(models: dict) -> None:
    r"""3. Each model against itself on test-1 without the first k samples."""
    from benchmark import load_split
    from benchmark.distill import audio

    evalset = load_split("msppodcast", "test-1", data="demo")
    signals = [audio.read_audio(str(f)) for f in evalset.files]
    print(
        f"\n3. Test-retest on msppodcast test-1 ({len(signals)} files): "
        "CCC(outputs, outputs without the first k samples), A / D / V"
    )
    for label, model in models.items():
        whole = model.predict_batch(signals)
        for k in (800, 80, 7):
            print(f"   {label:20s} k = {k:3d}: {cccs(whole, model.predict_batch([x[k:] for x in signals]))}")


def augmentations(models: dict, clean: list[np.ndarray], seed: int) -> None:
    r"""4. Each model on clean training crops against the same crops under one transform."""
    from benchmark.distill import audio, crops

    print(
        f"\n4. The training augmentations, {len(clean)} clean training crops: "
        "CCC(outputs on the clean crop, on the same crop transformed), A / D / V"
    )
    only = {
        "noise": crops.Augmentation(noise_prob=1.0, babble_prob=0.0, filter_prob=0.0),
        "babble": crops.Augmentation(noise_prob=0.0, babble_prob=1.0, filter_prob=0.0),
        "filter": crops.Augmentation(noise_prob=0.0, babble_prob=0.0, filter_prob=1.0),
    }
    kinds, augmented = [], []
    for k, aug in enumerate(only.values()):
        for i, crop in enumerate(clean):
            babble = [clean[(i + 1 + b) % len(clean)] for b in range(6)]  # other speakers' crops
            out, applied = crops.augment(crop, np.random.default_rng([seed, k, i]), aug, babble)
            kinds.append(applied[0].split()[0])  # white-noise, pink-noise, babble, lowpass, highpass
            augmented.append(audio.as_stored(out))
    kinds = np.array(kinds)
    for label, model in models.items():
        reference = np.tile(model.predict_batch(clean), (len(only), 1))
        outputs = model.predict_batch(augmented)
        for kind in sorted(set(kinds)):
            rows = kinds == kind
            print(f"   {label:20s} {kind:12s} ({rows.sum():3d} crops) {cccs(reference[rows], outputs[rows])}")


def agreement(teacher, student, signals: list[np.ndarray]) -> str:
    r"""CCC(student, teacher) per dimension and mean, with 95 % bootstrap intervals.

    Off-scale teacher outputs are left out, as in training.
    """
    from benchmark import bootstrap_ccc_columns, ccc_numpy
    from benchmark.distill import annotate

    t, s = teacher.predict_batch(signals), student.predict_batch(signals)
    keep = annotate.in_range(t)  # as in training: off-scale teacher outputs are teacher failures
    t, s = t[keep], s[keep]
    ci = bootstrap_ccc_columns(t, s, DIMS)
    values = [ccc_numpy(t[:, d], s[:, d]) for d in range(len(DIMS))]
    cells = [f"{v:.3f} [{ci[d][0]:.3f}, {ci[d][1]:.3f}]" for v, d in zip(values, DIMS)]
    mean = f"{np.mean(values):.3f} [{ci['mean'][0]:.3f}, {ci['mean'][1]:.3f}]"
    return (
        f"{len(t):4d} files  "
        + " / ".join(cells)
        + f" / {mean}"
        + (f"  ({(~keep).sum()} off-scale left out)" if (~keep).any() else "")
    )


SPLITS = (
    ("msppodcast", "test-1"),
    ("msppodcast", "test-2"),
    ("msppodcast", "train"),
    ("iemocap", "test"),
    ("mosi", "test"),
)
"""Demo corpus splits of measurement 5 (``load_split`` names)."""


def splits(models: dict, held_files: list[str]) -> None:
    r"""5. CCC(student, teacher) with 95 % bootstrap intervals on every demo split."""
    from benchmark import load_split
    from benchmark.distill import audio

    (teacher_name, teacher), (student_name, student) = models.items()
    print(
        f"\n5. CCC({student_name}, {teacher_name}) by split, whole clean files, A / D / V / mean "
        "[95 % bootstrap interval, 1000 resamples of the files]"
    )
    sets = {
        f"{corpus} {split}": [str(f) for f in load_split(corpus, split, data="demo").files] for corpus, split in SPLITS
    }
    sets["pool, held-out files"] = held_files
    for label, files in sets.items():
        print(f"   {label:22s} " + agreement(teacher, student, [audio.read_audio(f) for f in files]))


DURATIONS = ((0.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, float("inf")))
"""Duration groups of measurement 6, in seconds (lower bound included)."""


def durations(models: dict) -> None:
    r"""6. CCC(student, teacher) on test-1, by file duration."""
    from benchmark import load_split
    from benchmark.distill import audio

    (teacher_name, teacher), (student_name, student) = models.items()
    signals = [audio.read_audio(str(f)) for f in load_split("msppodcast", "test-1", data="demo").files]
    seconds = np.array([len(x) / audio.SAMPLING_RATE for x in signals])
    print(
        f"\n6. CCC({student_name}, {teacher_name}) on msppodcast test-1 by file duration, whole clean "
        "files, A / D / V / mean [95 % bootstrap interval]"
    )
    for low, high in DURATIONS:
        group = [x for x, d in zip(signals, seconds) if low <= d < high]
        label = f"{low:.0f} s and more" if high == float("inf") else f"{low:.0f}-{high:.0f} s"
        print(f"   {label:12s} " + agreement(teacher, student, group))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="wav2small")
    parser.add_argument("--teacher", default="egemaps-teacher")
    parser.add_argument("--files", type=int, default=400, help="training pool files to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--measure",
        type=int,
        nargs="+",
        choices=(1, 2, 3, 4, 5, 6),
        default=(1, 2, 3, 4, 5, 6),
        help="which measurements to run",
    )
    args = parser.parse_args(argv)

    from benchmark import load_model, pool_files
    from benchmark.distill import audio, crops
    from benchmark.distill.teacher import load_teacher

    teacher, _ = load_teacher(args.teacher, ROOT / "models.yaml")
    teacher.num_workers = os.cpu_count() or 1  # threads for predict_batch; outputs do not depend on them
    student = load_model(args.student)
    models = {args.teacher: teacher, args.student: student}
    train, held = audio.scan_pool(sorted(str(f) for f in pool_files())).split(0.1)
    rng = np.random.default_rng(args.seed)
    sample = list(rng.choice(train.files, min(args.files, len(train.files)), replace=False))
    train_signals = [audio.read_audio(f) for f in sample]

    if {1, 2} & set(args.measure):
        # the training files' features serve both the teacher's outputs (1.) and its decomposition (2.)
        with concurrent.futures.ThreadPoolExecutor(teacher.num_workers) as pool:
            features = np.stack(list(pool.map(teacher.features, train_signals)))
        train_t, train_s = teacher.regress(features), student.predict_batch(train_signals)
    if 1 in args.measure:
        held_signals = [audio.read_audio(f) for f in held.files]
        fit_gap(
            (args.teacher, args.student),
            train_t,
            train_s,
            teacher.predict_batch(held_signals),
            student.predict_batch(held_signals),
            len(sample),
        )
    if 2 in args.measure:
        valence_parts(teacher, (args.teacher, args.student), features, train_t, train_s)
    if 3 in args.measure:
        test_retest(models)
    if 4 in args.measure:
        recipe = crops.Recipe()
        file_hash = dict(zip(train.files, train.hashes))
        clean = [crops.make_crop(x, file_hash[f], 0, recipe)[0] for x, f in zip(train_signals, sample)]
        augmentations(models, clean, args.seed)
    if 5 in args.measure:
        splits(models, held.files)
    if 6 in args.measure:
        durations(models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
