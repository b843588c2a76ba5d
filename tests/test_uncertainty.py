"""Speaker-clustered intervals and tie-aware ranks on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark import metrics
from benchmark.analyses import balance
from benchmark.docs import ranks


def population_ccc(speaker_sd: float, file_sd: float, bias_sd: float, noise_sd: float) -> float:
    r"""CCC of the generative model below, from its moments (no sample drawn).

    truth = u_speaker + e_file; prediction = truth + b_speaker + n_file, all
    independent, mean 0: var(truth) = su² + se², var(prediction) =
    var(truth) + sb² + sn², cov = var(truth), equal means.
    """
    vt = speaker_sd**2 + file_sd**2
    vp = vt + bias_sd**2 + noise_sd**2
    return 2 * vt / (vt + vp)


def speaker_corpus(rng, speakers: int, files: int, sd=(0.6, 0.4, 0.6, 0.3)):
    r"""Truth, prediction and speaker labels of a corpus whose speakers shift both truth and error."""
    su, se, sb, sn = sd
    spk = np.repeat(np.arange(speakers), files)
    truth = rng.normal(0, su, speakers)[spk] + rng.normal(0, se, speakers * files)
    prediction = truth + rng.normal(0, sb, speakers)[spk] + rng.normal(0, sn, speakers * files)
    return pd.Series(truth), pd.Series(prediction), pd.Series([f"s{s}" for s in spk])


def test_clustered_interval_covers_the_true_ccc_and_the_file_level_one_does_not():
    # 30 speakers x 20 files; the error has a speaker part as large as the truth's speaker part.
    # With 200 replications (not run here) the coverage of a 95 % interval was 0.93 (speakers)
    # and 0.44 (files). At 40 replications one binomial SD is <= 0.08, so the bounds below sit
    # more than 3 SD from those rates.
    target = population_ccc(0.6, 0.4, 0.6, 0.3)
    rng = np.random.default_rng(1)
    hits = {"speaker": 0, "file": 0}
    widths = {"speaker": [], "file": []}
    replications = 40
    for r in range(replications):
        truth, prediction, speaker = speaker_corpus(rng, 30, 20)
        for unit, clusters in (("speaker", speaker), ("file", None)):
            low, high = metrics.bootstrap_ci(truth, prediction, n=200, seed=r, clusters=clusters)
            hits[unit] += low <= target <= high
            widths[unit].append(high - low)
    coverage = {unit: hit / replications for unit, hit in hits.items()}
    assert coverage["speaker"] >= 0.8, coverage
    assert coverage["file"] <= 0.7, coverage
    assert coverage["speaker"] - coverage["file"] >= 0.2, coverage
    assert np.mean(widths["speaker"]) > 2 * np.mean(widths["file"])


def test_without_speaker_structure_both_units_agree():
    # every file its own speaker's only file: resampling speakers is resampling files
    rng = np.random.default_rng(2)
    truth = pd.Series(rng.normal(size=300))
    prediction = truth + rng.normal(scale=0.7, size=300)
    speaker = pd.Series([f"s{i}" for i in range(300)])
    by_speaker = metrics.bootstrap_ci(truth, prediction, n=300, seed=0, clusters=speaker)
    by_file = metrics.bootstrap_ci(truth, prediction, n=300, seed=0)
    assert by_speaker[1] - by_speaker[0] == pytest.approx(by_file[1] - by_file[0], rel=0.25)


def test_cluster_weights_match_concatenated_resamples():
    codes = np.array([0, 0, 1, 2, 2, 2])
    t = np.array([0.1, 0.4, 0.2, 0.9, 0.5, 0.3])
    p = np.array([0.2, 0.3, 0.1, 0.7, 0.6, 0.2])
    weights = metrics.cluster_weights(codes, 5, 3)
    draws = list(metrics.resamples(len(codes), 5, 3, codes))
    for w, rows in zip(weights, draws):
        expected = metrics.ccc_numpy(t[rows], p[rows])
        assert metrics.ccc_weighted(t, p, w[None, :])[0] == pytest.approx(expected)


def test_speaker_clusters_fall_back_to_files():
    index = pd.Index(list("abcdef"))
    two = pd.Series(["x", "x", "x", "y", "y", "y"], index=index)
    assert metrics.speaker_clusters(two, index) is None  # fewer than MIN_CLUSTERS speakers
    many = pd.Series(["x", "x", "y", "y", "z", "z"], index=index)
    assert metrics.speaker_clusters(many, index).tolist() == many.tolist()
    assert metrics.speaker_clusters(many, index, "file") is None
    assert metrics.speaker_clusters(None, index) is None
    with pytest.raises(ValueError, match="interval unit"):
        metrics.speaker_clusters(many, index, "utterance")


def test_fairness_delta_records_its_unit_and_widens_with_speakers():
    rng = np.random.default_rng(4)
    truth, prediction, speaker = speaker_corpus(rng, 20, 15)
    t, p = truth.to_numpy(), prediction.to_numpy()
    members = {"female": np.arange(0, 150), "male": np.arange(150, 300)}
    by_file = balance.group_deltas(t, p, members, n_boot=300, seed=0)
    by_speaker = balance.group_deltas(t, p, members, n_boot=300, seed=0, clusters=speaker.to_numpy(object))
    assert {r["ci_unit"] for r in by_file} == {"file"}
    assert {r["ci_unit"] for r in by_speaker} == {"speaker"}
    for f, s in zip(by_file, by_speaker):
        assert f["delta_ccc"] == s["delta_ccc"]
        assert s["ci_high"] - s["ci_low"] > 1.5 * (f["ci_high"] - f["ci_low"])


def test_holm_adjusts_against_a_hand_computation():
    # p sorted 0.01, 0.02, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.02), max(0.04, 1 * 0.04)
    assert ranks.holm([0.04, 0.01, 0.02]).tolist() == pytest.approx([0.04, 0.03, 0.04])


def _models(rng, noise: dict[str, float], speakers: int = 40, files: int = 10):
    spk = np.repeat(np.arange(speakers), files)
    truth = rng.normal(size=(speakers * files, 2))
    preds = {name: truth + rng.normal(scale=sd, size=truth.shape) for name, sd in noise.items()}
    return truth, preds, spk.astype(str)


def _p_value(truth, preds, clusters):
    return lambda a, b: ranks.paired_p(truth, preds[a], preds[b], clusters, n=300, seed=0)


def test_clearly_separated_models_get_distinct_ranks():
    rng = np.random.default_rng(5)
    truth, preds, spk = _models(rng, {"good": 0.1, "fair": 0.8, "poor": 3.0})
    assert ranks.rank_groups(["good", "fair", "poor"], _p_value(truth, preds, spk)) == {
        "good": 1,
        "fair": 2,
        "poor": 3,
    }


def test_identical_models_share_a_rank():
    rng = np.random.default_rng(6)
    truth, preds, spk = _models(rng, {"a": 0.5, "poor": 3.0})
    preds["b"] = preds["a"].copy()
    preds["c"] = preds["a"].copy()
    assert ranks.rank_groups(["a", "b", "c", "poor"], _p_value(truth, preds, spk)) == {
        "a": 1,
        "b": 1,
        "c": 1,
        "poor": 4,
    }


def test_rank_group_ends_at_the_first_separated_model():
    # b is not separable from a; c is; d is not separable from c (p-values given, Holm over 3, then 1)
    p = {("a", "b"): 0.5, ("a", "c"): 0.001, ("a", "d"): 0.2, ("c", "d"): 0.3}
    groups = ranks.rank_groups(["a", "b", "c", "d"], lambda x, y: p[(x, y)])
    assert groups == {"a": 1, "b": 1, "c": 3, "d": 3}


def test_holm_keeps_a_group_together_that_single_tests_would_split():
    # 0.03 alone is below 5 %, but one of two comparisons: Holm gives 0.06
    p = {("a", "b"): 0.03, ("a", "c"): 0.04}
    assert ranks.rank_groups(["a", "b", "c"], lambda x, y: p[(x, y)]) == {"a": 1, "b": 1, "c": 1}


def test_share_interval_narrows_with_more_tests():
    low_few, high_few = ranks.share_interval(6, 10)
    low_many, high_many = ranks.share_interval(600, 1000)
    assert low_few <= 0.6 <= high_few and low_many <= 0.6 <= high_many
    assert high_many - low_many < (high_few - low_few) / 5
