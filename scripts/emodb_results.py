"""Reproduce the committed EmoDB results from the original EmoDB release folder.

    python scripts/emodb_results.py /path/to/emodb            # import, run every model, regenerate docs/
    python scripts/emodb_results.py /path/to/emodb --no-docs

Steps (each a ``python -m benchmark`` command, printed before it runs):

1. ``import-corpus emodb PATH --version 2.0.0`` into a file-system audb
   repository under the benchmark's cache (``<cache>/emodb-release``),
   with the table names, splits and speaker table of audb's public
   ``emodb`` 2.0.0. An import already in that repository is reused (delete
   the folder to import again: a published version is never overwritten).
2. ``run --model all --data public --dataset emodb --tests consistency``
   against that repository, with the default settings of ``results/``
   (seed 0, 1000 bootstrap resamples), into ``results/``. ``all`` skips
   models whose weights are not here. Consistency (with its sex and
   speaker fairness rows) is the only family that applies to a
   categorical corpus: the A/D/V families need A/D/V gold.
3. ``docs`` (unless ``--no-docs``).

Only EmoDB's test split (speakers 12, 14, 15, 16; 231 files) is scored.
docs/real-corpora.md says what a run on audb-public's copy reproduces.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "2.0.0"


def benchmark(*args: str) -> None:
    r"""Run ``python -m benchmark ARGS`` from the project root; stop the script if it fails."""
    command = [sys.executable, "-m", "benchmark", *args]
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    if code:
        sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    r"""Import the release, run every available model on its test split, regenerate the docs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the original EmoDB release (wav/ and erkennung.txt)")
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/")
    args = parser.parse_args(argv)
    folder = Path(args.folder).expanduser().resolve()
    if not (folder / "wav").is_dir() or not (folder / "erkennung.txt").is_file():
        parser.error(f"{folder}: not an EmoDB release folder (wav/ and erkennung.txt expected)")
    sys.path.insert(0, str(ROOT))
    from benchmark import cache_dir

    host = cache_dir("emodb-release")
    repository = f"local={host}"
    if (host / "local" / "emodb" / VERSION).exists():
        print(f"emodb {VERSION} is already in {host}/local: reused (delete {host} to import again)")
    else:
        benchmark(
            "import-corpus", "emodb", str(folder), "--version", VERSION,
            "--repository", repository, "--datasets", str(host / "datasets-emodb.yaml"),
        )  # fmt: skip
    benchmark(
        "run", "--model", "all", "--data", "public", "--dataset", "emodb",
        "--repository", repository, "--tests", "consistency", "--no-docs",
    )  # fmt: skip
    if not args.no_docs:
        benchmark("docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
