"""Analyses: one module per test family, each with the same entry point.

``run(context: Context) -> dict[str, pandas.DataFrame]`` returns rows
for the result tables named by the keys (see :data:`benchmark.results.KEYS`);
the runner adds the provenance columns and writes them.

Families: ``correctness`` (CCC, Pearson, MAE; and the Jensen–Shannon
distance of predicted and gold distributions, :mod:`.distribution`),
``robustness`` (perturbations), ``fairness`` (sex groups, pitch groups,
individual speakers), ``consistency`` (predictions against categorical
labels). A family that does not apply to a split (:func:`not_applicable`)
is skipped there with its reason. Pass/fail thresholds of every test:
:mod:`benchmark.report`.
"""

from __future__ import annotations

import dataclasses
import typing

import pandas as pd

FAMILIES = ("correctness", "robustness", "fairness", "consistency")

NEEDS_GOLD = ("correctness", "robustness", "fairness")
"""Families that compare predictions with A/D/V gold labels."""


def not_applicable(family: str, evalset, model_dimensions: typing.Sequence[str]) -> str:
    r"""Why ``family`` does not apply to ``evalset`` for a model predicting ``model_dimensions`` ('' if it does).

    A/D/V families need gold on a dimension the model predicts; ``consistency``
    needs categorical labels placed on such a dimension.
    """
    if family in NEEDS_GOLD:
        if not [d for d in evalset.dimensions if d in model_dimensions]:
            have = ", ".join(evalset.dimensions) or "none"
            also = (
                "; per-sex AUC of the categories: consistency"
                if family == "fairness" and evalset.category is not None
                else ""
            )
            return f"no A/D/V gold the model predicts (gold: {have}){also}"
        return ""
    if family == "consistency":
        if evalset.category is None:
            return "no categorical labels ('categories' in datasets.yaml)"
        used = {d for sides in (evalset.places or {}).values() for d in sides}
        if not used & set(model_dimensions):
            return "no category is placed on a dimension the model predicts"
    return ""


@dataclasses.dataclass
class Context:
    r"""Everything an analysis needs about one model × one evaluation split.

    Attributes:
        model: the model whose stored predictions are scored (``name``,
            ``artifact_hash``, ``sampling_rate``; scoring does not load it)
        entry: its :class:`benchmark.registry.ModelEntry`
        evalset: the :class:`benchmark.data.datasets.EvalSet`
        predict: ``predict(files, condition=None) -> DataFrame`` of A/D/V
            predictions indexed like ``files`` (read from the prediction cache;
            files the model could not process are dropped and recorded as skips);
            ``condition`` is a perturbation condition (robustness): ``files``
            are then the original files, whose perturbed signals the model read
        clean: predictions on the unperturbed split (same as ``predict(evalset.files)``)
        seed: seed for bootstraps and perturbations
        options: free-form options from the CLI (e.g. ``bootstrap``, ``conditions``)
        record_skips: ``record_skips(skips, condition)`` records files that
            could not be scored under ``condition`` (``skips``: index file,
            column ``reason``) in the ``skips`` table

    """

    model: typing.Any
    entry: typing.Any
    evalset: typing.Any
    predict: typing.Callable[..., pd.DataFrame]
    clean: pd.DataFrame
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    record_skips: typing.Callable[[pd.DataFrame, dict | None], None] = lambda skips, condition: None

    def base_row(self) -> dict:
        r"""Key/provenance columns shared by all rows of this context."""
        return {
            "model": self.entry.name,
            "model_sha256": self.model.artifact_hash,
            **self.evalset.provenance(),
        }
