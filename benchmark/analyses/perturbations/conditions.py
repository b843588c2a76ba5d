"""Condition file loading and validation, condition hashes and per-file draws.

``conditions.yaml`` → validated condition dicts (:func:`load_conditions`)
→ per-file parameters drawn with a per-file seed (:func:`draw_parameters`).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from benchmark import yaml_lists
from benchmark.hashing import sha256_text
from benchmark.paths import PROJECT_ROOT, name_problem

PERTURBATION_VERSION = 1
"""Enters every condition hash: bump it when a perturbation's code changes
its output, so stale cached audio is not reused."""

TYPE_VERSIONS = {"spectral-tilt": 2, "pitch-shift": 2, "formant-shift": 2}
"""Types whose code changed on their own (version 2: the voice transforms of
:mod:`~benchmark.analyses.perturbations.voice`); their version replaces
:data:`PERTURBATION_VERSION` in their hash only, so the audio, file seeds
and result hashes of every other type stay as they were."""

SAMPLING_RATE = 16000
"""Rate the audio is perturbed and stored at."""

TYPES: dict[str, dict] = {
    # type → required parameters and optional parameters with defaults
    "tone": {"required": ("frequency_hz", "snr_db"), "optional": {}},
    "white-noise": {"required": ("snr_db",), "optional": {}},
    "babble": {"required": ("snr_db",), "optional": {"speakers": {"low": 4, "high": 7}}},
    "gain": {"required": ("gain_db",), "optional": {}},
    "clip": {"required": ("ratio",), "optional": {}},
    "prepend-zeros": {"required": ("samples",), "optional": {}},
    "append-zeros": {"required": ("samples",), "optional": {}},
    "crop-start": {"required": ("samples",), "optional": {}},
    "crop-end": {"required": ("samples",), "optional": {}},
    "high-pass": {"required": ("cutoff_hz",), "optional": {"order": 1}},
    "low-pass": {"required": ("cutoff_hz",), "optional": {"order": 1}},
    "phone": {
        "required": (),
        "optional": {"codec_rate": 8000, "low_hz": 300, "high_hz": 3400, "order": 2, "mu": 255, "bits": 8},
    },
    "reverb": {
        "required": (),
        "optional": {
            "rooms": 8,
            "rt60_s": {"low": 0.3, "high": 0.7},
            "length_m": {"low": 4.0, "high": 10.0},
            "width_m": {"low": 3.0, "high": 8.0},
            "height_m": {"low": 2.5, "high": 3.5},
            "distance_m": {"low": 1.0, "high": 3.0},
        },
    },
    "spectral-tilt": {"required": ("tilt_db_per_octave",), "optional": {"pivot_hz": 1000, "low_hz": 100}},
    "music": {"required": ("snr_db",), "optional": {}},
    "environmental": {"required": ("snr_db",), "optional": {}},
    "mic-position": {
        "required": ("distance_m",),
        "optional": {
            "rooms": 8,
            "rt60_s": {"low": 0.3, "high": 0.6},
            "length_m": {"low": 6.0, "high": 10.0},
            "width_m": {"low": 5.0, "high": 8.0},
            "height_m": {"low": 2.5, "high": 3.5},
        },
    },
    "pitch-shift": {"required": ("semitones",), "optional": {}},
    "formant-shift": {"required": ("factor",), "optional": {}},
}
"""Known condition types, their required parameters and optional defaults."""

_INTEGER = {"samples", "order", "bits", "rooms", "speakers", "codec_rate", "mu"}
_POSITIVE = {
    "frequency_hz",
    "cutoff_hz",
    "ratio",
    "order",
    "bits",
    "rooms",
    "speakers",
    "codec_rate",
    "mu",
    "low_hz",
    "high_hz",
    "rt60_s",
    "length_m",
    "width_m",
    "height_m",
    "distance_m",
    "pivot_hz",
    "factor",
}
ROOM_TYPES = ("reverb", "mic-position")
"""Types played through a bank of simulated room impulse responses (:func:`~.rooms.rir_bank`)."""

_FIXED = {"rooms"}  # drawn per condition, never per file
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")  # and a plain path name (paths.name_problem)
_FIELDS = ("name", "group", "type", "parameters", "sweep", "default", "description")


class ConditionError(ValueError):
    r"""A perturbation condition is unknown or misconfigured."""


class PerturbationError(ValueError):
    r"""A file cannot be perturbed as the condition asks (e.g. too short to crop)."""


def load_conditions(path: str | os.PathLike | None = None) -> list[dict]:
    r"""Load and validate ``conditions.yaml``; every problem is reported at once.

    Args:
        path: condition file (default: the project's ``conditions.yaml``)

    Returns:
        the conditions in file order, optional parameters filled in

    Raises:
        ConditionError: if the file is missing or any entry is invalid

    """
    path = Path(path) if path else PROJECT_ROOT / "conditions.yaml"
    if not path.exists():
        raise ConditionError(f"Condition file {path} not found.")
    raw = yaml_lists.listed(yaml_lists.load_yaml(path.read_text(), path, ConditionError), "conditions")
    if not isinstance(raw, list) or not raw:
        raise ConditionError(f"{path}: list the conditions under 'conditions:'.")
    valid, errors = yaml_lists.check_entries(raw, path, validate_condition)
    if errors:
        raise ConditionError(yaml_lists.problem_list("Invalid conditions", errors))
    return [with_defaults(entry) for entry in valid]


def validate_condition(condition) -> list[str]:
    r"""Problems of one condition entry (empty if it is valid).

    Examples:
        >>> validate_condition({"name": "g", "group": "x", "type": "gain", "parameters": {"gain_db": 1}})
        []
        >>> validate_condition({"name": "g", "group": "x", "type": "gain", "parameters": {}})
        ["type 'gain': parameter 'gain_db' is missing"]

    """
    if not isinstance(condition, dict):
        return ["give a mapping with name, group, type, parameters"]
    errors = [f"field '{f}' is missing" for f in ("name", "group", "type") if f not in condition]
    errors += [f"unknown field '{f}'; use {', '.join(_FIELDS)}" for f in condition if f not in _FIELDS]
    name = condition.get("name")
    if "name" in condition and (name_problem(name) or not _NAME.fullmatch(name)):
        errors.append(f"name {name!r}: use lower case letters, digits, '.', '_', '-'")
    kind = condition.get("type")
    if "type" in condition and kind not in TYPES:
        errors.append(f"unknown type {kind!r}; use one of {', '.join(TYPES)}")
        return errors
    params = condition.get("parameters", {})
    if not isinstance(params, dict):
        return errors + ["field 'parameters': give a mapping"]
    if kind is None:
        return errors
    spec = TYPES[kind]
    errors += [f"type '{kind}': parameter '{p}' is missing" for p in spec["required"] if p not in params]
    allowed = set(spec["required"]) | set(spec["optional"])
    for key, value in params.items():
        if key not in allowed:
            errors.append(f"type '{kind}': unknown parameter '{key}'; use {', '.join(sorted(allowed))}")
            continue
        errors += [f"parameter '{key}': {p}" for p in _value_problems(key, value)]
    if "default" in condition and not isinstance(condition["default"], bool):
        errors.append("field 'default': true (run by default) or false (run only when selected)")
    if "sweep" in condition:
        if not isinstance(condition["sweep"], str):
            errors.append("field 'sweep': give the curve name as a string")
        if not _is_number(params.get("snr_db")):
            errors.append("field 'sweep': the condition needs a fixed number 'snr_db'")
    return errors


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value_problems(key: str, value) -> list[str]:
    if isinstance(value, list):
        if not value:
            return ["empty list"]
        values = value
    elif isinstance(value, dict):
        if set(value) != {"low", "high"}:
            return ["a range needs exactly the keys 'low' and 'high'"]
        values = [value["low"], value["high"]]
        if all(_is_number(v) for v in values) and values[0] > values[1]:
            return ["range: 'low' must not exceed 'high'"]
    else:
        values = [value]
    if key in _FIXED and not _is_number(value):
        return ["give a single number (drawn per condition, not per file)"]
    if not all(_is_number(v) for v in values):
        return [f"{value!r}: give a number, a list of numbers or {{low: a, high: b}}"]
    problems = []
    if key in _INTEGER and not all(float(v).is_integer() for v in values):
        problems.append("must be an integer")
    if key in _POSITIVE and not all(v > 0 for v in values):
        problems.append("must be > 0")
    if key == "samples" and not all(v >= 0 for v in values):
        problems.append("must be >= 0")
    if key == "ratio" and not all(v < 1 for v in values):
        problems.append("share of samples, must be < 1")
    if key == "semitones" and not all(-12 <= v <= 12 for v in values):
        problems.append("pitch shift, must be within -12..12 semitones")
    if key == "factor" and not problems and not all(0.5 <= v <= 2 for v in values):
        problems.append("formant factor, must be within 0.5..2 (1.1 is +10 %)")
    return problems


def with_defaults(condition: dict) -> dict:
    r"""Copy of ``condition`` with the optional parameters of its type filled in."""
    out = dict(condition)
    out["parameters"] = {**TYPES[condition["type"]]["optional"], **(condition.get("parameters") or {})}
    return out


def check_condition(condition: dict) -> dict:
    r"""Validated copy of ``condition`` with defaults filled in.

    Raises:
        ConditionError: naming the condition and every problem

    """
    problems = validate_condition(condition)
    if problems:
        label = condition.get("name", "?") if isinstance(condition, dict) else "?"
        raise ConditionError(f"Invalid condition '{label}': " + "; ".join(problems))
    return with_defaults(condition)


def condition_hash(condition: dict, *, seed: int, sampling_rate: int = SAMPLING_RATE, babble_files=None) -> str:
    r"""SHA-256 of everything that determines a condition's audio.

    Type, parameters (defaults filled in), seed, sampling rate, the code
    version and, for babble, the names of the source files. Name, group
    and description do not enter: renaming a condition keeps its audio.
    """
    condition = with_defaults(condition)
    spec = {
        "version": TYPE_VERSIONS.get(condition["type"], PERTURBATION_VERSION),
        "type": condition["type"],
        "parameters": condition["parameters"],
        "seed": int(seed),
        "sampling_rate": int(sampling_rate),
    }
    if condition["type"] == "babble":
        spec["babble"] = [os.path.basename(f) for f in babble_pool(babble_files)]
    return sha256_text(json.dumps(spec, sort_keys=True))


def file_seed(spec_hash: str, key: str) -> int:
    r"""32-bit seed of one file: depends on condition and file only, not on order.

    Examples:
        >>> file_seed("abc", "wav/a.wav") == file_seed("abc", "wav/a.wav")
        True
        >>> file_seed("abc", "wav/a.wav") == file_seed("abc", "wav/b.wav")
        False

    """
    return int(sha256_text(f"{spec_hash}\0{key}")[:8], 16)


def draw_parameters(condition: dict, rng: np.random.Generator) -> dict:
    r"""Concrete parameters for one file.

    Numbers are kept, a list gives one element, ``{low, high}`` a uniform
    draw (integers if both ends are integers, ``high`` inclusive).
    Parameters are drawn in sorted order, so the YAML order does not matter.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> draw_parameters({"type": "gain", "parameters": {"gain_db": 1}}, rng)
        {'gain_db': 1}
        >>> draw_parameters({"type": "crop-end", "parameters": {"samples": [100]}}, rng)
        {'samples': 100}

    """
    condition = with_defaults(condition)
    if condition["type"] in ROOM_TYPES:
        # room shapes are drawn once per condition (impulse response bank),
        # a file only draws which room it is played in
        return {"room": int(rng.integers(int(condition["parameters"]["rooms"])))}
    return {key: draw_value(value, rng) for key, value in sorted(condition["parameters"].items())}


def draw_value(value, rng: np.random.Generator):
    r"""One value of a condition parameter: a list gives one of its items, ``{low, high}`` a uniform draw.

    Integer bounds draw an integer (both ends included); anything else is
    its own value.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> draw_value([3, 3], rng), draw_value({"low": 2, "high": 2}, rng), draw_value(0.5, rng)
        (3, 2, 0.5)

    """
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if isinstance(value, dict):
        low, high = value["low"], value["high"]
        if all(isinstance(v, int) for v in (low, high)):
            return int(rng.integers(low, high + 1))
        return float(rng.uniform(low, high))
    return value


def babble_pool(babble_files) -> list[str]:
    r"""The babble recordings as the draws see them: sorted by file name, then path (``None``: none).

    Sorted by name so the draws do not depend on where the pool lives.
    """
    if babble_files is None:
        return []
    return sorted((str(f) for f in babble_files), key=lambda f: (os.path.basename(f), f))
