"""Resumable training checkpoints: written atomically, refused when another run wrote them."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from benchmark import atomic_path

CHECKPOINT_FORMAT = 2
r"""Version of the checkpoint layout (2: numpy's generator state as plain values, readable with ``weights_only``)."""


class CheckpointMismatch(RuntimeError):
    r"""A checkpoint exists but was written by a different distillation."""


def get_rng_state() -> dict:
    r"""All random generator states that training touches, as tensors and plain values.

    numpy's state is stored as a list of ints, not as an array: the
    checkpoint must load with ``torch.load(weights_only=True)``, which
    refuses numpy objects.

    Examples:
        >>> state = get_rng_state()
        >>> set_rng_state(state)
        >>> get_rng_state()["numpy"] == state["numpy"]
        True

    """
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, [int(k) for k in key], int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    r"""Restore what :func:`get_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    r"""``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, fingerprint: dict) -> dict | None:
    r"""Load a checkpoint and check that it belongs to this run.

    Returns:
        the checkpoint, or ``None`` if it is of a *finished* run with other
        settings: that run exported its model, so nothing is lost by
        starting a new one

    Raises:
        CheckpointMismatch: if it is unreadable or its fingerprint differs,
            naming the differing settings and how to start fresh (an
            interrupted run with other settings is never discarded silently)

    """
    fresh = "Start fresh with --no-resume (this discards the checkpoint) or choose another --out."
    try:
        # weights_only: a checkpoint holds tensors and plain values; anything else
        # (code a crafted file would run on unpickling, an older layout) is refused
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointMismatch(
            f"Checkpoint {path} holds objects other than tensors and plain values (an older layout, or not "
            f"written by this program), so it is not read. {fresh}"
        ) from None
    except Exception as ex:  # a truncated or foreign file: never guess
        raise CheckpointMismatch(f"Cannot read checkpoint {path} ({type(ex).__name__}: {ex}). {fresh}") from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"Checkpoint {path} has an unknown format. {fresh}")
    old = saved.get("fingerprint", {})
    if old != fingerprint and saved.get("done"):
        return None
    if old != fingerprint:
        flat_old, flat_new = _flatten(old), _flatten(fingerprint)
        diffs = [
            f"{key.split('.', 1)[-1]}: {_short(flat_old.get(key))} -> {_short(flat_new.get(key))}"
            for key in sorted(set(flat_old) | set(flat_new))
            if flat_old.get(key) != flat_new.get(key)
        ]
        raise CheckpointMismatch(
            f"Checkpoint {path} belongs to another distillation; it differs in "
            + "; ".join(diffs)
            + f". Re-run with the original settings to resume it. {fresh}"
        )
    return saved


def _flatten(mapping: dict, prefix: str = "") -> dict:
    r"""Nested settings as ``{'hyper.lr': 0.01, ...}``, so a mismatch names the leaf that differs.

    Examples:
        >>> _flatten({"a": 1, "b": {"c": 2}})
        {'a': 1, 'b.c': 2}

    """
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
