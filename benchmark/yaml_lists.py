"""YAML files that list named entries: ``models.yaml``, ``datasets.yaml``, ``thresholds.yaml``, ``conditions.yaml``.

Each file is read whole and every problem is reported at once, one line
per problem, each naming the file, the entry and what to fix::

    Invalid conditions:
      - conditions.yaml: entry 'loud': field 'type': unknown type 'gian'
      - conditions.yaml: entry #3: field 'name' is missing

What an entry must hold is the business of each file's reader; this
module holds what they share: parsing with a message that names the
line, labelling entries, finding duplicate names, and the message layout.
"""

from __future__ import annotations

import os
import typing

import yaml


def load_yaml(text: str, where: str | os.PathLike, error: type[Exception]) -> typing.Any:
    r"""``text`` parsed as YAML; invalid YAML raises ``error``, naming ``where`` and the line and column.

    Examples:
        >>> load_yaml("tests: [a, b]", "t.yaml", ValueError)
        {'tests': ['a', 'b']}
        >>> load_yaml("tests: [a", "t.yaml", ValueError)
        Traceback (most recent call last):
        ...
        ValueError: t.yaml: not valid YAML: while parsing a flow sequence
        ...

    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as ex:  # its text names the line and column
        raise error(f"{where}: not valid YAML: {ex}") from None


def listed(data: typing.Any, key: str) -> typing.Any:
    r"""What a parsed file holds under its top-level ``key`` (``None`` if it is not a mapping or lacks the key).

    Examples:
        >>> listed({"tests": [1]}, "tests"), listed(None, "tests"), listed([1], "tests")
        ([1], None, None)

    """
    return data.get(key) if isinstance(data, dict) else None


def entry_name(raw: typing.Any) -> str | None:
    r"""The ``name`` of an entry that is a mapping with a string name, else ``None``."""
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        return raw["name"]
    return None


def entry_label(raw: typing.Any, index: int, noun: str = "entry") -> str:
    r"""How messages name an entry: ``NOUN 'NAME'``, or its position where it has no name.

    Examples:
        >>> entry_label({"name": "loud"}, 0), entry_label({"name": "ccc"}, 0, "test"), entry_label([1], 2)
        ("entry 'loud'", "test 'ccc'", 'entry #3')

    """
    name = entry_name(raw)
    return f"{noun} '{name}'" if name is not None else f"entry #{index + 1}"


def check_entries(
    raw_entries: typing.Iterable[typing.Any],
    where: str | os.PathLike,
    problems_of: typing.Callable[[typing.Any], list[str]],
    *,
    noun: str = "entry",
    duplicate: typing.Callable[[int], str] = lambda first: "duplicate name",
) -> tuple[list[dict], list[str]]:
    r"""The valid entries of a list, and every problem of the others.

    Args:
        raw_entries: the entries as parsed
        where: the file, first in every problem line
        problems_of: the problems of one entry (empty if it is valid)
        noun: what an entry is called in messages (:func:`entry_label`)
        duplicate: the problem of a name that an earlier entry has,
            given the earlier entry's position

    Returns:
        the entries without problems, in file order, and the problems as
        ``WHERE: LABEL: PROBLEM`` lines

    Examples:
        >>> def problems(raw):
        ...     return [] if isinstance(raw, dict) and "name" in raw else ["field 'name' is missing"]
        >>> valid, errors = check_entries([{"name": "a"}, {}, {"name": "a"}], "x.yaml", problems)
        >>> valid
        [{'name': 'a'}]
        >>> errors
        ["x.yaml: entry #2: field 'name' is missing", "x.yaml: entry 'a': duplicate name"]

    """
    valid: list[dict] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_entries):
        problems = list(problems_of(raw))
        name = entry_name(raw)
        if name is not None:
            if name in seen:
                problems.append(duplicate(seen[name]))
            seen.setdefault(name, i)
        errors += [f"{where}: {entry_label(raw, i, noun)}: {p}" for p in problems]
        if not problems:
            valid.append(raw)
    return valid, errors


def problem_list(title: str, errors: typing.Sequence[str]) -> str:
    r"""One message for every problem of a file, one line each.

    Examples:
        >>> print(problem_list("Invalid conditions", ["c.yaml: entry #1: bad", "c.yaml: entry #2: worse"]))
        Invalid conditions:
          - c.yaml: entry #1: bad
          - c.yaml: entry #2: worse

    """
    return f"{title}:\n  - " + "\n  - ".join(errors)
