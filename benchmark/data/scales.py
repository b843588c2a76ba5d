"""Checks that gold labels lie on the scale a ``datasets.yaml`` entry declares.

A wrong ``label_range`` gives wrong scores without any other sign (a
1..70 range over 1..7 labels squeezes every label near 0), so a range
the values do not fit is an error that names the scale they look like.
"""

from __future__ import annotations

import pandas as pd

from benchmark.data.errors import DatasetConfigError

KNOWN_SCALES = ((0.0, 1.0), (1.0, 5.0), (1.0, 7.0), (-3.0, 3.0), (1.0, 9.0), (0.0, 100.0))
"""Scales gold labels commonly use: 0..1 (audEERING), 1..5 (IEMOCAP), 1..7 (MSP-Podcast), -3..3 (MOSI)..."""


def looks_like(values: pd.Series) -> tuple[float, float] | None:
    r"""The narrowest of :data:`KNOWN_SCALES` holding all ``values``, or None.

    Examples:
        >>> looks_like(pd.Series([1.5, 6.9])), looks_like(pd.Series([0.2, 0.7])), looks_like(pd.Series([500.0]))
        ((1.0, 7.0), (0.0, 1.0), None)

    """
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if not len(numbers):
        return None
    fits = [s for s in KNOWN_SCALES if s[0] <= numbers.min() and numbers.max() <= s[1]]
    return min(fits, key=lambda s: s[1] - s[0]) if fits else None


def range_problem(values: pd.Series, label_range: tuple, scheme_range: tuple | None = None, column: str = "") -> str:
    r"""Why ``values`` do not fit ``label_range`` (empty if they do).

    Values outside the range are a problem; so is a range at least four
    times as wide as a known scale that holds every value and that the
    values fill at least half of (1..70 over 1..7 labels), and a range
    that differs from the scheme's declared minimum and maximum.

    Examples:
        >>> s = pd.Series([1.0, 2.5, 6.5, 7.0])
        >>> range_problem(s, (1, 70), column="arousal")
        "the values of column 'arousal' span 1..7, which looks like the scale 1..7, not 1..70"
        >>> range_problem(s, (1, 7)), range_problem(pd.Series([3.0, 4.0]), (1, 7))
        ('', '')

    """
    lo, hi = (float(v) for v in label_range)
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if not len(numbers):
        return ""
    vmin, vmax = float(numbers.min()), float(numbers.max())
    guess = looks_like(numbers)
    hint = f", which looks like the scale {guess[0]:g}..{guess[1]:g}" if guess else ""
    outside = numbers[(numbers < lo) | (numbers > hi)]
    if len(outside):
        return (
            f"{len(outside)} label(s) in column '{column}' lie outside label_range [{lo:g}, {hi:g}], e.g. {float(outside.iloc[0])!r} "
            f"for {outside.index[0]}; the values span {vmin:g}..{vmax:g}{hint}"
        )
    if scheme_range and all(v is not None for v in scheme_range):
        s_lo, s_hi = (float(v) for v in scheme_range)
        if (s_lo, s_hi) != (lo, hi):
            return (
                f"label_range [{lo:g}, {hi:g}] differs from the declared range {s_lo:g}..{s_hi:g} of the scheme "
                f"of column '{column}'"
            )
    if guess and (hi - lo) >= 4 * (guess[1] - guess[0]) and (vmax - vmin) >= 0.5 * (guess[1] - guess[0]):
        return f"the values of column '{column}' span {vmin:g}..{vmax:g}{hint}, not {lo:g}..{hi:g}"
    return ""


def check_range(values: pd.Series, entry, name: str, table: str, column: str, scheme_range=None) -> None:
    r"""Raise naming the dataset, table, column and likely scale if ``values`` do not fit the entry's range."""
    problem = range_problem(values, entry.label_range, scheme_range, column)
    if problem:
        raise DatasetConfigError(
            f"Dataset '{entry.name}' ({name}/{table}): {problem}. Fix 'label_range' in datasets.yaml."
        )
