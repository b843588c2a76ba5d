"""Read a student's entry from ``models.yaml``, and record a distilled student there by a targeted text edit.

``models.yaml`` is written by people: comments, order, blank lines and
quoting are theirs. Loading and dumping the YAML would rewrite all of
it, so only the lines of the student's own entry are touched (its
``source`` and ``distilled`` fields); every other byte stays as it was.
An entry that does not exist yet is appended at the end of the list.
The result is parsed back and checked before it replaces the file.
"""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path

import yaml

from benchmark import RegistryError, atomic_write_text, parse_model_entries
from benchmark import read_model_entries as registry_entries
from benchmark.distill.config import DistillError


class RegistryUpdateError(ValueError):
    r"""``models.yaml`` cannot be updated safely; the message says why and what to do."""


def flow(value: typing.Any) -> str:
    r"""A value as one line of flow-style YAML, keys in the given order.

    Examples:
        >>> flow({"path": "weights/w", "sha256": "ab"})
        '{path: weights/w, sha256: ab}'
        >>> flow("a: b")
        "'a: b'"

    """
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf"), allow_unicode=True)
    text = text.strip()
    if text.endswith("\n...") or text.endswith("..."):
        text = text[: -len("...")].strip()
    return text


def render_entry(entry: dict, indent: int = 2) -> list[str]:
    r"""Lines of a new list entry (``- name: ...``), one field per line.

    Examples:
        >>> print("\n".join(render_entry({"name": "x", "source": {"path": "w/x"}})))
          - name: x
            source: {path: w/x}

    """
    lines = []
    for i, (key, value) in enumerate(entry.items()):
        prefix = " " * indent + ("- " if i == 0 else "  ")
        lines.append(f"{prefix}{key}: {flow(value)}")
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _entry_span(lines: list[str], name: str) -> tuple[int, int, int] | None:
    r"""``(first, end, dash_indent)`` of the list item named ``name``; ``end`` is exclusive.

    Trailing blank and comment lines are left outside the span: they
    separate this entry from the next one.
    """
    pattern = re.compile(r"^(\s*)-\s+name:\s*(['\"]?)(.+?)\2\s*(#.*)?$")
    for i, line in enumerate(lines):
        m = pattern.match(line)
        if not m or m.group(3) != name:
            continue
        dash = len(m.group(1))
        end = i + 1
        while end < len(lines) and (not _is_content(lines[end]) or _indent(lines[end]) > dash):
            end += 1
        while end > i + 1 and not _is_content(lines[end - 1]):
            end -= 1
        return i, end, dash
    return None


def set_fields(lines: list[str], span: tuple[int, int, int], fields: dict) -> list[str]:
    r"""Replace (or add at the end) top-level fields of one entry.

    A replaced field loses its continuation lines (a block-style
    mapping below it) and is written in flow style on one line.
    """
    first, end, dash = span
    block = lines[first:end]
    key_indent = dash + 2
    for key, value in fields.items():
        new_line = f"{' ' * key_indent}{key}: {flow(value)}"
        hit = None
        for j, line in enumerate(block):
            head = line[key_indent:] if j else line[dash + 2 :]
            if (j == 0 or _indent(line) == key_indent) and re.match(rf"{re.escape(key)}\s*:", head):
                hit = j
                break
        if hit is None:
            block.append(new_line)
            continue
        if hit == 0:
            raise RegistryUpdateError(f"Cannot rewrite the field '{key}' on the entry's first line.")
        stop = hit + 1
        while stop < len(block) and (not _is_content(block[stop]) or _indent(block[stop]) > key_indent):
            stop += 1
        while stop > hit + 1 and not _is_content(block[stop - 1]):
            stop -= 1
        block[hit:stop] = [new_line]
    return lines[:first] + block + lines[end:]


def append_entry(lines: list[str], entry: dict) -> list[str]:
    r"""Append a complete entry after the last entry of the ``models:`` list."""
    top = next((i for i, line in enumerate(lines) if re.match(r"^models\s*:\s*(#.*)?$", line)), None)
    if top is None:
        raise RegistryUpdateError(
            "models.yaml has no block-style top-level 'models:' list to append to; add the entry by hand."
        )
    items = [i for i, line in enumerate(lines) if i > top and re.match(r"^\s*-\s", line) and _is_content(line)]
    if not items:
        return lines[: top + 1] + render_entry(entry, 2) + lines[top + 1 :]
    dash = _indent(lines[items[0]])
    last = items[-1]
    end = last + 1
    while end < len(lines) and (not _is_content(lines[end]) or _indent(lines[end]) > dash):
        end += 1
    while end > last + 1 and not _is_content(lines[end - 1]):
        end -= 1
    return lines[:end] + [""] + render_entry(entry, dash) + lines[end:]


def update_text(text: str, entry: dict, fields: typing.Sequence[str] = ("source", "distilled")) -> str:
    r"""``text`` with ``entry['name']`` updated (only ``fields``) or appended (all of ``entry``).

    Examples:
        >>> text = "models:\n  - name: a  # keep\n    source: {path: old}\n    kind: audonnx\n"
        >>> print(update_text(text, {"name": "a", "source": {"path": "new"}}), end="")
        models:
          - name: a  # keep
            source: {path: new}
            kind: audonnx

    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(newline)
    span = _entry_span(lines, entry["name"])
    if span is None:
        lines = append_entry(lines, entry)
    else:
        lines = set_fields(lines, span, {k: entry[k] for k in fields if k in entry})
    return newline.join(lines)


def read_model_entries(models_path: Path) -> list[dict]:
    r"""The entries of a ``models.yaml`` as plain mappings, unvalidated.

    The distillation reads single entries before the student's weights
    exist, where the strict registry would refuse the whole file.

    Raises:
        DistillError: the file is missing, is not valid YAML or has no ``models`` list

    """
    try:
        return [e for e in registry_entries(models_path) if isinstance(e, dict)]
    except RegistryError as ex:
        raise DistillError(str(ex)) from None


def student_distilled(student: str, models_path: str | Path) -> dict:
    r"""``distilled`` of the student's ``models.yaml`` entry (empty if none).

    Read from the YAML alone: the student's weights need not exist yet.
    """
    path = Path(models_path)
    if not path.exists():
        return {}
    for entry in read_model_entries(path):
        if entry.get("name") == student:
            return dict(entry.get("distilled") or {})
    return {}


def student_recipe(student: str, models_path: str | Path) -> dict:
    r"""``distilled.recipe`` of the student's ``models.yaml`` entry (empty if none)."""
    recipe = student_distilled(student, models_path).get("recipe") or {}
    if not isinstance(recipe, dict):
        raise DistillError(f"{models_path}: distilled.recipe of '{student}' must be a mapping, not {recipe!r}.")
    return dict(recipe)


def _entries(text: str, where: str) -> list:
    try:
        return parse_model_entries(text, where)
    except RegistryError as ex:
        raise RegistryUpdateError(f"{ex} Fix it before distilling.") from None


def update_registry(path: str | os.PathLike, entries: typing.Sequence[dict]) -> Path:
    r"""Update (or append) the given entries of a ``models.yaml`` in place.

    Existing entries get new ``source`` and ``distilled`` fields; missing
    ones are appended in full. The new text is checked before it is
    written (atomically): it must parse, every other entry must be
    unchanged, and each updated entry must pass the registry's own
    validation (path exists, sha256 matches).

    Raises:
        RegistryUpdateError: if the file cannot be edited safely

    """
    from benchmark import Registry

    path = Path(path)
    old = path.read_text() if path.exists() else "models:\n"
    new = old
    for entry in entries:
        new = update_text(new, entry)
    names = {e["name"] for e in entries}
    before = [e for e in _entries(old, str(path)) if not (isinstance(e, dict) and e.get("name") in names)]
    after_all = _entries(new, str(path))
    after = [e for e in after_all if not (isinstance(e, dict) and e.get("name") in names)]
    if before != after:
        raise RegistryUpdateError(
            f"Editing {path} would change other entries (unexpected layout); update the student's "
            "entry by hand with the path and sha256 from its provenance.json."
        )
    mine = [e for e in after_all if isinstance(e, dict) and e.get("name") in names]
    for entry in entries:
        got = next((e for e in mine if e.get("name") == entry["name"]), None)
        if got is None or any(got.get(k) != entry[k] for k in ("source", "distilled") if k in entry):
            raise RegistryUpdateError(
                f"Editing {path} did not produce the expected entry '{entry['name']}'; update it by hand."
            )
    try:
        Registry.from_yaml_text(
            yaml.safe_dump({"models": mine}, sort_keys=False), root=path.resolve().parent, path=path
        )
    except RegistryError as ex:
        raise RegistryUpdateError(f"The updated entries would be invalid: {ex}") from None
    if new != old:
        atomic_write_text(path, new)
    return path
