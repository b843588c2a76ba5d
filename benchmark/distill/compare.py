"""A re-distillation judged against the committed model by behaviour, not by bytes.

The same seed and recipe give the same bytes on one machine
(``tests/test_distill_reproduce.py``), but not, as far as anyone has
shown, on another CPU vendor (``docs/research/portable-numerics.md``).
So where ``models.yaml`` already registers a student whose weights are
present and match their hash, ``python -m benchmark distill`` does not
overwrite it: it distils a *candidate* into another folder
(:func:`plan`), scores both on the demo test splits against the teacher
(:func:`compare`) and says which one it keeps (:func:`verdict`). Only
``--replace`` registers the new model over a committed one.

Two models behave the same when, on every demo test split, each
dimension's CCC against the teacher differs by at most :data:`TOLERANCE`,
and the new model meets every distillation target the committed one
meets (:func:`benchmark.distill.targets.checks`, on ``test-1``).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np

from benchmark import DIMENSIONS, cache_dir, ccc_columns
from benchmark.distill.config import DistillConfig, default_out, int8_folder
from benchmark.distill.registry_update import read_model_entries

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark import Predictor

TOLERANCE = 0.04
r"""Largest difference in CCC against the teacher, per dimension and split, of two models that behave the same.

The measured spread of the recipe itself: five seeds of one recipe ended
0.037 apart (standard deviation of the test-1 mean CCC,
``docs/research/distillation-record.md``, 0.7.0), and the same seed on
an Intel Xeon and an AMD EPYC 0.031 apart (held-out mean, the evidence of
``docs/research/portable-numerics.md``; their valence 0.11 apart). A difference within it is a
difference the recipe makes anyway; the seed-spread script
(``scripts/distill_seeds.py``) measures it again for the current recipe."""

SPLITS = ("test-1", "test-2")
r"""The demo msppodcast splits the two models are compared on; the targets are judged on the first."""


def committed_model(config: DistillConfig) -> Path | None:
    r"""The student's registered fp32 folder, if ``models.yaml`` names one that exists with its hash.

    Read from the YAML alone (the entry is not validated): a missing file,
    an entry without ``source.path`` or with weights of another hash is no
    committed model to protect.
    """
    from benchmark import artifact_sha256

    path = config.models_path
    if not path.exists():
        return None
    for entry in read_model_entries(path):
        if entry.get("name") != config.student:
            continue
        source = entry.get("source") or {}
        if not source.get("path") or not source.get("sha256"):
            return None
        folder = (path.parent / source["path"]).resolve()
        if folder.is_dir() and artifact_sha256(folder) == source["sha256"]:
            return folder
        return None
    return None


def candidate_folder(student: str) -> Path:
    r"""Where a candidate re-distillation of the project's own ``student`` goes (in the cache, not ``weights/``)."""
    return cache_dir("distill", "candidates") / student


def plan(config: DistillConfig) -> tuple[DistillConfig, Path | None]:
    r"""The configuration to run, and the committed model to compare its result with (``None``: no comparison).

    A run that registers, without ``--replace``, over a student that has a
    committed model becomes a scratch run: into ``--out`` if one was given
    elsewhere, else into :func:`candidate_folder`; ``models.yaml``,
    ``weights/`` and ``results/`` stay as they are.
    """
    if not config.register or config.replace:
        return config, None
    committed = committed_model(config)
    if committed is None:
        return config, None
    out = config.out_path
    if out in (committed, default_out(config.student)):
        out = candidate_folder(config.student)
    return dataclasses.replace(config, out=str(out), register=False), committed


@dataclasses.dataclass
class Comparison:
    r"""Both models' figures on the demo test splits and whether they behave the same."""

    new: dict
    committed: dict
    differences: dict
    agreement: dict
    new_targets: dict
    committed_targets: dict
    tolerance: float = TOLERANCE

    @property
    def within_tolerance(self) -> bool:
        return all(abs(v) <= self.tolerance for split in self.differences.values() for v in split.values())

    @property
    def missed_targets(self) -> list[str]:
        r"""Targets the committed model meets and the new one misses."""
        return [name for name, ok in self.committed_targets.items() if ok and not self.new_targets.get(name, False)]

    def record(self) -> dict:
        return {**dataclasses.asdict(self), "within_tolerance": self.within_tolerance, "missed": self.missed_targets}


def ccc_table(teacher_outputs: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    r"""CCC per dimension and their mean.

    Examples:
        >>> t = np.array([[0.1, 0.2, 0.3], [0.5, 0.4, 0.9], [0.9, 0.1, 0.6]])
        >>> ccc_table(t, t)
        {'arousal': 1.0, 'dominance': 1.0, 'valence': 1.0, 'mean': 1.0}

    """
    return {name: round(value, 6) for name, value in ccc_columns(teacher_outputs, predictions, DIMENSIONS).items()}


def split_signals(teacher: Predictor, split: str, max_files: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""The teacher's outputs on a demo msppodcast split (cached) and its signals; at most ``max_files`` (0: all)."""
    from benchmark import load_split
    from benchmark.distill import annotate

    files = [str(f) for f in load_split("msppodcast", split, data="demo").files]
    files = files[:max_files] if max_files else files
    outputs, audio, _, _ = annotate.annotate_files(teacher, files, label=f"targets-{split}")
    return outputs[list(DIMENSIONS)].to_numpy(), list(audio)


def predict(folder: Path, signals: typing.Sequence[np.ndarray]) -> np.ndarray:
    r"""An exported model's A/D/V on ``signals`` (16 kHz), through the benchmark's own loader."""
    from benchmark.distill.export import load_export

    model = load_export(folder, folder.name)
    return np.stack([model(signal, 16000) for signal in signals])


def compare(new: Path, committed: Path, teacher: Predictor, max_files: int = 0) -> Comparison:
    r"""Score ``new`` and ``committed`` (fp32 folders, their int8 twins next to them) on :data:`SPLITS`."""
    from benchmark.distill import targets

    scores: dict = {"new": {}, "committed": {}}
    agreement = {}
    reports = {}
    for split in SPLITS:
        outputs, signals = split_signals(teacher, split, max_files)
        predictions = {label: predict(folder, signals) for label, folder in (("new", new), ("committed", committed))}
        for label in scores:
            scores[label][split] = ccc_table(outputs, predictions[label])
        agreement[split] = ccc_table(predictions["committed"], predictions["new"])
        if split != SPLITS[0]:
            continue
        for label, folder in (("new", new), ("committed", committed)):
            int8 = ccc_table(outputs, predict(int8_folder(folder), signals))
            fp32 = scores[label][split]
            reports[label] = {
                "models": {"fp32": {"ccc_vs_teacher": fp32}},
                "int8_loss": {d: fp32[d] - int8[d] for d in fp32},
            }
    differences = {
        split: {d: round(scores["new"][split][d] - scores["committed"][split][d], 6) for d in scores["new"][split]}
        for split in SPLITS
    }
    return Comparison(
        new=scores["new"],
        committed=scores["committed"],
        differences=differences,
        agreement=agreement,
        new_targets=targets.checks(reports["new"]),
        committed_targets=targets.checks(reports["committed"]),
    )


def verdict(comparison: Comparison, new: Path, committed: Path, same_bytes: bool) -> str:
    r"""What was kept and why, in a sentence or two a user reads at the end of the run.

    Examples:
        >>> c = Comparison({}, {}, {"test-1": {"mean": 0.01}}, {}, {"t": True}, {"t": True})
        >>> verdict(c, Path("/c/w"), Path("/p/w"), same_bytes=False).split(";")[0].split(" (")[0]
        'behaviourally identical'

    """
    keep = f"kept the committed model {committed} (models.yaml unchanged); the new one is in {new}"
    if same_bytes:
        return f"the same bytes as the committed model; {keep}"
    if comparison.missed_targets:
        return f"the new model misses {', '.join(comparison.missed_targets)}, which the committed one meets; {keep}"
    if comparison.within_tolerance:
        return (
            f"behaviourally identical (every CCC against the teacher within {comparison.tolerance:g} of the "
            f"committed model's, the same targets met); {keep}"
        )
    worst = max(
        ((split, d, v) for split, row in comparison.differences.items() for d, v in row.items()),
        key=lambda x: abs(x[2]),
    )
    return (
        f"the new model behaves differently ({worst[1]} on {worst[0]}: {worst[2]:+.3f} CCC against the teacher, "
        f"beyond {comparison.tolerance:g}); {keep}; to register it instead, re-run with --replace"
    )


def judge(config: DistillConfig, new: Path, committed: Path) -> str:
    r"""Compare the candidate ``new`` with the ``committed`` model, write ``comparison.json``, say which is kept.

    The record goes to the candidate run's records folder (``config.records_path``).
    """
    import json

    from benchmark import artifact_sha256, atomic_write_text
    from benchmark.distill.teacher import load_teacher

    teacher, _ = load_teacher(config.teacher, config.models_path)
    comparison = compare(new, committed, teacher, config.compare_files)
    same = artifact_sha256(new) == artifact_sha256(committed)
    message = verdict(comparison, new, committed, same)
    record = {**comparison.record(), "same_bytes": same, "new": str(new), "committed": str(committed)}
    record["verdict"] = message
    atomic_write_text(config.records_path / "comparison.json", json.dumps(record, indent=2) + "\n")
    return message
