"""The eGeMAPS teacher fitted on synthetic and real categorical speech: targets, weighted ridge, CV, choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_real_speech_check import _release

from benchmark.models import egemaps, egemaps_real


def test_targets_follow_the_placements():
    y = egemaps_real.category_targets(["sadness", "happiness", "boredom"])
    # sadness: low arousal, low dominance, negative valence; happiness: no dominance side; boredom: none either
    np.testing.assert_array_equal(y[0], [0.25, 0.25, 0.25])
    np.testing.assert_array_equal(y[1], [0.75, np.nan, 0.75])
    np.testing.assert_array_equal(y[2], [0.25, np.nan, 0.25])
    with pytest.raises(ValueError, match="grumpy"):
        egemaps_real.category_targets(["grumpy"])


def test_an_integer_weight_equals_repeating_the_rows():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    weight = np.where(np.arange(20) < 5, 3.0, 1.0)
    repeated = np.repeat(np.arange(20), weight.astype(int))
    c, b = egemaps_real.weighted_ridge(x, y, weight, 2.0)
    c_ref, b_ref = egemaps.ridge(x[repeated], y[repeated], 2.0)
    np.testing.assert_allclose(c, c_ref, rtol=1e-10)
    assert b == pytest.approx(b_ref)


def test_without_real_weight_the_fit_is_the_synthetic_ridge():
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=(40, 88)), rng.uniform(size=(40, 3))
    xr, yr = rng.normal(size=(10, 88)), np.full((10, 3), 0.75)
    model = egemaps_real.fit_mixed((xs, ys), (xr, yr), [0.0] * 3, [5.0] * 3)
    z = egemaps.standardise(xs, xs.mean(0), xs.std(0), egemaps.DEFAULT_CLIP)
    for d in range(3):
        c, b = egemaps.ridge(z, ys[:, d], 5.0)
        np.testing.assert_allclose(model.arrays["coef"][d], c, rtol=1e-8, atol=1e-12)
        assert model.arrays["intercept"][d] == pytest.approx(b)
    assert bool(model.arrays["normalise"][0])


def _two_domains(seed=0):
    r"""Synthetic labels follow feature 0; real high/low targets follow feature 1 only."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(120, 4))
    ys = np.repeat((0.5 + 0.1 * xs[:, :1]), 3, axis=1)
    gs = np.repeat([f"s{i}" for i in range(12)], 10)
    xr = rng.normal(size=(60, 4))
    yr = np.repeat(np.where(xr[:, 1:2] > 0, 0.75, 0.25), 3, axis=1)
    gr = np.repeat([f"r{i}" for i in range(3)], 20)
    return (xs, ys, gs), (xr, yr, gr)


def test_cross_validation_sees_real_speech_only_when_it_is_weighted():
    synthetic, real = _two_domains()
    scores = egemaps_real.cross_validate(synthetic, real, egemaps_real.real_auc_of(real[1]), [0.0, 1.0], [1e-3])
    assert scores.shape == (3, 2, 1, 2)
    # weight 0: the real files' feature 1 carries no weight, their AUC is near chance; weight 1 learns it
    assert abs(scores[0, 0, 0, 0] - 0.5) < 0.2
    assert scores[0, 1, 0, 0] > 0.8
    # the synthetic labels: exact without real files; with them still followed, at a cost (the trade-off choose weighs)
    assert scores[0, 0, 0, 1] > 0.99 and 0.5 < scores[0, 1, 0, 1] < scores[0, 0, 0, 1]


def test_choice_keeps_weight_zero_when_real_speech_costs_too_much():
    scores = np.zeros((3, 3, 2, 2))
    scores[:, 0, :, :] = [[0.4, 0.70], [0.45, 0.71]]
    scores[:, 1, :, :] = [[0.6, 0.69], [0.65, 0.60]]
    scores[:, 2, :, :] = [[0.9, 0.50], [0.95, 0.40]]
    weights, alphas = egemaps_real.choose(scores, [0.0, 0.5, 1.0], [1.0, 10.0], {d: 0.03 for d in egemaps.DIMENSIONS})
    assert weights == [0.5] * 3 and alphas == [1.0] * 3  # 0.69 is within 0.03 of 0.71; 0.60 and below are not
    weights, _ = egemaps_real.choose(scores, [0.0, 0.5, 1.0], [1.0, 10.0], {d: 0.0 for d in egemaps.DIMENSIONS})
    assert weights == [0.0] * 3


def test_emodb_data_reads_train_speakers_only(tmp_path):
    root = _release(tmp_path / "emodb", ["03a01Wa.wav", "08a01Ta.wav", "09a01Na.wav", "12a01Wa.wav"])
    x, y, speakers = egemaps_real.emodb_data(root)
    assert x.shape == (3, 88) and np.isfinite(x).all()
    assert speakers.tolist() == ["03", "08", "09"]
    np.testing.assert_array_equal(y, [[0.75, 0.75, 0.25], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5]])


def _script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_teacher_refuses_a_real_speech_option_it_cannot_read(tmp_path, capsys):
    fit_teacher = _script("fit_teacher")
    for value in ("crema-d=" + str(tmp_path), "emodb=" + str(tmp_path), "emodb"):
        with pytest.raises(SystemExit) as exit_:
            fit_teacher.main(["--real-speech", value, "--out", str(tmp_path / "out")])
        assert exit_.value.code == 2
        assert "give emodb=PATH" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_real_speech_targets_script_checks_names_before_reading_audio(tmp_path, capsys):
    script = _script("real_speech_targets")
    root = _release(tmp_path / "emodb", ["03a01Wa.wav", "08a01Ta.wav"])
    with pytest.raises(SystemExit) as exit_:
        script.main([str(root), "--students", "no-such-model"])
    assert exit_.value.code == 2 and "no-such-model" in capsys.readouterr().err
