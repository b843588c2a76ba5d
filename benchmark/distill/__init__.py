"""Distillation: train a small student on a teacher's A/D/V outputs alone (no human labels).

Stages, one module each:

* :mod:`benchmark.distill.annotate`: training audio → seeded, augmented
  crops → teacher targets, cached on disk by teacher and audio content
* :mod:`benchmark.distill.train`: CCC loss, AdamW with warm-up and
  cosine decay, validation every epoch, resumable checkpoints
* :mod:`benchmark.distill.registry_update`: record the result in ``models.yaml``
* :mod:`benchmark.distill.pipeline`: the stage end to end (:func:`distill`)
* :mod:`benchmark.distill.cli`: ``python -m benchmark distill``
* :mod:`benchmark.distill.targets`: a distilled student against its teacher
  on the held-out test split, with bootstrap intervals, and the targets it meets

See ``docs/distillation.md``.
"""

from __future__ import annotations

import typing

__all__ = ["DistillConfig", "DistillOutcome", "distill"]

if typing.TYPE_CHECKING:  # pragma: no cover
    from benchmark.distill.pipeline import DistillConfig, DistillOutcome, distill


def __getattr__(name: str):
    # torch is imported only when the stage is actually used
    if name in __all__:
        from benchmark.distill import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'benchmark.distill' has no attribute '{name}'")
