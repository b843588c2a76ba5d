"""Simulated rooms: the impulse response banks of the reverb and microphone-position conditions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from benchmark.analyses.perturbations.audio import write_wav
from benchmark.analyses.perturbations.conditions import (
    SAMPLING_RATE,
    check_condition,
    condition_hash,
    draw_value,
    file_seed,
)
from benchmark.hashing import sha256_text


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
    if condition["type"] == "mic-position":
        # the rooms and talkers do not depend on the distance: near and far conditions with the same
        # room ranges record the same talkers in the same rooms, only the microphone moves
        room_spec = {k: v for k, v in params.items() if k != "distance_m"}
        spec = sha256_text(
            json.dumps(
                {"type": "mic-position", "rooms": room_spec, "seed": int(seed), "sampling_rate": int(sampling_rate)},
                sort_keys=True,
            )
        )
        rng = np.random.default_rng(file_seed(spec, "_rirs"))
        simulate = _mic_position_impulse_response
    else:
        rng = np.random.default_rng(
            file_seed(condition_hash(condition, seed=seed, sampling_rate=sampling_rate), "_rirs")
        )
        simulate = _room_impulse_response
    for path in paths:
        rir = simulate(params, rng, sampling_rate)  # draw for every room, existing or not
        if not path.exists():
            write_wav(path, rir[np.newaxis], sampling_rate)
    return [str(p) for p in paths]


def _room_impulse_response(params: dict, rng: np.random.Generator, sampling_rate: int) -> np.ndarray:
    import pyroomacoustics as pra

    dims = np.array([draw_value(params[k], rng) for k in ("length_m", "width_m", "height_m")], dtype=float)
    rt60 = float(draw_value(params["rt60_s"], rng))
    distance = float(draw_value(params["distance_m"], rng))
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


def _mic_position_impulse_response(params: dict, rng: np.random.Generator, sampling_rate: int) -> np.ndarray:
    r"""Impulse response from a talker to a microphone ``distance_m`` away in a drawn shoebox room.

    The talker stands at a drawn position (1.2–1.8 m high, away from the
    walls); the microphone is at the same height, ``distance_m`` away in the
    first of 16 drawn directions that keeps it inside the room (else the
    direction with the most room, clipped to the walls). Every draw is made
    in the same order whatever the distance, so near and far share rooms,
    talkers and directions.
    """
    import pyroomacoustics as pra

    dims = np.array([draw_value(params[k], rng) for k in ("length_m", "width_m", "height_m")], dtype=float)
    rt60 = float(draw_value(params["rt60_s"], rng))
    distance = float(draw_value(params["distance_m"], rng))
    margin = 0.3
    low, high = np.full(3, margin), dims - margin
    talker = np.array(
        [*rng.uniform(low[:2] + 0.5, np.maximum(high[:2] - 0.5, low[:2] + 0.5)), rng.uniform(1.2, min(1.8, high[2]))]
    )
    angles = rng.uniform(0, 2 * np.pi, size=16)
    candidates = talker + distance * np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    inside = np.all((candidates >= low) & (candidates <= high), axis=1)
    if inside.any():
        mic = candidates[int(np.argmax(inside))]
    else:
        slack = np.min(np.minimum(candidates - low, high - candidates), axis=1)
        mic = np.clip(candidates[int(np.argmax(slack))], low, high)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sampling_rate, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(talker)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype="float32")
