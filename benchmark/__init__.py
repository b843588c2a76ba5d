"""Reproducible benchmark for dimensional speech emotion recognition.

Registry (``models.yaml``, ``datasets.yaml``) → data (audb) → runner
(audinterface) → analyses (correctness, robustness, fairness) → results
(versioned CSV tables) → docs (leaderboard).

The public API below is what the distillation stage (``benchmark/distill/``),
``scripts/`` and ``experiments/`` use from the rest of the package; they
import it from here (``from benchmark import load_split``). Each name is
imported from its home module on first use (PEP 562), so ``import
benchmark`` loads neither torch, onnxruntime, audb nor audinterface.

Constants and paths:
    :data:`DIMENSIONS`, :data:`PROJECT_ROOT`, :func:`cache_dir`, :func:`cache_root`,
    :func:`results_root`, :func:`project_relative`
Hashes and files written whole:
    :func:`sha256_file`, :func:`sha256_text`, :func:`sha256_arrays`, :func:`artifact_sha256`,
    :func:`atomic_path`, :func:`atomic_write`, :func:`atomic_write_text`, :func:`provenance`
Metrics:
    :func:`ccc_finite`, :func:`ccc_numpy`, :func:`ccc_columns`, :func:`bootstrap_ccc_columns`, :func:`paired_bootstrap`
Registry and models:
    :class:`Registry`, :class:`ModelEntry`, :class:`RegistryError`, :func:`load_model`,
    :func:`read_model_entries`, :func:`parse_model_entries` (``models.yaml`` as written, unvalidated),
    :class:`Predictor`, the modules :data:`egemaps` and :data:`egemaps_real`
Data:
    :func:`load_split`, :func:`resolve_files`, :class:`DataError`, :class:`DatasetConfigError`,
    :func:`pool_files` (the demo pool), the module :data:`synth` (the demo's synthesizer)
Students:
    :func:`build_student`, :class:`Wav2Small`, :class:`Wav2SmallConfig`, :data:`WAV2SMALL`,
    :func:`export_onnx`, :func:`quantize_int8`, :func:`onnx_file`, :data:`ONNX_FILE`,
    :data:`FRONTEND_SCOPE`, :func:`onnx_max_abs_difference`
Analyses and timing:
    :data:`VOICE_SHIFTS`, :func:`voice_shift`, the module :data:`voice` (voice transforms),
    :func:`read_mono`, :func:`median_f0`, the module :data:`real_speech_check`,
    :func:`noise_clip`, :func:`cpu_name`, :data:`PHASES`, :func:`parse_timing`

Subpackages (``benchmark.numerics``, ``benchmark.students``, ``benchmark.metrics``,
``benchmark.registry``) are imported as usual: ``from benchmark import numerics``.
"""

import importlib
import typing

__version__ = "0.13.0"

DIMENSIONS = ("arousal", "dominance", "valence")
"""Order of the emotional dimensions in every prediction vector."""

_HOMES: dict[str, tuple[str, str | None]] = {
    # name: (home module, attribute there; None: the module itself)
    "PROJECT_ROOT": ("benchmark.paths", "PROJECT_ROOT"),
    "cache_dir": ("benchmark.paths", "cache_dir"),
    "cache_root": ("benchmark.paths", "cache_root"),
    "results_root": ("benchmark.paths", "results_root"),
    "project_relative": ("benchmark.paths", "project_relative"),
    "sha256_file": ("benchmark.hashing", "sha256_file"),
    "sha256_text": ("benchmark.hashing", "sha256_text"),
    "sha256_arrays": ("benchmark.hashing", "sha256_arrays"),
    "artifact_sha256": ("benchmark.hashing", "artifact_sha256"),
    "atomic_path": ("benchmark.atomic", "atomic_path"),
    "atomic_write": ("benchmark.atomic", "atomic_write"),
    "atomic_write_text": ("benchmark.results", "atomic_write_text"),
    "provenance": ("benchmark.results", "provenance"),
    "ccc_finite": ("benchmark.metrics", "ccc_finite"),
    "ccc_numpy": ("benchmark.metrics", "ccc_numpy"),
    "ccc_columns": ("benchmark.metrics", "ccc_columns"),
    "bootstrap_ccc_columns": ("benchmark.metrics", "bootstrap_ccc_columns"),
    "paired_bootstrap": ("benchmark.metrics", "paired_bootstrap"),
    "Registry": ("benchmark.registry", "Registry"),
    "ModelEntry": ("benchmark.registry", "ModelEntry"),
    "RegistryError": ("benchmark.registry", "RegistryError"),
    "load_model": ("benchmark.registry", "load_model"),
    "read_model_entries": ("benchmark.registry", "read_entries"),
    "parse_model_entries": ("benchmark.registry", "parse_entries"),
    "Predictor": ("benchmark.models.base", "Predictor"),
    "egemaps": ("benchmark.models.egemaps", None),
    "egemaps_real": ("benchmark.models.egemaps_real", None),
    "load_split": ("benchmark.data.datasets", "load_split"),
    "resolve_files": ("benchmark.data.audio_files", "resolve_files"),
    "DataError": ("benchmark.data.audio_files", "DataError"),
    "DatasetConfigError": ("benchmark.data.errors", "DatasetConfigError"),
    "pool_files": ("benchmark.data.demo", "pool_files"),
    "synth": ("benchmark.data.synth", None),
    "build_student": ("benchmark.students", "build"),
    "Wav2Small": ("benchmark.students.wav2small", "Wav2Small"),
    "Wav2SmallConfig": ("benchmark.students.wav2small", "Wav2SmallConfig"),
    "WAV2SMALL": ("benchmark.students.wav2small", "WAV2SMALL"),
    "export_onnx": ("benchmark.students.export", "export_onnx"),
    "quantize_int8": ("benchmark.students.export", "quantize_int8"),
    "onnx_file": ("benchmark.students.export", "onnx_file"),
    "ONNX_FILE": ("benchmark.students.export", "ONNX_FILE"),
    "FRONTEND_SCOPE": ("benchmark.students.export", "FRONTEND_SCOPE"),
    "onnx_max_abs_difference": ("benchmark.students.export", "onnx_max_abs_difference"),
    "VOICE_SHIFTS": ("benchmark.analyses.perturbations.voice", "VOICE_SHIFTS"),
    "voice_shift": ("benchmark.analyses.perturbations.voice", "voice_shift"),
    "voice": ("benchmark.analyses.perturbations.voice", None),
    "read_mono": ("benchmark.analyses.perturbations", "read_mono"),
    "median_f0": ("benchmark.analyses.pitch", "median_f0"),
    "real_speech_check": ("benchmark.analyses.real_speech_check", None),
    "noise_clip": ("benchmark.efficiency", "noise_clip"),
    "cpu_name": ("benchmark.efficiency", "cpu_name"),
    "PHASES": ("benchmark.timing", "PHASES"),
    "parse_timing": ("benchmark.timing", "parse"),
}

__all__ = ["DIMENSIONS", "__version__", *_HOMES]


def __getattr__(name: str) -> typing.Any:
    # PEP 562: a name is imported from its home module when it is first used
    if name not in _HOMES:
        raise AttributeError(f"module 'benchmark' has no attribute '{name}'")
    module, attribute = _HOMES[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later look-ups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
