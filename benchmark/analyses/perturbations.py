"""Perturbation conditions and the perturbed copies of an evaluation split.

``conditions.yaml`` → validated condition dicts (:func:`load_conditions`)
→ per-file parameters drawn with a per-file seed (:func:`draw_parameters`)
→ an auglib transform (:func:`build_transform`) → perturbed WAV files in
the cache, reused by every model (:func:`materialize`).

Every file is read, mixed down to mono and resampled to 16 kHz (the rate
all registered models use) before it is perturbed, and written as 32-bit
float WAV: no clipping or quantisation is added beyond the perturbation.
Definitions of all types and their SNRs are in ``docs/analyses.md``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.hashing import sha256_text
from benchmark.paths import PROJECT_ROOT, cache_dir, check_name, name_problem

logger = logging.getLogger(__name__)

PERTURBATION_VERSION = 1
"""Enters every condition hash: bump it when a perturbation's code changes
its output, so stale cached audio is not reused."""

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
}
"""Known condition types, their required parameters and optional defaults."""

_INTEGER = {"samples", "order", "bits", "rooms", "speakers", "codec_rate", "mu"}
_POSITIVE = {"frequency_hz", "cutoff_hz", "ratio", "order", "bits", "rooms", "speakers", "codec_rate",
             "mu", "low_hz", "high_hz", "rt60_s", "length_m", "width_m", "height_m", "distance_m"}
_FIXED = {"rooms"}  # drawn per condition, never per file
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")  # and a plain path name (paths.name_problem)
_FIELDS = ("name", "group", "type", "parameters", "sweep", "description")


class ConditionError(ValueError):
    r"""A perturbation condition is unknown or misconfigured."""


class PerturbationError(ValueError):
    r"""A file cannot be perturbed as the condition asks (e.g. too short to crop)."""


# ------------------------------------------------------------------ conditions


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
    data = yaml.safe_load(path.read_text()) or {}
    raw = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ConditionError(f"{path}: list the conditions under 'conditions:'.")
    errors, conditions, names = [], [], set()
    for i, entry in enumerate(raw):
        label = f"entry '{entry.get('name')}'" if isinstance(entry, dict) and entry.get("name") else f"entry #{i + 1}"
        problems = validate_condition(entry)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            if entry["name"] in names:
                problems.append("duplicate name")
            names.add(entry["name"])
        errors += [f"{path}: {label}: {p}" for p in problems]
        if not problems:
            conditions.append(with_defaults(entry))
    if errors:
        raise ConditionError("Invalid conditions:\n  - " + "\n  - ".join(errors))
    return conditions


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
        "version": PERTURBATION_VERSION,
        "type": condition["type"],
        "parameters": condition["parameters"],
        "seed": int(seed),
        "sampling_rate": int(sampling_rate),
    }
    if condition["type"] == "babble":
        spec["babble"] = [os.path.basename(f) for f in _babble_pool(babble_files)]
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
    if condition["type"] == "reverb":
        # room shapes are drawn once per condition (impulse response bank),
        # a file only draws which room it is played in
        return {"room": int(rng.integers(int(condition["parameters"]["rooms"])))}
    return {key: _draw(value, rng) for key, value in sorted(condition["parameters"].items())}


def _draw(value, rng: np.random.Generator):
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if isinstance(value, dict):
        low, high = value["low"], value["high"]
        if all(isinstance(v, int) for v in (low, high)):
            return int(rng.integers(low, high + 1))
        return float(rng.uniform(low, high))
    return value


# ------------------------------------------------------------------ transforms


def build_transform(
    kind: str,
    params: dict,
    signal: np.ndarray,
    sampling_rate: int,
    *,
    rng: np.random.Generator | None = None,
    babble_files=None,
    rir_files=None,
):
    r"""The auglib transform of one file.

    Args:
        kind: condition type, a key of :data:`TYPES`
        params: concrete parameters (:func:`draw_parameters`)
        signal: the mono signal ``(1, samples)`` it will be applied to
            (tone amplitude and crop bounds depend on it)
        sampling_rate: sampling rate of ``signal``
        rng: generator for the babble talkers and their start positions
        babble_files: sorted pool of babble source files
        rir_files: impulse response bank (reverb)

    Raises:
        PerturbationError: if the signal is too short for a crop

    """
    import auglib

    t = auglib.transform
    length = signal.shape[-1]
    if kind == "tone":
        # peak SNR: the tone's amplitude is max|x| lowered by snr_db
        amplitude = float(np.max(np.abs(signal))) * 10 ** (-params["snr_db"] / 20) if length else 0.0
        if amplitude == 0:
            return t.GainStage(0.0)  # silence has no peak to relate a tone to: left as it is
        return t.Tone(params["frequency_hz"], gain_db=20 * math.log10(amplitude))
    if kind == "white-noise":
        return t.WhiteNoiseGaussian(snr_db=params["snr_db"])
    if kind == "babble":
        # arrays, not paths: pool files may differ in rate and channels (Mix needs both to match);
        # the transform is applied directly, never serialised by auglib.Augment, so arrays are fine
        return t.Mix(_babble(length, sampling_rate, int(params["speakers"]), rng, babble_files), snr_db=params["snr_db"])
    if kind == "gain":
        return t.GainStage(params["gain_db"])
    if kind == "clip":
        if not length:
            raise PerturbationError("clip: empty audio (0 samples) has no level to clip at")
        return t.ClipByRatio(params["ratio"])
    if kind in ("prepend-zeros", "append-zeros"):
        cls = t.PrependValue if kind == "prepend-zeros" else t.AppendValue
        return cls(int(params["samples"]), value=0, unit="samples")
    if kind in ("crop-start", "crop-end"):
        n = int(params["samples"])
        if n >= length:
            raise PerturbationError(f"{kind}: cannot remove {n} samples from a signal of {length}")
        return t.Trim(start_pos=n, unit="samples") if kind == "crop-start" else t.Trim(end_pos=n, unit="samples")
    if kind in ("high-pass", "low-pass"):
        cls = t.HighPass if kind == "high-pass" else t.LowPass
        return cls(params["cutoff_hz"], order=int(params["order"]))
    if kind == "phone":
        args = {k: params[k] for k in ("codec_rate", "low_hz", "high_hz", "order", "mu", "bits")}
        return t.Function(telephone, args, preserve_level=True)
    if kind == "reverb":
        # keep_tail=False: same length as the input; level kept so that only the room changes
        return t.FFTConvolve(str(rir_files[params["room"]]), keep_tail=False, preserve_level=True)
    raise ConditionError(f"unknown type {kind!r}; use one of {', '.join(TYPES)}")


def telephone(signal, sampling_rate, codec_rate=8000, low_hz=300, high_hz=3400, order=2, mu=255, bits=8):
    r"""Narrow-band telephone channel: resample, band-pass, mu-law codec, resample back.

    Self-contained (imports inside) so that an ``auglib.transform.Function``
    holding it stays serialisable.

    Args:
        signal: ``(channels, samples)``
        sampling_rate: rate of ``signal``
        codec_rate: rate of the channel
        low_hz: lower band edge (Butterworth band-pass)
        high_hz: upper band edge
        order: band-pass order
        mu: mu-law constant
        bits: bits of the quantised companded signal (sign included)

    """
    import audresample
    import auglib
    import numpy as np

    length = signal.shape[-1]
    x = audresample.resample(signal.astype("float32"), sampling_rate, codec_rate)
    x = auglib.transform.BandPass(
        center=(low_hz + high_hz) / 2, bandwidth=high_hz - low_hz, order=int(order)
    )(x, codec_rate)
    scale = max(float(np.max(np.abs(x))) if x.size else 0.0, 1.0)  # companding is defined on [-1, 1]
    x = x / scale
    levels = 2 ** (int(bits) - 1) - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * levels) / levels
    x = np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu * scale
    x = audresample.resample(x.astype("float32"), codec_rate, sampling_rate)
    if x.shape[-1] >= length:  # resampling may add or lose a sample
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


def _babble(length: int, sampling_rate: int, speakers: int, rng, babble_files) -> np.ndarray:
    r"""Sum of ``speakers`` talkers, each at 0 dB RMS, looped from a random start."""
    import auglib

    pool = list(babble_files or [])
    if not pool:
        raise ConditionError("babble needs source files (babble_files), none given")
    chosen = rng.choice(len(pool), size=speakers, replace=len(pool) < speakers)
    noise = np.zeros((1, length), dtype="float32")
    for index in chosen:
        source = _load_source(str(pool[int(index)]), sampling_rate)
        start = int(rng.integers(source.shape[1]))
        rms = float(np.sqrt(np.mean(source.astype("float64") ** 2)))
        gain_db = -20 * math.log10(rms) if rms > 0 else 0.0
        noise = auglib.transform.Mix(
            source, read_pos_aux=start, unit="samples", loop_aux=True, gain_aux_db=gain_db
        )(noise, sampling_rate)
    return noise


@functools.lru_cache(maxsize=64)
def _load_source(path: str, sampling_rate: int) -> np.ndarray:
    source = read_mono(path, sampling_rate)
    source.flags.writeable = False  # shared between threads and files: must never change
    return source


def read_mono(path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    r"""Read a file as mono ``(1, samples)`` float32 at ``sampling_rate``."""
    import audiofile
    import audresample

    signal, rate = audiofile.read(str(path), always_2d=True)
    if signal.shape[0] > 1:
        signal = audresample.remix(signal, mixdown=True)
    if rate != sampling_rate:
        signal = audresample.resample(signal, rate, sampling_rate)
    return np.ascontiguousarray(signal, dtype="float32")


_RANDOM_LOCK = threading.Lock()


@contextlib.contextmanager
def _seeded(seed: int):
    r"""Seed auglib (and so numpy's and Python's global generators) for one file.

    auglib draws from process-global random state, so the seeding and the
    transform call hold a lock (threads would otherwise interleave draws),
    and the previous state is restored for the rest of the program.
    """
    import auglib
    from auglib.core import seed as auglib_seed

    with _RANDOM_LOCK:
        np_state, py_state, old = np.random.get_state(), random.getstate(), auglib_seed.get_seed()
        auglib.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
            auglib_seed.SEED = old


def perturb(
    signal: np.ndarray,
    sampling_rate: int,
    condition: dict,
    *,
    seed: int,
    babble_files=None,
    rir_files=None,
) -> np.ndarray:
    r"""Apply ``condition`` to a mono signal, deterministically for ``seed``.

    Args:
        signal: ``(samples,)`` or ``(1, samples)``
        sampling_rate: its rate
        condition: a condition dict
        seed: per-file seed (:func:`file_seed`)
        babble_files: pool of babble sources (type ``babble``)
        rir_files: impulse response bank (type ``reverb``, see :func:`rir_bank`)

    Returns:
        float32 ``(1, samples')``

    Examples:
        >>> x = np.full((1, 4), 0.5, dtype="float32")
        >>> cond = {"name": "g", "group": "x", "type": "append-zeros", "parameters": {"samples": 2}}
        >>> perturb(x, 16000, cond, seed=0).tolist()
        [[0.5, 0.5, 0.5, 0.5, 0.0, 0.0]]

    """
    condition = check_condition(condition)
    signal = np.atleast_2d(np.asarray(signal, dtype="float32"))
    if signal.shape[-1] == 0:  # nothing to perturb; auglib's clip, filters and mixers fail on it
        raise PerturbationError(f"{condition['type']}: empty audio (0 samples)")
    rng = np.random.default_rng(seed)
    params = draw_parameters(condition, rng)
    transform = build_transform(
        condition["type"], params, signal, sampling_rate,
        rng=rng, babble_files=_babble_pool(babble_files), rir_files=rir_files,
    )
    with _seeded(seed):
        out = transform(signal.copy(), sampling_rate)
    return np.atleast_2d(np.asarray(out, dtype="float32"))


def _babble_pool(babble_files) -> list[str]:
    # sorted by name so the draws do not depend on where the pool lives
    if babble_files is None:
        return []
    return sorted((str(f) for f in babble_files), key=lambda f: (os.path.basename(f), f))


# ------------------------------------------------------------------ reverberation


def rir_bank(folder: str | os.PathLike, condition: dict, *, seed: int, sampling_rate: int = SAMPLING_RATE) -> list[str]:
    r"""Room impulse responses of a reverb condition, simulated once and stored.

    Each room is a shoebox with dimensions, RT60 and source-microphone
    distance drawn from the condition's ranges; the impulse response is
    computed with pyroomacoustics' image source method (absorption and
    reflection order from Sabine's formula). Files exist → reused.

    Returns:
        paths of the WAV files ``folder/_rirs/rir-NN.wav``

    """
    condition = check_condition(condition)
    params = condition["parameters"]
    rooms = int(params["rooms"])
    paths = [Path(folder, "_rirs", f"rir-{i:02d}.wav") for i in range(rooms)]
    if all(p.exists() for p in paths):
        return [str(p) for p in paths]
    rng = np.random.default_rng(file_seed(condition_hash(condition, seed=seed, sampling_rate=sampling_rate), "_rirs"))
    for path in paths:
        rir = _room_impulse_response(params, rng, sampling_rate)  # draw for every room, existing or not
        if not path.exists():
            write_wav(path, rir[np.newaxis], sampling_rate)
    return [str(p) for p in paths]


def _room_impulse_response(params: dict, rng: np.random.Generator, sampling_rate: int) -> np.ndarray:
    import pyroomacoustics as pra

    dims = np.array([_draw(params[k], rng) for k in ("length_m", "width_m", "height_m")], dtype=float)
    rt60 = float(_draw(params["rt60_s"], rng))
    distance = float(_draw(params["distance_m"], rng))
    margin = 0.5
    low, high = np.full(3, margin), dims - margin
    high[2] = min(high[2], 2.0)  # talker and microphone at 0.5–2 m height
    mic = rng.uniform(low, high)
    angle = rng.uniform(0, 2 * np.pi)
    source = mic + distance * np.array([np.cos(angle), np.sin(angle), 0.0])
    source = np.clip(source, low, high)  # a small room may not fit the whole distance
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sampling_rate, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype="float32")


# ------------------------------------------------------------------ files


def write_wav(path: str | os.PathLike, signal: np.ndarray, sampling_rate: int) -> None:
    r"""Write a 32-bit float WAV atomically (temporary file + rename).

    scipy's writer, not libsndfile's: libsndfile adds a PEAK chunk with a
    time stamp to float files, so the same audio would not give the same bytes.
    """
    import scipy.io.wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(signal, dtype="<f4")
    data = data[0] if data.ndim == 2 and data.shape[0] == 1 else data.T
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fp:
            scipy.io.wavfile.write(fp, int(sampling_rate), data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def file_key(file: str, root: str | os.PathLike | None = None) -> str:
    r"""Machine-independent name of a file: its path relative to ``root``.

    Outside ``root`` (or without one) a hash of the absolute path keeps
    names unique; perturbations then depend on where the file lives.

    Examples:
        >>> file_key("/db/wav/a.wav", "/db")
        'wav/a.wav'

    """
    if root is not None:
        rel = os.path.relpath(os.path.abspath(file), os.path.abspath(root))
        if not rel.startswith(".."):
            return Path(rel).as_posix()
    return f"{sha256_text(os.path.abspath(file))[:12]}-{os.path.basename(file)}"


def condition_folder(condition: dict, *, root_key: str, seed: int, sampling_rate: int = SAMPLING_RATE, babble_files=None) -> Path:
    r"""Cache folder of a condition's perturbed files."""
    check_name(root_key, "dataset")
    check_name(condition["name"], "condition")
    digest = condition_hash(condition, seed=seed, sampling_rate=sampling_rate, babble_files=babble_files)
    return cache_dir("perturbed", root_key, f"{condition['name']}-{digest[:8]}")


def materialize(
    evalset_files: pd.Index,
    condition: dict,
    *,
    root_key: str,
    seed: int,
    babble_files: pd.Index | None = None,
    root: str | os.PathLike | None = None,
    sampling_rate: int = SAMPLING_RATE,
    workers: int = 2,
) -> pd.Series:
    r"""Perturbed copies of ``evalset_files`` under ``condition``, cached.

    Files land in ``cache_dir('perturbed', root_key, NAME-HASH)`` (hash of
    the condition spec and seed, :func:`condition_hash`) under their path
    relative to ``root``. Existing files are reused, so a second model
    costs nothing; each file is written atomically, so an interrupted run
    leaves no truncated file.

    Args:
        evalset_files: original audio files
        condition: a condition dict (:func:`load_conditions`)
        root_key: cache sub-folder of the database, e.g. ``'demo-iemocap-1.0.0'``
        seed: run seed; each file's seed derives from it, the condition and
            the file's key (:func:`file_seed`), not from the file order
        babble_files: babble source pool (speakers disjoint from the test set)
        root: database root; gives machine-independent keys (:func:`file_key`)
        sampling_rate: rate of the perturbed files
        workers: threads

    Returns:
        perturbed WAV path per original file (index: ``evalset_files``).
        Files that cannot be perturbed (too short to crop) are left out
        and listed in ``.attrs['skipped']`` (file → reason)

    """
    condition = check_condition(condition)
    pool = _babble_pool(babble_files)
    if condition["type"] == "babble" and not pool:
        raise ConditionError(f"Condition '{condition['name']}' (babble) needs babble_files; none given.")
    digest = condition_hash(condition, seed=seed, sampling_rate=sampling_rate, babble_files=pool)
    folder = condition_folder(condition, root_key=root_key, seed=seed, sampling_rate=sampling_rate, babble_files=pool)
    rirs = rir_bank(folder, condition, seed=seed, sampling_rate=sampling_rate) if condition["type"] == "reverb" else None

    files = list(evalset_files)
    keys = {f: file_key(f, root) for f in files}
    outputs = {f: folder / (k if k.lower().endswith(".wav") else k + ".wav") for f, k in keys.items()}
    skipped: dict[str, str] = {}

    def one(file: str) -> None:
        try:
            signal = read_mono(file, sampling_rate)
        except Exception as error:  # unreadable or corrupt audio: a skip for this file, never the whole split
            skipped[file] = f"unreadable audio: {type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            return
        try:
            out = perturb(
                signal, sampling_rate, condition,
                seed=file_seed(digest, keys[file]), babble_files=pool, rir_files=rirs,
            )
        except PerturbationError as error:
            skipped[file] = str(error)
            return
        except ConditionError:
            raise  # the condition is wrong for every file, not this one
        except Exception as error:
            skipped[file] = f"cannot perturb: {type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            return
        write_wav(outputs[file], out, sampling_rate)

    todo = [f for f in files if not outputs[f].exists()]
    if todo:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
            for future in [executor.submit(one, f) for f in todo]:
                future.result()  # re-raise the first unexpected error
    for file, reason in skipped.items():
        logger.warning("Condition '%s': skipped %s: %s", condition["name"], file, reason)
    kept = [f for f in files if f not in skipped]
    result = pd.Series(
        [str(outputs[f]) for f in kept],
        index=pd.Index(kept, name=getattr(evalset_files, "name", None) or "file"),
        name=condition["name"],
        dtype="object",
    )
    result.attrs["skipped"] = skipped
    return result
