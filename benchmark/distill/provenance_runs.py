"""Provenance records that keep the runs before them.

A distillation rewrites its provenance records (``weights/<student>/
provenance.json``, the int8 copy, ``results/distill/<student>/
provenance.json``). Those records are not part of the artefact hash
(:func:`benchmark.hashing.artifact_sha256`), so re-making the same
network with newer code keeps the model's identity; what the earlier
run recorded is kept too, under :data:`RUNS_KEY`.

Each earlier run is stored as the top-level fields in which its record
differs from the newest one (usually only ``code``; ``date`` and
timings in the results copy), plus ``absent_fields`` for fields it did
not have. The newest record with an earlier run's entry laid over it
is that run's record again (:func:`rebuild`). A run whose record equals
the newest one adds nothing, so re-running the same code twice leaves
the model folder's record byte for byte as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RUNS_KEY = "earlier_runs"
"""Field of a provenance record that lists the earlier runs, oldest first."""

ABSENT = "absent_fields"
"""Field of a run entry: top-level fields the run's record did not have."""

_MISSING = object()


def read_record(path: str | os.PathLike) -> dict | None:
    r"""The provenance record at ``path``; ``None`` if there is none.

    A file that is not a JSON object is kept as text (``{"unreadable": ...}``),
    so rewriting the record never drops what was there.
    """
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text()
    try:
        record = json.loads(text)
    except ValueError:
        return {"unreadable": text}
    return record if isinstance(record, dict) else {"unreadable": text}


def read_records(*paths: str | os.PathLike) -> list[dict | None]:
    r""":func:`read_record` of each path: call it before a run replaces the files."""
    return [read_record(p) for p in paths]


def difference(record: dict, earlier: dict) -> dict:
    r"""``earlier`` as the top-level fields in which it differs from ``record``.

    Examples:
        >>> difference({"code": "b", "seed": 0, "new": 1}, {"code": "a", "seed": 0})
        {'code': 'a', 'absent_fields': ['new']}
        >>> difference({"code": "a"}, {"code": "a"})
        {}

    """
    out = {k: v for k, v in earlier.items() if k != RUNS_KEY and record.get(k, _MISSING) != v}
    absent = sorted(k for k in record if k != RUNS_KEY and k not in earlier)
    if absent:
        out[ABSENT] = absent
    return out


def rebuild(record: dict, run: dict) -> dict:
    r"""The full record of an earlier ``run`` (an entry of ``record[RUNS_KEY]``).

    Examples:
        >>> new = {"code": "b", "seed": 0, "new": 1}
        >>> rebuild(new, difference(new, {"code": "a", "seed": 0}))
        {'code': 'a', 'seed': 0}

    """
    absent = set(run.get(ABSENT, ()))
    full = {k: v for k, v in record.items() if k != RUNS_KEY and k not in absent}
    full.update({k: v for k, v in run.items() if k != ABSENT})
    return full


def with_runs(record: dict, earlier: dict | None) -> dict:
    r"""``record`` with the runs recorded in ``earlier`` (and ``earlier`` itself) kept.

    Runs identical to ``record`` are dropped: the record itself says what
    they did.

    Examples:
        >>> first = {"code": "a", "seed": 0}
        >>> second = with_runs({"code": "b", "seed": 0}, first)
        >>> second
        {'code': 'b', 'seed': 0, 'earlier_runs': [{'code': 'a'}]}
        >>> with_runs({"code": "b", "seed": 0}, second) == second
        True
        >>> with_runs({"code": "c", "seed": 0}, second)["earlier_runs"]
        [{'code': 'a'}, {'code': 'b'}]

    """
    # as it will read back from JSON (tuples become lists), so equal runs compare equal
    record = json.loads(json.dumps({k: v for k, v in record.items() if k != RUNS_KEY}, default=str))
    if not earlier:
        return record
    runs: list[dict] = [rebuild(earlier, r) for r in earlier.get(RUNS_KEY) or [] if isinstance(r, dict)]
    runs.append({k: v for k, v in earlier.items() if k != RUNS_KEY})
    entries = [d for d in (difference(record, full) for full in runs) if d]
    return {**record, RUNS_KEY: entries} if entries else record
