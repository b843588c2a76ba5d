"""Fit the eGeMAPS teacher on a labelled split and write it as a pinned artefact.

The demo teacher (``egemaps-teacher`` in ``models.yaml``) is this script's
output, committed under ``weights/egemaps-teacher/`` and pinned by its
SHA-256. A fit is deterministic on one machine, but its last bits follow the
CPU's vector instructions (numpy and OpenBLAS choose kernels at run time: a
fit with AVX-512 and one with AVX2 differ by about 1e-6 in their outputs), so
fitting on each machine would give each machine another teacher hash, and with
it other result rows and distillation caches.

Usage::

    python scripts/fit_teacher.py --out weights/egemaps-teacher     # the demo teacher
    python scripts/fit_teacher.py --data real --out weights/egemaps-msppodcast
    python scripts/fit_teacher.py --real-speech emodb=../shared/data/emodb --out weights/egemaps-teacher-real

``--real-speech emodb=PATH`` adds the train speakers of an original EmoDB
release (never its test speakers), their emotions placed on A/D/V, with a
per-file weight and penalty per dimension chosen by speaker-grouped
cross-validation (:mod:`benchmark.models.egemaps_real`,
``docs/research/teacher-real-speech.md``).

It prints the ``source`` to put into the teacher's ``models.yaml`` entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="msppodcast", help="dataset of datasets.yaml")
    parser.add_argument("--split", default="train", help="labelled split to fit on")
    parser.add_argument("--data", choices=("demo", "real"), default="demo")
    parser.add_argument("--out", required=True, help="folder for model.npz and model.json")
    parser.add_argument("--workers", type=int, default=2, help="threads for feature extraction")
    parser.add_argument("--real-speech", metavar="emodb=PATH", help="also fit on an EmoDB release's train speakers")
    parser.add_argument("--name", default="egemaps", help="model name stored with the fit")
    args = parser.parse_args(argv)
    real = None
    if args.real_speech:
        from benchmark.data.errors import DatasetConfigError
        from benchmark.data.releases.emodb import real_speech_folder

        try:
            real = real_speech_folder(args.real_speech)
        except DatasetConfigError as error:
            parser.error(str(error))

    from benchmark import egemaps, load_split, sha256_file

    evalset = load_split(args.dataset, args.split, data=args.data)
    if real:
        from benchmark import egemaps_real

        model = egemaps_real.fit_with_real(evalset, real, num_workers=args.workers, name=args.name)
    else:
        model = egemaps.fit(evalset, num_workers=args.workers)
    path = model.save(args.out)
    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path.resolve()
    print(f"source: {{path: {shown.as_posix()}, sha256: {sha256_file(path)}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
