"""Name stored predictions by their data fingerprint (results/predictions/, once per results folder).

Usage: ``python scripts/migrate_predictions.py [RESULTS_DIR]`` (default: the project's ``results/``).
Renames ``MODEL__SHA/DATASET__VERSION__SPLIT.csv`` to
``MODEL__SHA/DATASET__VERSION__SPLIT__FINGERPRINT.csv`` (see
:func:`benchmark.results.migrate_predictions`); files already named so are left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmark import results


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve() if argv else None
    try:
        renamed = results.migrate_predictions(root)
    except ValueError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    for old, new in renamed:
        print(f"{old.parent.name}/{old.name} -> {new.name}")
    print(f"{len(renamed)} file(s) renamed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
