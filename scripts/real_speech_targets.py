"""Real-speech distillation checks: students against their teachers on EmoDB's train speakers.

For each student, its arousal ranking (AUC of high- vs low-arousal
emotions) on the train speakers of an original EmoDB release must lie
within 0.02 of its teacher's, and its sex gap (female AUC − male AUC)
within ser-tests' 0.075 (:mod:`benchmark.analyses.real_speech_check`).
The test speakers are never read.

Usage::

    python scripts/real_speech_targets.py ../shared/data/emodb \
        --students wav2small wav2small-int8 wav2small-17k mobilenetv4-conv-small \
        [--teacher egemaps-teacher] [--models models.yaml] [--out table.csv]

Without ``--teacher`` each student is compared with the teacher its
``distilled`` entry names. Exit status 1 if a student misses a check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="EmoDB release folder (wav/, erkennung.txt)")
    parser.add_argument("--students", nargs="+", required=True, help="student names of the model registry")
    parser.add_argument("--teacher", help="teacher to compare with (default: each student's distilled.teacher)")
    parser.add_argument("--models", default=str(ROOT / "models.yaml"), help="model registry file")
    parser.add_argument("--out", help="write the table as CSV here")
    args = parser.parse_args(argv)

    import pandas as pd

    from benchmark import DatasetConfigError, Registry, atomic_write, load_model
    from benchmark import real_speech_check as check
    from benchmark.data.releases.emodb import train_speaker_files

    registry = Registry.from_file(args.models)
    try:
        files = train_speaker_files(args.path)
    except DatasetConfigError as error:
        parser.error(str(error))
    pairs = []
    for student in args.students:
        if student not in registry:
            parser.error(f"model '{student}' is not in {args.models}; use one of {', '.join(registry)}")
        teacher = args.teacher or (registry[student].distilled or {}).get("teacher")
        if not teacher or teacher not in registry:
            parser.error(f"model '{student}': no teacher to compare with; give --teacher NAME")
        pairs.append((student, teacher))
    cache = {}
    for name in sorted({n for pair in pairs for n in pair}):
        print(f"predicting {name} on {len(files)} train-speaker files ...", file=sys.stderr, flush=True)
        cache[name] = check.predict_files(load_model(name, registry), files["source"].tolist())
    table = pd.DataFrame([check.compare(cache[s], cache[t], files, s, t) for s, t in pairs])
    text = table.to_csv(index=False, float_format="%.4f")
    if args.out:
        atomic_write(Path(args.out), text.encode())
    print(text, end="")
    return 0 if table["passed"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
