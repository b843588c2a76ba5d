"""Wall time per phase of a run, printed as one line at its end.

The phases of ``python -m benchmark run``: ``data`` (load the splits and
plan the cells), ``predict`` (the executor), ``score`` (the analyses, from
stored predictions), ``report`` (pass/fail summary), ``docs`` (leaderboard).
``scripts/first_run.py`` reads this line.
"""

from __future__ import annotations

import contextlib
import re
import time
import typing

from benchmark import interrupts

PHASES = ("data", "predict", "score", "report", "docs")
"""The phases of a run, in the order they happen."""

LINE = re.compile(r"^timing: (?P<phases>.*)$", re.MULTILINE)


class Timing:
    r"""Seconds spent in each phase (a phase entered twice adds up).

    Examples:
        >>> timing = Timing()
        >>> timing.seconds.update(data=1.234, predict=80.06)
        >>> timing.line()
        'timing: data 1.2 s · predict 80.1 s'
        >>> parse(timing.line())
        {'data': 1.2, 'predict': 80.1}

    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> typing.Iterator[None]:
        r"""Time the block as phase ``name``.

        A Ctrl-C that a library swallowed in the block, after the last
        file it checked for one, ends the run here, before the next phase.
        """
        if name not in PHASES:
            raise ValueError(f"Unknown phase '{name}'; use one of {', '.join(PHASES)}.")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        interrupts.check()

    def line(self) -> str:
        r"""``timing: data 12.3 s · predict 80.1 s · …`` over the phases that ran, in run order."""
        parts = [f"{name} {self.seconds[name]:.1f} s" for name in PHASES if name in self.seconds]
        return "timing: " + " · ".join(parts)


def parse(text: str) -> dict[str, float]:
    r"""Seconds per phase from the last timing line in ``text`` (empty if there is none)."""
    found = LINE.findall(text)
    if not found:
        return {}
    out = {}
    for part in found[-1].split(" · "):
        name, value, _ = part.split(" ")
        out[name] = float(value)
    return out
