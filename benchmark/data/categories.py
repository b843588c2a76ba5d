"""Categorical emotion labels placed on the arousal / dominance / valence axes.

A ``datasets.yaml`` entry may declare ``categories: {column: emotion}``
(optionally ``table:`` and ``map:``). Each category is placed on each
dimension as ``high`` / ``low`` (arousal, dominance) or ``positive`` /
``negative`` (valence); a dimension it is not placed on is unused for
that category. :data:`DEFAULT_MAP` places the common names; a category
found in the data (or in audformat's category scheme) that has no place
in the entry's ``map`` nor in the default is an error that lists it:
categories are never dropped silently. Map a category to ``{}`` to
leave it out on purpose.
"""

from __future__ import annotations

import typing

HIGH, LOW = "high", "low"
SIDES = {"arousal": (HIGH, LOW), "dominance": (HIGH, LOW), "valence": ("positive", "negative")}
"""Per dimension: the name of its high side and of its low side."""

_A_HIGH, _A_LOW = {"arousal": "high"}, {"arousal": "low"}
DEFAULT_MAP: dict[str, dict[str, str]] = {
    "anger": {"arousal": "high", "dominance": "high", "valence": "negative"},
    "happiness": {"arousal": "high", "valence": "positive"},
    "joy": {"arousal": "high", "valence": "positive"},
    "excitement": {"arousal": "high", "valence": "positive"},
    "fear": {"arousal": "high", "dominance": "low", "valence": "negative"},
    "surprise": {"arousal": "high"},
    "disgust": {"valence": "negative"},
    "contempt": {"dominance": "high", "valence": "negative"},
    "frustration": {"valence": "negative"},
    "sadness": {"arousal": "low", "dominance": "low", "valence": "negative"},
    "boredom": {"arousal": "low", "valence": "negative"},
    "calm": {"arousal": "low", "valence": "positive"},
    "neutral": {},
    "other": {},
}
r"""Where the common category names lie (after ser-tests' use of categorical corpora).

Arousal: anger, happiness, fear, surprise high; sadness, boredom, calm
low. Valence: happiness, calm positive; anger, fear, disgust, sadness,
boredom negative. Dominance: anger, contempt high; fear, sadness low.
Neutral is on no side of any dimension. Spelling variants
(:data:`ALIASES`) and case are folded before lookup.
"""

ALIASES = {
    "angry": "anger",
    "happy": "happiness",
    "sad": "sadness",
    "fearful": "fear",
    "afraid": "fear",
    "surprised": "surprise",
    "disgusted": "disgust",
    "bored": "boredom",
    "excited": "excitement",
    "frustrated": "frustration",
    "ang": "anger",
    "hap": "happiness",
    "sad.": "sadness",
    "neu": "neutral",
    "fea": "fear",
    "dis": "disgust",
    "sur": "surprise",
    "exc": "excitement",
    "fru": "frustration",
}


def normal(name: str) -> str:
    r"""A category name folded for lookup.

    Examples:
        >>> normal(" Angry ")
        'anger'

    """
    text = str(name).strip().lower()
    return ALIASES.get(text, text)


def map_problems(raw) -> list[str]:
    r"""Problems of an entry's ``categories`` field (empty if valid).

    Examples:
        >>> map_problems({"column": "emotion", "map": {"joy": {"arousal": "up"}}})
        ["field 'categories.map.joy.arousal': give high or low, got 'up'"]

    """
    if not isinstance(raw, dict):
        return [f"field 'categories': give a mapping {{column: ..., map: ...}}, got {raw!r}"]
    problems = []
    if not isinstance(raw.get("column"), str) or not raw.get("column"):
        problems.append("field 'categories.column': name the column that holds the category")
    if "table" in raw and (not isinstance(raw["table"], str) or not raw["table"]):
        problems.append(f"field 'categories.table': give a table name, got {raw['table']!r}")
    unknown = sorted(set(raw) - {"column", "table", "map"})
    if unknown:
        problems.append(f"field 'categories': unknown key(s) {unknown}; use column, table, map")
    places = raw.get("map", {})
    if not isinstance(places, dict):
        return problems + [f"field 'categories.map': give {{category: {{dimension: side}}}}, got {places!r}"]
    for category, sides in places.items():
        if sides is None:
            continue
        if not isinstance(sides, dict):
            problems.append(f"field 'categories.map.{category}': give {{dimension: side}}, got {sides!r}")
            continue
        for dim, side in sides.items():
            if dim not in SIDES:
                problems.append(f"field 'categories.map.{category}': unknown dimension '{dim}'; use {', '.join(SIDES)}")
            elif side not in SIDES[dim]:
                problems.append(
                    f"field 'categories.map.{category}.{dim}': give {' or '.join(SIDES[dim])}, got {side!r}"
                )
    return problems


def placement(categories: typing.Iterable[str], custom: dict | None = None) -> tuple[dict[str, dict], list[str]]:
    r"""Where each category lies, and the categories that have no place.

    Args:
        categories: category names as they appear in the data or scheme
        custom: the entry's ``map`` (takes precedence over :data:`DEFAULT_MAP`)

    Returns:
        ``{category: {dimension: 'high'|'low'}}`` (valence's sides
        translated to high/low) and the sorted unknown names

    Examples:
        >>> places, unknown = placement(["Angry", "sadness", "grumpy"])
        >>> places["Angry"]["arousal"], places["sadness"]["valence"], unknown
        ('high', 'low', ['grumpy'])

    """
    custom = {normal(k): v or {} for k, v in (custom or {}).items()}
    places, unknown = {}, []
    for name in categories:
        key = normal(name)
        sides = custom.get(key, DEFAULT_MAP.get(key))
        if sides is None:
            unknown.append(str(name))
            continue
        places[name] = {dim: HIGH if side == SIDES[dim][0] else LOW for dim, side in sides.items()}
    return places, sorted(set(unknown))
