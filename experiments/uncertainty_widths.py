"""How much wider speaker-clustered CCC intervals are than file-level ones, and which cover: docs/research/uncertainty.md.

1. **Demo corpora.** For every stored predictions file of the models' current
   artefacts (``results/predictions/``) and every dimension: the 95 % CCC
   interval resampling files and resampling speakers; the median ratio of
   their widths per split.
2. **Coverage.** A generative corpus with a known population CCC
   (truth = speaker part + file part; prediction = truth + speaker bias +
   file noise) drawn on the speaker structure of each demo split and of
   EmoDB (all 10 speakers, and its 4 test speakers 12, 14, 15, 16), with
   the speakers' real file counts: how often each interval covers the
   population CCC.
3. **EmoDB audio.** A three-level arousal truth from the categories (anger,
   happiness, fear 1; neutral, disgust 0.5; sadness, boredom 0) against a naive
   acoustic score (mean percentile of the file's crest factor, log peak/RMS, and
   median F0; EmoDB's files are peak-normalised, so their RMS level falls with
   arousal while the crest factor rises):
   the widths of both intervals on real speech with its real speakers. The
   score is no benchmark model; it stands in for one to show the speaker structure.

Usage::

    python experiments/uncertainty_widths.py                  # all three, 200 replications
    python experiments/uncertainty_widths.py --replications 50 --emodb /work/shared/data/emodb
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import PROJECT_ROOT, metrics

EMODB_TEST = ("12", "14", "15", "16")
EMODB_AROUSAL = {"W": 1.0, "F": 1.0, "A": 1.0, "N": 0.5, "E": 0.5, "T": 0.0, "L": 0.0}
SD = (0.6, 0.4, 0.6, 0.3)  # speaker part of truth, file part, speaker bias of the prediction, file noise


def widths(truth: pd.Series, prediction: pd.Series, speaker: pd.Series, n: int, seed: int = 0) -> tuple[float, float]:
    r"""Widths of the file-level and the speaker-level 95 % CCC interval."""
    lo_f, hi_f = metrics.bootstrap_ci(truth, prediction, n=n, seed=seed)
    lo_s, hi_s = metrics.bootstrap_ci(truth, prediction, n=n, seed=seed, clusters=speaker)
    return hi_f - lo_f, hi_s - lo_s


def demo_widths(n: int) -> pd.DataFrame:
    r"""Part 1: per split, median speaker/file width ratio over the current artefacts' stored predictions."""
    correctness = pd.read_csv(PROJECT_ROOT / "results" / "correctness.csv", dtype=str)
    rows = []
    for path in sorted((PROJECT_ROOT / "results" / "predictions").glob("*/*.csv")):
        model, _, sha = path.parent.name.rpartition("__")
        dataset, _, split, _ = path.stem.split("__")
        newest = correctness[correctness["model"].eq(model)].sort_values("date").iloc[-1]["model_sha256"]
        if newest[:12] != sha:
            continue
        df = pd.read_csv(path, dtype={"file": str, "speaker": str})
        if "speaker" not in df or df["speaker"].nunique() < metrics.MIN_CLUSTERS:
            continue
        for dim in ("arousal", "dominance", "valence"):
            if f"pred_{dim}" not in df or f"truth_{dim}" not in df:
                continue
            file_w, speaker_w = widths(df[f"truth_{dim}"], df[f"pred_{dim}"], df["speaker"], n)
            if not file_w > 0:  # a constant prediction: CCC 0 on every resample
                continue
            rows.append({"split": f"{dataset}/{split}", "model": model, "dim": dim, "ratio": speaker_w / file_w})
    table = pd.DataFrame(rows)
    return table.groupby("split")["ratio"].describe(percentiles=[0.5])[["count", "min", "50%", "max"]]


def population_ccc(su: float, se: float, sb: float, sn: float) -> float:
    vt = su**2 + se**2
    return 2 * vt / (2 * vt + sb**2 + sn**2)


def coverage(counts: list[int], replications: int, n: int, seed: int = 1) -> dict:
    r"""Part 2: coverage and mean width of both intervals on a corpus with these files per speaker."""
    su, se, sb, sn = SD
    target = population_ccc(*SD)
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(len(counts)), counts)
    hits, width = collections.Counter(), collections.defaultdict(list)
    for r in range(replications):
        truth = rng.normal(0, su, len(counts))[spk] + rng.normal(0, se, len(spk))
        pred = truth + rng.normal(0, sb, len(counts))[spk] + rng.normal(0, sn, len(spk))
        t, p, s = pd.Series(truth), pd.Series(pred), pd.Series(spk.astype(str))
        for unit, clusters in (("file", None), ("speaker", s)):
            lo, hi = metrics.bootstrap_ci(t, p, n=n, seed=r, clusters=clusters)
            hits[unit] += lo <= target <= hi
            width[unit].append(hi - lo)
    return {
        "speakers": len(counts),
        "files": int(sum(counts)),
        "coverage file": hits["file"] / replications,
        "coverage speaker": hits["speaker"] / replications,
        "width file": float(np.mean(width["file"])),
        "width speaker": float(np.mean(width["speaker"])),
    }


def demo_structures() -> dict[str, list[int]]:
    r"""Files per speaker of each demo split, from the stored predictions of one model."""
    out = {}
    for path in sorted((PROJECT_ROOT / "results" / "predictions").glob("wav2small__*/*.csv")):
        df = pd.read_csv(path, dtype={"speaker": str})
        dataset, _, split, _ = path.stem.split("__")
        if "speaker" in df and df["speaker"].nunique() >= metrics.MIN_CLUSTERS:
            out[f"{dataset}/{split}"] = df["speaker"].value_counts().sort_index().tolist()
    return out


def emodb_files(root: Path) -> pd.DataFrame:
    r"""EmoDB's files with speaker and category letter, from the names (README of the release)."""
    files = sorted((root / "wav").glob("*.wav"))
    return pd.DataFrame({"path": files, "speaker": [f.name[:2] for f in files], "emotion": [f.name[5] for f in files]})


def emodb_audio(root: Path, n: int) -> pd.DataFrame:
    r"""Part 3: interval widths of the naive acoustic arousal score on EmoDB, all speakers and the test speakers."""
    from benchmark import median_f0, read_mono

    files = emodb_files(root)
    crest, f0 = [], []
    for path in files["path"]:
        signal = read_mono(path)[0]
        rms = np.sqrt(np.mean(signal.astype(float) ** 2))
        crest.append(float(np.log(np.abs(signal).max() / rms)))
        f0.append(median_f0(signal[None, :], 16000))
    files["truth"] = files["emotion"].map(EMODB_AROUSAL)
    score = (pd.Series(crest).rank(pct=True) + pd.Series(f0).rank(pct=True).fillna(0.5)) / 2
    files["pred"] = score.to_numpy()
    rows = []
    for name, part in (
        ("all 10 speakers", files),
        ("test speakers 12, 14, 15, 16", files[files["speaker"].isin(EMODB_TEST)]),
    ):
        part = part.reset_index(drop=True)
        ccc, r = metrics.ccc(part["truth"], part["pred"]), metrics.pearson(part["truth"], part["pred"])
        file_w, speaker_w = widths(part["truth"], part["pred"], part["speaker"], n)
        rows.append(
            {
                "set": name,
                "files": len(part),
                "ccc": ccc,
                "pearson": r,
                "width file": file_w,
                "width speaker": speaker_w,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--emodb", default="/work/shared/data/emodb", help="the original EmoDB release folder")
    parser.add_argument("--only", type=int, choices=(1, 2, 3), help="run one part")
    args = parser.parse_args()
    emodb = emodb_files(Path(args.emodb)) if Path(args.emodb).exists() else None
    if args.only in (None, 1):
        print("## 1. demo corpora: speaker/file interval width ratio (current artefacts x dimensions)")
        print(demo_widths(args.bootstrap).round(2).to_markdown())
    if args.only in (None, 2):
        coverage_part(emodb, args.replications, args.bootstrap)
    if emodb is not None and args.only in (None, 3):
        print("\n## 3. EmoDB audio: category arousal against a naive acoustic score")
        print(emodb_audio(Path(args.emodb), args.bootstrap).round(3).to_markdown(index=False))


def coverage_part(emodb: pd.DataFrame | None, replications: int, bootstrap: int) -> None:
    r"""Part 2 on the demo splits' speaker structures and, where the release is here, EmoDB's."""
    print(f"\n## 2. coverage of the population CCC {population_ccc(*SD):.3f}, {replications} replications")
    structures = demo_structures()
    if emodb is not None:
        structures["EmoDB, 10 speakers"] = emodb["speaker"].value_counts().sort_index().tolist()
        test = emodb[emodb["speaker"].isin(EMODB_TEST)]
        structures["EmoDB test, 4 speakers"] = test["speaker"].value_counts().sort_index().tolist()
    rows = [{"structure": k, **coverage(v, replications, bootstrap)} for k, v in structures.items()]
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
