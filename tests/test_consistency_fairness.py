"""Fairness on a categorical corpus: the consistency AUC per sex and per speaker, judged by thresholds.yaml."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark import report
from benchmark.analyses import consistency_groups


def consistency_table(predict, speakers: dict[str, tuple[str, int]]) -> pd.DataFrame:
    r"""Consistency rows for arousal predictions ``predict(category, speaker, k)`` on a constructed split.

    ``speakers`` maps a speaker to (sex, files per category); anger is arousal-high, sadness arousal-low.
    """
    from conftest import BASELINES_YAML

    from benchmark.analyses import Context, consistency
    from benchmark.data.datasets import EvalSet
    from benchmark.registry import Registry, load_model

    keys = [(c, spk, k) for spk, (_, n) in speakers.items() for c in ("anger", "sadness") for k in range(n)]
    index = pd.Index([f"/data/{spk}-{c}-{k}.wav" for c, spk, k in keys], name="file")
    evalset = EvalSet(
        dataset="constructed",
        audb_name="constructed",
        version="1.0.0",
        split="test",
        table="test",
        truth=pd.DataFrame(index=index),
        speaker=pd.Series([spk for _, spk, _ in keys], index=index),
        sex=pd.Series([speakers[spk][0] for _, spk, _ in keys], index=index),
        root="/data",
        fingerprint="0" * 64,
        category=pd.Series([c for c, _, _ in keys], index=index),
        places={"anger": {"arousal": "high"}, "sadness": {"arousal": "low"}},
    )
    registry = Registry.from_yaml_text(BASELINES_YAML)
    clean = pd.DataFrame({"arousal": [predict(c, spk, k) for c, spk, k in keys], "dominance": 0.5}, index=index)
    context = Context(
        load_model("constant", registry), registry["constant"], evalset, None, clean, 0, {"bootstrap": 200}
    )
    return consistency.run(context)["consistency"]


def outcomes(table: pd.DataFrame) -> dict[tuple[str, str], str]:
    r"""(test, group) → outcome of the consistency tests of ``thresholds.yaml`` on ``table``."""
    judged = report.evaluate({"consistency": table}, report.load_thresholds())
    return {(r.test, r.group): r.outcome for r in judged.itertuples()}


SPEAKERS = {"f1": ("female", 12), "f2": ("female", 12), "m1": ("male", 12), "m2": ("male", 12)}


def test_a_model_fair_by_construction_passes_the_sex_gap():
    # anger above sadness for every speaker, with the same overlap for both sexes
    table = consistency_table(lambda c, spk, k: (0.6 if c == "anger" else 0.4) + 0.03 * (k % 4), SPEAKERS)
    rows = table.set_index("group")
    # within each sex the files are the same values as over all files: the same AUC
    assert rows.loc["female", "auc"] == pytest.approx(rows.loc["all", "auc"])
    assert rows.loc["male", "delta_auc"] == pytest.approx(0.0)
    got = outcomes(table)
    assert got[("consistency-sex-delta-auc", "female")] == "passed"
    assert got[("consistency-sex-delta-auc", "male")] == "passed"
    assert got[("consistency-worst-speaker", "worst-speaker")] == "passed"


def test_a_model_biased_against_one_sex_fails_the_sex_gap():
    # women: anger always above sadness; men: the reverse
    def predict(c, spk, k):
        aligned = spk.startswith("f")
        return 0.8 if (c == "anger") == aligned else 0.2

    table = consistency_table(predict, SPEAKERS)
    rows = table.set_index("group")
    assert rows.loc["all", "auc"] == pytest.approx(0.5)  # pooled, half the pairs are ordered
    assert rows.loc["female", "auc"] == 1.0 and rows.loc["male", "auc"] == 0.0
    assert rows.loc["female", "delta_ci_low"] > 0.04 and rows.loc["male", "delta_ci_high"] < -0.04
    got = outcomes(table)
    # the AUC of all files has no skill (its interval holds 0.5): the fairness tests are not scored
    assert got[("consistency-sex-delta-auc", "male")] == "not scored"


def test_a_model_with_skill_but_worse_for_men_fails_the_sex_gap():
    # women perfectly ranked; men half the time (anger above sadness for every second file only)
    def predict(c, spk, k):
        if spk.startswith("f") or k % 2:
            return 0.8 if c == "anger" else 0.2
        return 0.2 if c == "anger" else 0.8

    table = consistency_table(predict, {**SPEAKERS, "f3": ("female", 12), "f4": ("female", 12)})
    rows = table.set_index("group")
    assert rows.loc["female", "auc"] == 1.0 and rows.loc["male", "auc"] == pytest.approx(0.5)
    got = outcomes(table)
    assert got[("consistency-auc", "all")] == "passed"
    assert got[("consistency-sex-delta-auc", "male")] == "failed"
    # the worst speaker is a man at AUC 0.5; with 12 files a side his interval still reaches 0.6
    assert rows.loc["worst-speaker", "speaker"] in ("m1", "m2") and rows.loc["worst-speaker", "auc"] == 0.5
    assert got[("consistency-worst-speaker", "worst-speaker")] == "undecided"


def test_per_speaker_consistency_names_the_worst_speaker():
    # m2 ranks reversed; f2 has too few files for a row of its own
    speakers = {"f1": ("female", 12), "f2": ("female", 4), "m1": ("male", 12), "m2": ("male", 12), "m3": ("male", 12)}

    def predict(c, spk, k):
        high = (c == "anger") != (spk == "m2")
        return (0.7 if high else 0.3) + 0.01 * k

    table = consistency_table(predict, speakers)
    rows = table.set_index("group")
    speaker_rows = sorted(g for g in rows.index if g.startswith("speaker:"))
    assert speaker_rows == ["speaker:f1", "speaker:m1", "speaker:m2", "speaker:m3"]
    assert rows.loc["speaker:m2", "auc"] == 0.0 and rows.loc["speaker:f1", "auc"] == 1.0
    worst = rows.loc["worst-speaker"]
    assert worst["speaker"] == "m2" and worst["auc"] == 0.0 and worst["n_speakers"] == 4
    assert worst["ci_high"] == rows.loc["speaker:m2", "ci_high"]


def test_worst_speaker_interval_spans_the_lowest_bounds():
    rows = [
        {"group": "speaker:a", "auc": 0.70, "ci_low": 0.62, "ci_high": 0.80},
        {"group": "speaker:b", "auc": 0.65, "ci_low": 0.58, "ci_high": 0.90},
        {"group": "female", "auc": 0.10, "ci_low": 0.0, "ci_high": 0.2},  # not a speaker: ignored
    ]
    worst = consistency_groups.worst_speaker(rows)
    assert (worst["speaker"], worst["auc"], worst["ci_low"], worst["ci_high"]) == ("b", 0.65, 0.58, 0.80)
    assert consistency_groups.worst_speaker(rows[:1]) is None  # one speaker has no worst


def test_delta_interval_covers_the_true_gap_of_a_shifted_group():
    from benchmark.analyses.consistency import auc

    rng = np.random.default_rng(1)
    high, low = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    group = np.arange(400) < 200
    # the group's files are the same distribution: the gap is 0 and the interval holds it
    lo, hi = consistency_groups.delta_ci(high, low, group, group, 300, 0, auc)
    assert lo < 0 < hi and hi - lo < 0.1
