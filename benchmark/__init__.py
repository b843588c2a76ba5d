"""Reproducible benchmark for dimensional speech emotion recognition.

Registry (``models.yaml``, ``datasets.yaml``) → data (audb) → runner
(audinterface) → analyses (correctness, robustness, fairness) → results
(versioned CSV tables) → docs (leaderboard).
"""

__version__ = "0.13.0"

DIMENSIONS = ("arousal", "dominance", "valence")
"""Order of the emotional dimensions in every prediction vector."""
