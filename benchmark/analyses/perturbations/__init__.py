"""Perturbation conditions and the perturbed signals of an evaluation split.

``conditions.yaml`` → validated condition dicts (:func:`load_conditions`)
→ per-file parameters drawn with a per-file seed (:func:`draw_parameters`)
→ a transform (:func:`build_transform`) → the perturbed signal, made in
memory where the model reads it (:class:`~.memory.Perturber`); or written
as perturbed WAV copies (:func:`materialize`), which hold the same samples.

Every file is read, mixed down to mono and resampled to 16 kHz (the rate
all registered models use) before it is perturbed, and kept as 32-bit
float: no clipping or quantisation is added beyond the perturbation.
Definitions of all types and their SNRs are in ``docs/analyses.md``.

Modules, one concern each:

* :mod:`~benchmark.analyses.perturbations.conditions`: condition file
  loading and validation, condition hashes, per-file seeds and draws
* :mod:`~benchmark.analyses.perturbations.transforms`: the signal
  transforms and :func:`perturb`
* :mod:`~benchmark.analyses.perturbations.rooms`: simulated rooms
* :mod:`~benchmark.analyses.perturbations.audio`: reading and writing audio
* :mod:`~benchmark.analyses.perturbations.cache`: materializing perturbed
  copies in the cache
* :mod:`~benchmark.analyses.perturbations.memory`: perturbed signals in
  memory, and the bounded store several models share
"""

from benchmark.analyses.perturbations.audio import read_mono, write_wav
from benchmark.analyses.perturbations.cache import condition_folder, file_key, materialize
from benchmark.analyses.perturbations.conditions import (
    PERTURBATION_VERSION,
    SAMPLING_RATE,
    TYPES,
    ConditionError,
    PerturbationError,
    check_condition,
    condition_hash,
    draw_parameters,
    file_seed,
    load_conditions,
    validate_condition,
    with_defaults,
)
from benchmark.analyses.perturbations.rooms import rir_bank
from benchmark.analyses.perturbations.transforms import build_transform, perturb, telephone

__all__ = [
    "PERTURBATION_VERSION",
    "SAMPLING_RATE",
    "TYPES",
    "ConditionError",
    "PerturbationError",
    "build_transform",
    "check_condition",
    "condition_folder",
    "condition_hash",
    "draw_parameters",
    "file_key",
    "file_seed",
    "load_conditions",
    "materialize",
    "perturb",
    "read_mono",
    "rir_bank",
    "telephone",
    "validate_condition",
    "with_defaults",
    "write_wav",
]
