"""A synthetic pool with a far wider voice space than the demo's, to distil on.

    python experiments/wide_pool.py [--data demo] [--files 1000] [--seed 0] [--list wide.txt]
    python -m benchmark distill --data wide.txt ...

writes a list file of the ``--data`` files and the wide pool's, which
``python -m benchmark distill --data`` takes. No committed student was
distilled on it (it was the ``--pool-voices wide`` option of 0.13.0).

The demo pool's speakers vary little beyond their sex: female voices have
f0 around 210 Hz and formants 15 % up, male ones 120 Hz, and breathiness,
tilt and channel vary within narrow ranges. A student distilled on it can
learn those sex cues; real voices differ in ways it never saw. This pool
draws every trait independently of sex and far beyond the demo's ranges
(domain randomisation): f0 overlapping across sexes, vocal-tract length
(formant scale), breathiness, spectral tilt, jitter, shimmer, recording
channel and noise floor. The same synthesizer renders it
(:func:`benchmark.data.synth.synthesize`, whose code is not changed: the
demo databases and their generator digest stay as they were).

Files are written once to the cache (``distill/wide-pool/...``) and are
then ordinary pool files: the teacher labels them like any other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from benchmark import cache_dir, resolve_files

VERSION = 1
r"""Version of the generator below; part of the cache folder name."""

RANGES = {
    "f0": (75.0, 330.0),  # Hz, log-uniform, whatever the sex
    "formant_scale": (0.85, 1.30),  # vocal-tract length: factor on male formants
    "breathiness": (0.02, 0.90),
    "jitter": (0.002, 0.030),  # log-uniform
    "shimmer": (0.01, 0.15),  # log-uniform
    "rate": (3.0, 6.5),
    "expressiveness": (0.5, 2.0),  # log-uniform
    "level": (-8.0, 8.0),
    "tilt": (-0.15, 0.15),
    "channel": (-0.6, 0.6),
    "noise_floor": (-75.0, -45.0),
}
r"""Trait ranges of the wide voices (uniform unless noted); the demo speakers' are in :func:`benchmark.data.synth.make_speaker`."""

LOG_UNIFORM = ("f0", "jitter", "shimmer", "expressiveness")
UTTERANCES_PER_SPEAKER = 4


def wide_speaker(speaker_id: str, rng: np.random.Generator):
    r"""A speaker whose traits are drawn from :data:`RANGES`, independently of the (also drawn) sex.

    Examples:
        >>> spk = wide_speaker("w1", np.random.default_rng(0))
        >>> 75 <= spk.f0 <= 330, 0.85 <= spk.formant_scale <= 1.3, spk.sex in ("female", "male")
        (True, True, True)

    """
    from benchmark import synth

    traits = {}
    for name, (low, high) in RANGES.items():
        u = rng.random()
        traits[name] = (
            float(np.exp(np.log(low) + u * (np.log(high) - np.log(low))))
            if name in LOG_UNIFORM
            else float(low + u * (high - low))
        )
    sex = "female" if rng.random() < 0.5 else "male"
    return synth.Speaker(id=speaker_id, sex=sex, **traits)


def wide_pool(files: int, seed: int = 0) -> tuple[list[str], dict]:
    r"""The files of a wide-voice pool of ``files`` utterances, generated on first use.

    Args:
        files: number of utterances (:data:`UTTERANCES_PER_SPEAKER` per speaker)
        seed: seeds speakers, emotions and synthesis

    Returns:
        the audio files (sorted) and a description of the pool: version,
        seed, files, speakers, ranges, speakers per sex, f0 and formant
        scale quantiles (recorded in the provenance)

    """
    import audiofile

    from benchmark import synth

    if files < 1:
        raise ValueError(f"--files {files}: give at least 1 utterance.")
    folder = cache_dir("distill", "wide-pool") / f"v{VERSION}-seed{seed}-n{files}"
    manifest = folder / "pool.json"
    if not manifest.exists():
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        speakers = []
        for i in range(files):
            rng = np.random.default_rng([seed, VERSION, i])
            if i % UTTERANCES_PER_SPEAKER == 0:
                speaker = wide_speaker(
                    f"wide{i // UTTERANCES_PER_SPEAKER:04d}", np.random.default_rng([seed, VERSION, i, 1])
                )
                speakers.append(speaker)
            emotion = synth.Emotion(*(float(v) for v in np.clip(rng.standard_normal(3), -2.5, 2.5)))
            signal = synth.synthesize(speaker, emotion, rng)
            audiofile.write(str(tmp / f"wide-{i:05d}.wav"), signal, synth.SAMPLING_RATE, bit_depth=16)
        f0 = np.array([s.f0 for s in speakers])
        scale = np.array([s.formant_scale for s in speakers])
        info = {
            "version": VERSION,
            "seed": seed,
            "files": files,
            "speakers": len(speakers),
            "utterances_per_speaker": UTTERANCES_PER_SPEAKER,
            "ranges": {k: list(v) for k, v in RANGES.items()},
            "speakers_per_sex": {sex: sum(s.sex == sex for s in speakers) for sex in ("female", "male")},
            "f0_quantiles_5_50_95": [round(float(q), 1) for q in np.quantile(f0, [0.05, 0.5, 0.95])],
            "formant_scale_quantiles_5_50_95": [round(float(q), 3) for q in np.quantile(scale, [0.05, 0.5, 0.95])],
        }
        (tmp / "pool.json").write_text(json.dumps(info, indent=1))
        if folder.exists():  # another process finished first: keep its files
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, folder)
    info = json.loads(manifest.read_text())
    return sorted(str(p) for p in Path(folder).glob("wide-*.wav")), info


def write_list(data: str, files: int, seed: int, path: Path) -> Path:
    r"""A list file of the audio ``data`` names (as ``--data``) and a wide pool of ``files`` utterances."""
    listed, _ = resolve_files(data)
    wide, _ = wide_pool(files, seed)
    path = Path(path)
    path.write_text("".join(f"{f}\n" for f in [*listed, *wide]))
    return path


def main(argv: list[str] | None = None) -> int:
    r"""Write the list file; print how to distil on it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="demo", help="the audio to add the wide pool to (as distill --data)")
    parser.add_argument("--files", type=int, default=1000, help="utterances of the wide pool")
    parser.add_argument("--seed", type=int, default=0, help="seeds speakers, emotions and synthesis")
    parser.add_argument("--list", default="wide-pool.txt", help="the list file to write")
    args = parser.parse_args(argv)
    path = write_list(args.data, args.files, args.seed, Path(args.list))
    print(f"wrote {path}; distil with: python -m benchmark distill --data {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
