"""Real-speech distillation checks on EmoDB's train speakers: constructed predictions with known AUCs."""

from __future__ import annotations

from pathlib import Path

import audiofile
import numpy as np
import pandas as pd
import pytest
from conftest import tone

from benchmark.analyses import real_speech_check as check
from benchmark.data.errors import DatasetConfigError
from benchmark.data.releases.emodb import train_speaker_files
from benchmark.models.egemaps import EgemapsRegressor

# anger, happiness, fear: high arousal; sadness, boredom: low; neutral, disgust: neither
EMOTION = ["anger", "sadness", "happiness", "boredom", "neutral", "anger", "sadness", "fear", "boredom", "disgust"]
SEX = ["female"] * 5 + ["male"] * 5


def test_arousal_auc_counts_pairs():
    # female: highs 0.9, 0.3 against lows 0.5, 0.1 → 3 of 4 pairs; male: highs 0.2, 0.4 against lows 0.6, 0.8 → 0 of 4
    arousal = np.array([0.9, 0.5, 0.3, 0.1, 0.99, 0.2, 0.6, 0.4, 0.8, 0.0])
    r = check.arousal_auc(arousal, EMOTION, SEX)
    assert r["auc_female"] == pytest.approx(0.75)
    assert r["auc_male"] == pytest.approx(0.0)
    assert r["sex_gap"] == pytest.approx(0.75)
    # all: highs 0.9, 0.3, 0.2, 0.4 against lows 0.5, 0.1, 0.6, 0.8 → 0.9 beats 4, the others beat 0.1 only: 7 of 16
    assert r["auc"] == pytest.approx(7 / 16)


def test_ties_count_one_half_and_unplaced_emotions_are_left_out():
    r = check.arousal_auc(np.full(10, 0.5), EMOTION, SEX)
    assert r["auc"] == r["auc_female"] == r["auc_male"] == 0.5
    with pytest.raises(ValueError, match="grumpy"):
        check.arousal_auc(np.zeros(2), ["anger", "grumpy"], ["female", "male"])


def test_a_sex_without_both_sides_gives_nan_and_fails():
    r = check.arousal_auc(np.array([0.9, 0.1, 0.8]), ["anger", "sadness", "anger"], ["female", "female", "male"])
    assert r["auc_female"] == 1.0 and np.isnan(r["auc_male"]) and np.isnan(r["sex_gap"])
    assert not check.check(r, r)["sex_gap_ok"]


@pytest.mark.parametrize(
    ("student", "teacher", "auc_ok", "gap_ok"),
    [
        (0.90, 0.91, True, True),
        (0.88, 0.91, False, True),  # 0.03 below the teacher
        (0.94, 0.91, False, True),  # above counts too: the student should rank as its teacher does
        (0.90, 0.90, True, False),  # gap 0.08 below
    ],
)
def test_check_tolerances(student, teacher, auc_ok, gap_ok):
    gap = -0.08 if not gap_ok else 0.07
    result = check.check({"auc": student, "sex_gap": gap}, {"auc": teacher, "sex_gap": 0.0})
    assert (result["auc_ok"], result["sex_gap_ok"], result["passed"]) == (auc_ok, gap_ok, auc_ok and gap_ok)
    assert result["auc_diff"] == pytest.approx(student - teacher)


def test_compare_rows_and_length_mismatch():
    files = pd.DataFrame({"emotion": EMOTION, "sex": SEX})
    teacher = np.column_stack([[0.9, 0.1, 0.8, 0.2, 0.5, 0.9, 0.1, 0.8, 0.2, 0.5], np.zeros(10), np.zeros(10)])
    row = check.compare(teacher, teacher, files, "s", "t")
    assert row["student_auc"] == row["teacher_auc"] == 1.0 and row["passed"]
    with pytest.raises(ValueError, match="must cover the 10 files"):
        check.compare(teacher[:3], teacher, files, "s", "t")


def _release(root: Path, names: list[str], rate: int = 22050) -> Path:
    (root / "wav").mkdir(parents=True)
    lines = ["Nr.\tSatz\terkannt\tnatuerlich"]
    for i, name in enumerate(names):
        audiofile.write(str(root / "wav" / name), tone(0.5, 120 + 20 * i, sr=rate, seed=i), rate)
        lines.append(f"{i + 1}\t{name}\t90,00\t80,00")
    (root / "erkennung.txt").write_bytes("\n".join(lines).encode("latin-1"))
    return root


def test_train_files_never_include_test_speakers_and_predictions_are_resampled(tmp_path):
    root = _release(tmp_path / "emodb", ["03a01Wa.wav", "08a01Ta.wav", "12a01Wa.wav", "16a01Ta.wav"])
    files = train_speaker_files(root)
    assert sorted(Path(s).name for s in files["source"]) == ["03a01Wa.wav", "08a01Ta.wav"]
    assert files["sex"].tolist() == ["male", "female"] and files["emotion"].tolist() == ["anger", "sadness"]
    # a real fitted-format model whose weights are zero answers its intercept, whatever the 22.05 kHz audio
    model = EgemapsRegressor("tiny", np.zeros(88), np.ones(88), np.zeros((3, 88)), [0.3, 0.4, 0.5], [1.0] * 3)
    pred = check.predict_files(model, files["source"].tolist())
    np.testing.assert_allclose(pred, [[0.3, 0.4, 0.5]] * 2)


def test_a_folder_without_train_speakers_is_an_error(tmp_path):
    root = _release(tmp_path / "emodb", ["12a01Wa.wav"])
    with pytest.raises(DatasetConfigError, match="no file of EmoDB's train speakers"):
        train_speaker_files(root)
    with pytest.raises(DatasetConfigError, match="not an EmoDB release folder"):
        train_speaker_files(tmp_path)


def test_real_speech_joins_the_distillation_pool_without_the_test_speakers(tmp_path):
    from benchmark.distill.config import DistillConfig, DistillError
    from benchmark.distill.teacher import pool_sources

    root = _release(tmp_path / "emodb", ["03a01Wa.wav", "08a01Ta.wav", "12a01Wa.wav", "16a01Ta.wav"])
    pool = tmp_path / "pool"
    pool.mkdir()
    audiofile.write(str(pool / "a.wav"), tone(0.5, 200, sr=16000, seed=9), 16000)
    files, source = pool_sources(DistillConfig(data=str(pool), real_speech=f"emodb={root}"))
    assert sorted(Path(f).name for f in files) == ["03a01Wa.wav", "08a01Ta.wav", "a.wav"]
    assert source == f"folder {pool} + EmoDB train speakers (2 files)"
    assert pool_sources(DistillConfig(data=str(pool)))[0] == [str(pool / "a.wav")]
    for spec in (f"crema-d={root}", f"emodb={tmp_path}", "emodb"):
        with pytest.raises(DistillError, match="give emodb=PATH"):
            pool_sources(DistillConfig(data=str(pool), real_speech=spec))
