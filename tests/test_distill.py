"""Distillation stage: tiny end-to-end runs with a stand-in teacher and student.

The stand-in teacher computes A/D/V from simple signal statistics and
counts its calls; the stand-in student is a one-layer convolution.
Each run takes a few seconds on one CPU thread.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import audiofile
import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data.audio_files import DataError
from benchmark.distill import annotate, audio, crops
from benchmark.distill.annotate import TeacherError
from benchmark.distill.checkpoint import CheckpointMismatch
from benchmark.distill.config import DistillConfig, DistillError
from benchmark.distill.pipeline import distill
from benchmark.distill.registry_update import update_registry
from benchmark.distill.train import Interrupted, ccc_loss
from benchmark.hashing import artifact_sha256, sha256_file, sha256_text, sha256_tree
from benchmark.metrics import ccc_finite
from benchmark.models.base import Predictor

SR = 16000

MODELS_YAML = """\
# A registry written by a person: comments and layout must survive.
models:
  - name: constant
    kind: constant
    role: baseline
    source: {}
    params: {value: 0.5}   # midpoint
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: always 0.5

  # the student, before it was ever distilled
  - name: tiny
    kind: audonnx
    role: student
    source:
      path: weights/old-tiny
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: tiny test student

  - name: random-gaussian
    kind: random
    role: baseline
    source: {}
    params: {seed: 0}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: seeded Gaussian draws
"""


class FeatureTeacher(Predictor):
    r"""Deterministic stand-in: loudness, zero-crossing rate, spectral balance; counts calls."""

    def __init__(self, nan_when_silent: bool = False):
        super().__init__("feature-teacher", sha256_text("feature-teacher-1"))
        self.calls = 0
        self.nan_when_silent = nan_when_silent

    def predict(self, signal: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))
        if self.nan_when_silent and rms == 0:
            return np.full(3, np.nan)
        zcr = float(np.mean(np.abs(np.diff(np.sign(signal))) > 0))
        diff = float(np.sqrt(np.mean(np.diff(signal.astype(np.float64)) ** 2)))
        return np.array([np.log10(rms + 1e-4) / 4 + 1, zcr, diff / (rms + 1e-4) / 2])

    def predict_batch(self, signals):
        self.calls += 1
        return super().predict_batch(signals)


class TinyStudent(nn.Module):
    r"""One strided convolution with BatchNorm, mean and max pooling, a linear head."""

    def __init__(self, stride: int = 32):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 64, stride=stride, bias=False)
        self.norm = nn.BatchNorm1d(4)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv(x[:, None])))
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def teacher_set(name: str, signals: list[np.ndarray]):
    r"""A ``ValidationSet`` of ``signals`` with :class:`FeatureTeacher`'s outputs for them."""
    import pandas as pd

    from benchmark.distill.validation import ValidationSet

    outputs = [FeatureTeacher().predict(s) for s in signals]
    return ValidationSet(name, signals, pd.DataFrame(outputs, columns=["arousal", "dominance", "valence"]))


def small_wav2small(arch: str) -> nn.Module:
    r"""A two-layer Wav2Small with 8 channels (a multiple of 8: it trains channels-last)."""
    from benchmark.students.wav2small import Wav2Small, Wav2SmallConfig

    return Wav2Small(Wav2SmallConfig(channels=8, layers=2, pool_after=1))


def write_tones(folder: Path, prefix: str, count: int, seed: int, seconds, hz, level, noise) -> Path:
    r"""``count`` files ``<prefix><i>.wav`` in a new ``folder``: a tone plus white noise, each a function of ``i``."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        t = np.arange(int(SR * seconds(i))) / SR
        x = level(i) * np.sin(2 * np.pi * hz(i) * t) + noise(i) * rng.normal(size=len(t))
        audiofile.write(str(folder / f"{prefix}{i}.wav"), x.astype(np.float32), SR)
    return folder


@pytest.fixture()
def pool(tmp_path) -> Path:
    r"""Eight short files: tones and noise at different levels and lengths."""
    return write_tones(
        tmp_path / "pool",
        "f",
        8,
        0,
        seconds=lambda i: 0.4 + 0.1 * i,
        hz=lambda i: 150 + 60 * i,
        level=lambda i: 0.02 * (i + 1),
        noise=lambda i: 0.01 * (i % 3),
    )


@pytest.fixture()
def models_yaml(tmp_path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS_YAML)
    return path


def config(tmp_path, pool, models_yaml, out="tiny", **kwargs) -> DistillConfig:
    base = dict(
        student="tiny",
        data=str(pool),
        out=str(tmp_path / "weights" / out),
        models=str(models_yaml),
        epochs=2,
        batch_size=4,
        crop_seconds=0.5,
        variants=2,
        val_fraction=0.25,
        gold="none",
        threads=1,
        progress=False,
        checkpoint_every=2,
        teacher_batch=5,
        lr=1e-2,
        # the recipe these tiny runs' expected outcomes were recorded with (voice augmentation came later)
        aug_pitch=0.0,
        aug_formant=0.0,
    )
    base.update(kwargs)
    return DistillConfig(**base)


def run(cfg: DistillConfig, teacher: Predictor | None = None):
    return distill(cfg, teacher=teacher or FeatureTeacher(), build_student=lambda arch: TinyStudent())


def onnx_bytes(outcome) -> bytes:
    return (outcome.out / "model.onnx").read_bytes()


def test_end_to_end(tmp_path, pool, models_yaml):
    outcome = run(config(tmp_path, pool, models_yaml))
    for folder in (outcome.out, outcome.out_int8):
        assert (folder / "model.onnx").exists() and (folder / "model.yaml").exists()
    record = json.loads((outcome.out / "provenance.json").read_text())
    assert record["teacher"] == {"name": "feature-teacher", "sha256": sha256_text("feature-teacher-1")}
    assert record["data"]["train_files"] == 6 and record["data"]["heldout_files"] == 2
    assert record["hyperparameters"]["epochs"] == 2 and record["seed"] == 0
    assert set(record["validation"]["onnx"]) == {"fp32", "int8"}
    assert "teacher_mean" in record["validation"]["onnx"]["int8"]
    assert "wall_seconds" not in record  # the model folder's copy holds only what the weights depend on
    assert outcome.provenance["wall_seconds"] > 0
    history = outcome.history
    assert history["epoch"].tolist() == [1, 2] and {"train_loss", "teacher_arousal", "teacher_mean"} <= set(history)
    from benchmark.paths import results_root

    folder = results_root() / "distill" / "tiny"
    assert {p.name for p in folder.iterdir()} >= {"history.csv", "provenance.json", "training_curve.png"}
    # the ONNX model is what the benchmark runs: it loads through the registry
    from benchmark.registry import Registry, load_model

    text = models_yaml.read_text()
    entry = Registry.from_yaml_text(text, root=models_yaml.parent)["tiny"]
    model = load_model(entry, registry={})
    assert model(np.zeros(8000, np.float32) + 0.01, SR).shape == (3,)


def test_registry_entries_updated_in_place(tmp_path, pool, models_yaml):
    before = models_yaml.read_text()
    outcome = run(config(tmp_path, pool, models_yaml))
    after = models_yaml.read_text()
    sha, sha_int8 = artifact_sha256(outcome.out), artifact_sha256(outcome.out_int8)
    # other entries, comments and blank lines are byte-identical
    head, tail = before.split("  # the student")[0], before.split("description: tiny test student\n")[1]
    assert after.startswith(head + "  # the student, before it was ever distilled\n  - name: tiny\n")
    assert tail in after
    assert f"    source: {{path: weights/tiny, sha256: {sha}}}\n" in after
    assert "path: weights/old-tiny" not in after
    assert after.count("- name: tiny-int8") == 1 and f"sha256: {sha_int8}" in after
    from benchmark.registry import Registry

    registry = Registry.from_yaml_text(after, root=models_yaml.parent)
    assert registry["tiny"].distilled["teacher"] == "feature-teacher"
    assert registry["tiny-int8"].source["path"] == "weights/tiny-int8"
    assert list(registry) == ["constant", "tiny", "random-gaussian", "tiny-int8"]


def test_scratch_run_keeps_the_registered_records(tmp_path, pool, models_yaml):
    from benchmark.paths import results_root

    registered = run(config(tmp_path, pool, models_yaml))
    folder = results_root() / "distill" / "tiny"
    records = {p.name: p.read_bytes() for p in folder.iterdir()}
    registry = models_yaml.read_text()
    scratch = run(config(tmp_path, pool, models_yaml, out="scratch", register=False, seed=1))
    # the registered model's records and entry are untouched; the scratch run's records lie next to it
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == records
    assert models_yaml.read_text() == registry
    own = tmp_path / "weights" / "scratch-records"
    assert {"history.csv", "provenance.json", "training_curve.png"} <= {p.name for p in own.iterdir()}
    assert json.loads((own / "provenance.json").read_text())["student"]["path"] == str(scratch.out)
    # --no-register into the registered folder would leave the entry's sha256 stale: refused, nothing written
    sha = artifact_sha256(registered.out)
    with pytest.raises(DistillError, match="--no-register would overwrite .*weights of 'tiny'"):
        run(config(tmp_path, pool, models_yaml, register=False, seed=2))
    assert artifact_sha256(registered.out) == sha and f"sha256: {sha}" in models_yaml.read_text()


def _identity_onnx(path):
    r"""A complete, valid ONNX file (``signal`` → ``arousal``): the registry reads every model file it validates."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["signal"], ["arousal"])],
        "identity",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, None])],
        [helper.make_tensor_value_info("arousal", TensorProto.FLOAT, [1, None])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_update_registry_unit(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(MODELS_YAML)
    (tmp_path / "weights" / "x").mkdir(parents=True)
    _identity_onnx(tmp_path / "weights" / "x" / "model.onnx")
    digest = artifact_sha256(tmp_path / "weights" / "x")
    entry = {
        "name": "tiny",
        "kind": "audonnx",
        "role": "student",
        "source": {"path": "weights/x", "sha256": digest},
        "sampling_rate": 16000,
        "outputs": {"arousal": "arousal"},
        "description": "d",
    }
    update_registry(path, [entry])
    once = path.read_text()
    assert once == MODELS_YAML.replace(
        "    source:\n      path: weights/old-tiny\n", f"    source: {{path: weights/x, sha256: {digest}}}\n"
    )
    update_registry(path, [entry])
    assert path.read_text() == once  # idempotent
    update_registry(path, [{**entry, "name": "new-student"}])
    appended = path.read_text()
    assert appended.startswith(once) and appended.endswith("    description: d\n")
    with pytest.raises(ValueError, match="sha256"):
        update_registry(path, [{**entry, "source": {"path": "weights/x", "sha256": "0" * 64}}])
    assert path.read_text() == appended


def test_teacher_cache_hit(tmp_path, pool, models_yaml):
    teacher = FeatureTeacher()
    run(config(tmp_path, pool, models_yaml), teacher)
    first = teacher.calls
    assert first > 0
    # a re-run, and another student from the same teacher, never call the teacher
    run(config(tmp_path, pool, models_yaml, resume=False), teacher)
    run(config(tmp_path, pool, models_yaml, out="other", student="other", epochs=1), teacher)
    assert teacher.calls == first
    # a different crop recipe is a different cache entry
    run(config(tmp_path, pool, models_yaml, out="third", crop_seconds=0.4, epochs=1), teacher)
    assert teacher.calls > first


def test_same_seed_same_weights(tmp_path, pool, models_yaml):
    a = run(config(tmp_path, pool, models_yaml, out="a"))
    b = run(config(tmp_path, pool, models_yaml, out="b"))
    c = run(config(tmp_path, pool, models_yaml, out="c", seed=1))
    assert onnx_bytes(a) == onnx_bytes(b)
    assert onnx_bytes(a) != onnx_bytes(c)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()


def test_resume_gives_same_weights(tmp_path, pool, models_yaml):
    # 6 training files, batch 2: 3 steps per epoch, 9 in all
    reference = run(config(tmp_path, pool, models_yaml, out="ref", epochs=3, batch_size=2))
    cfg = config(tmp_path, pool, models_yaml, out="resumed", epochs=3, batch_size=2)
    with pytest.raises(Interrupted):
        run(dataclasses.replace(cfg, stop_after_steps=5))  # killed mid-epoch 2; last checkpoint at step 4
    resumed = run(cfg)
    assert resumed.provenance["resumed_from_step"] == 4
    assert onnx_bytes(resumed) == onnx_bytes(reference)
    assert resumed.history["train_loss"].tolist() == reference.history["train_loss"].tolist()
    # a finished run re-run with resume does not train again and gives the same model
    again = run(cfg)
    assert onnx_bytes(again) == onnx_bytes(reference)
    assert sha256_tree(again.out) == sha256_tree(resumed.out)


def test_resume_in_channels_last_layout(tmp_path, pool, models_yaml):
    # Wav2Small with a multiple of 8 channels trains channels-last; resume must not depend on the layout
    assert small_wav2small("").training_memory_format("fp32") == torch.channels_last
    cfg = config(tmp_path, pool, models_yaml, out="cl-ref", epochs=2, batch_size=2, precision="fp32")
    reference = distill(cfg, teacher=FeatureTeacher(), build_student=small_wav2small)
    cfg = config(tmp_path, pool, models_yaml, out="cl-resumed", epochs=2, batch_size=2, precision="fp32")
    with pytest.raises(Interrupted):
        distill(dataclasses.replace(cfg, stop_after_steps=3), teacher=FeatureTeacher(), build_student=small_wav2small)
    resumed = distill(cfg, teacher=FeatureTeacher(), build_student=small_wav2small)
    assert resumed.provenance["resumed_from_step"] == 2
    assert onnx_bytes(resumed) == onnx_bytes(reference)


def test_bf16_training_is_deterministic_and_resumable(tmp_path, pool, models_yaml):
    # mixed precision (bf16 autocast) keeps the guarantees of float32 training on the CPU
    def run_bf16(out, **kwargs):
        cfg = config(tmp_path, pool, models_yaml, out=out, epochs=2, batch_size=2, precision="bf16", **kwargs)
        return distill(cfg, teacher=FeatureTeacher(), build_student=small_wav2small)

    reference = run_bf16("bf16-ref")
    assert reference.provenance["hyperparameters"]["precision"] == "bf16"
    assert onnx_bytes(run_bf16("bf16-again")) == onnx_bytes(reference)
    with pytest.raises(Interrupted):
        run_bf16("bf16-resumed", stop_after_steps=3)
    resumed = run_bf16("bf16-resumed")
    assert resumed.provenance["resumed_from_step"] == 2
    assert onnx_bytes(resumed) == onnx_bytes(reference)
    fp32 = distill(
        config(tmp_path, pool, models_yaml, out="fp32", epochs=2, batch_size=2, precision="fp32"),
        teacher=FeatureTeacher(),
        build_student=small_wav2small,
    )
    assert onnx_bytes(fp32) != onnx_bytes(reference)


def test_precision_is_checked(tmp_path, pool, models_yaml):
    from benchmark.distill.cli import main
    from benchmark.distill.runtime import check_precision

    with pytest.raises(DistillError, match="--precision half: use one of fp32, bf16"):
        check_precision("half", "cpu")
    assert DistillConfig().precision == "fp32"  # bf16 is faster on AMX but ends lower (docs/distillation.md)
    with pytest.raises(SystemExit):
        main(["--precision", "half", "--data", str(pool), "--models", str(models_yaml)])


def test_bn_freeze_epochs_train_with_fixed_statistics(tmp_path, pool, models_yaml):
    # the last epoch trains with BatchNorm in inference mode on statistics recalibrated once
    steps = []

    def student(arch):
        model = TinyStudent()
        model.norm.register_forward_hook(
            lambda m, i, o: steps.append((m.training, m.running_mean.clone())) if torch.is_grad_enabled() else None
        )
        return model

    cfg = config(tmp_path, pool, models_yaml, out="frozen", epochs=3, batch_size=2, bn_freeze_epochs=1)
    frozen = distill(cfg, teacher=FeatureTeacher(), build_student=student)
    per_epoch = len(steps) // 3
    assert per_epoch >= 2 and all(training for training, _ in steps[: 2 * per_epoch])
    last = steps[2 * per_epoch :]
    assert not any(training for training, _ in last)
    assert all(torch.equal(mean, last[0][1]) for _, mean in last)
    assert not torch.equal(last[0][1], steps[2 * per_epoch - 1][1])  # recalibrated, not the running average
    assert frozen.provenance["hyperparameters"]["bn_freeze_epochs"] == 1
    # resumable inside the frozen phase; only the frozen epoch trains differently
    cfg = config(tmp_path, pool, models_yaml, out="frozen-resumed", epochs=3, batch_size=2, bn_freeze_epochs=1)
    with pytest.raises(Interrupted):
        run(dataclasses.replace(cfg, stop_after_steps=2 * per_epoch + 1))
    assert onnx_bytes(run(cfg)) == onnx_bytes(frozen)
    plain = run(config(tmp_path, pool, models_yaml, out="plain", epochs=3, batch_size=2))
    assert plain.history["train_loss"].tolist()[:2] == frozen.history["train_loss"].tolist()[:2]
    assert plain.history["train_loss"].iloc[2] != frozen.history["train_loss"].iloc[2]


def test_frozen_statistics_are_validated_as_trained():
    # in the frozen phase the validated copy takes the averaged weights but the statistics the student trains with
    from benchmark.distill.candidate import batchnorm_statistics, export_candidate

    class Shards:
        def batch(self, idx):
            return np.random.default_rng(int(idx[0])).normal(size=(len(idx), 1600)).astype(np.float32)

    torch.manual_seed(0)
    student = TinyStudent()
    student.norm.running_mean.fill_(0.5)
    ema = {k: v + 1 for k, v in student.state_dict().items() if v.is_floating_point()}
    frozen = export_candidate(student, ema, Shards(), [np.array([0, 1])], frozen_statistics=True)
    assert torch.equal(frozen.norm.running_mean, student.norm.running_mean)
    assert torch.equal(frozen.head.weight, ema["head.weight"])
    assert set(batchnorm_statistics(student)) == {"norm.running_mean", "norm.running_var"}
    calibrated = export_candidate(student, ema, Shards(), [np.array([0, 1])])
    assert not torch.equal(calibrated.norm.running_mean, student.norm.running_mean)
    assert not torch.equal(calibrated.norm.running_mean, ema["norm.running_mean"])


def test_incompatible_checkpoint_refused(tmp_path, pool, models_yaml):
    cfg = config(tmp_path, pool, models_yaml, batch_size=2)
    with pytest.raises(Interrupted):
        run(dataclasses.replace(cfg, stop_after_steps=3))
    with pytest.raises(CheckpointMismatch, match=r"lr: 0\.01 -> 0\.02.*--no-resume"):
        run(dataclasses.replace(cfg, lr=0.02))
    outcome = run(dataclasses.replace(cfg, lr=0.02, resume=False))
    assert outcome.provenance["resumed_from_step"] is None
    # the checkpoint of a finished run holds nothing to lose: other settings start a new run
    other = run(dataclasses.replace(cfg, lr=0.03))
    assert other.provenance["resumed_from_step"] is None and other.provenance["hyperparameters"]["lr"] == 0.03


def test_checkpoint_of_another_layout_refused(tmp_path, pool, models_yaml):
    # Same student name and parameter shapes, another layout (a student's layout changed in the
    # code): the weights would load without complaint, so the fingerprint must tell them apart.
    cfg = config(tmp_path, pool, models_yaml, batch_size=2)
    with pytest.raises(Interrupted):
        run(dataclasses.replace(cfg, stop_after_steps=3))
    with pytest.raises(CheckpointMismatch, match=r"architecture: \"[0-9a-f]{16}\" -> \"[0-9a-f]{16}\".*--no-resume"):
        distill(cfg, teacher=FeatureTeacher(), build_student=lambda arch: TinyStudent(stride=16))
    assert run(cfg).provenance["resumed_from_step"] == 2


def test_nan_teacher_names_the_file(tmp_path, pool, models_yaml):
    audiofile.write(str(pool / "silent.wav"), np.zeros(SR // 2, np.float32), SR)
    with pytest.raises(TeacherError, match=r"NaN \(arousal, dominance, valence\) for file .*silent\.wav"):
        run(config(tmp_path, pool, models_yaml, val_fraction=0), FeatureTeacher(nan_when_silent=True))


def test_unreadable_file_skipped_and_reported(tmp_path, pool, models_yaml):
    (pool / "broken.wav").write_bytes(b"RIFF not really a wav file")
    outcome = run(config(tmp_path, pool, models_yaml, val_fraction=0))
    data = outcome.provenance["data"]
    assert data["skipped_count"] == 1
    assert data["skipped"][0]["file"] == "broken.wav" and "cannot decode" in data["skipped"][0]["reason"]
    assert data["train_files"] == 8


def test_gold_split_test1_refused(tmp_path, pool, models_yaml):
    with pytest.raises(DistillError, match="test set"):
        run(config(tmp_path, pool, models_yaml, gold="msppodcast:test-1"))


def test_gold_split_the_teacher_was_fitted_on_refused():
    from benchmark.distill.teacher import check_gold

    pinned = FeatureTeacher()
    pinned.meta = {"data": {"dataset": "demo-msppodcast", "split": "train"}}  # a pinned teacher's model.json
    with pytest.raises(DistillError, match="'feature-teacher' was fitted on this split"):
        check_gold("msppodcast:train:demo", pinned, {"path": "model.npz", "sha256": "0" * 64})
    with pytest.raises(DistillError, match="fitted on this split"):
        check_gold("iemocap:test:demo", FeatureTeacher(), {"dataset": "iemocap", "split": "test"})
    check_gold("msppodcast:test-2:demo", pinned, {"path": "model.npz", "sha256": "0" * 64})


def test_crops_are_deterministic_and_match_storage(pool):
    signal = audio.read_audio(str(pool / "f7.wav"))
    recipe = crops.Recipe(crop_seconds=0.5, variants=3, seed=0)
    digest = sha256_file(pool / "f7.wav")
    others = [audio.read_audio(str(pool / f"f{i}.wav")) for i in range(3)]
    a, info = crops.make_crop(signal, digest, 2, recipe, babble=others)
    b, _ = crops.make_crop(signal, digest, 2, recipe, babble=others)
    assert np.array_equal(a, b) and len(a) == SR // 2
    assert np.array_equal(a, a.astype(np.float16).astype(np.float32))  # what is stored is what the teacher heard
    clean, info0 = crops.make_crop(signal, digest, 0, recipe)
    assert info0["transforms"] == []


def test_voice_augmentation_switched_off_leaves_the_recipe_as_it_was(pool):
    signal = audio.read_audio(str(pool / "f7.wav"))
    digest = sha256_file(pool / "f7.wav")
    others = [audio.read_audio(str(pool / f"f{i}.wav")) for i in range(3)]
    recipe = crops.Recipe(crop_seconds=0.5, variants=3, seed=0)
    # off, the voice fields are no part of the cache key or the provenance: caches and records stay valid
    assert recipe.record() == {
        **dataclasses.asdict(recipe),
        "augmentation": {
            k: v
            for k, v in dataclasses.asdict(recipe.augmentation).items()
            if k.split("_")[0] not in ("pitch", "formant", "speed", "tilt", "channel")
        },
    }
    voiced = dataclasses.replace(recipe, augmentation=dataclasses.replace(recipe.augmentation, pitch_prob=1.0))
    assert voiced.record()["augmentation"]["pitch_prob"] == 1.0
    for variant in (1, 2):
        plain, info = crops.make_crop(signal, digest, variant, recipe, babble=others)
        shifted, voiced_info = crops.make_crop(signal, digest, variant, voiced, babble=others)
        # the voice transforms draw from their own generator: offset and the other transforms are the same
        assert voiced_info["offset"] == info["offset"]
        assert voiced_info["transforms"][0].startswith("pitch ") and voiced_info["transforms"][1:] == info["transforms"]
        assert len(shifted) == len(plain) and not np.array_equal(shifted, plain)
    clean, info0 = crops.make_crop(signal, digest, 0, voiced)
    assert info0["transforms"] == [] and np.array_equal(clean, crops.make_crop(signal, digest, 0, recipe)[0])
    config = DistillConfig(aug_pitch=0.5, aug_channel=0.25, aug_formant=0.0, augment=False)
    aug = config.recipe().augmentation
    assert (aug.pitch_prob, aug.channel_prob, aug.formant_prob, aug.noise_prob) == (0.5, 0.25, 0.0, 0.0)
    # since 0.13.0 the default recipe has pitch and formant augmentation; with both off it is the recipe before
    assert DistillConfig().recipe().augmentation.voice
    assert not DistillConfig(aug_pitch=0.0, aug_formant=0.0).recipe().augmentation.voice
    with pytest.raises(DistillError, match="--aug-speed=1.5 \\(must be a probability"):
        DistillConfig(aug_speed=1.5)


def test_teacher_labels_the_voice_augmented_crop(tmp_path, pool):
    files = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav")))
    augmentation = dataclasses.replace(
        crops.Augmentation.off(), pitch_prob=1.0, formant_prob=1.0, speed_prob=1.0, tilt_prob=1.0, channel_prob=1.0
    )
    recipe = crops.Recipe(crop_seconds=1.0, bucket_seconds=0.25, variants=2, augmentation=augmentation)
    teacher = FeatureTeacher()
    shards = annotate.annotate_pool(teacher, files, recipe, progress=False)
    plain = annotate.annotate_pool(
        teacher, files, dataclasses.replace(recipe, augmentation=crops.Augmentation.off()), progress=False
    )
    augmented = [r for r in range(len(shards)) if shards.variant[r] == 1]
    assert len(augmented) == len(files.files)
    moved = 0
    for r in augmented:
        crop = shards.batch([r])[0]
        j = int(shards.file_index[r])
        path = shards.files[j]
        expected, info = crops.make_crop(audio.read_audio(path), files.hashes[files.files.index(path)], 1, recipe)
        assert [t.split(" ")[0] for t in info["transforms"]] == ["speed", "pitch", "formant", "tilt", "channel"]
        # the student trains on the augmented crop, and its target is the teacher's output for that very crop
        assert np.array_equal(crop, expected)
        assert np.allclose(shards.targets[r], teacher.predict(crop), atol=1e-6)
        same = next(q for q in range(len(plain)) if plain.file_index[q] == j and plain.variant[q] == 1)
        moved += not np.allclose(shards.targets[r], plain.targets[same], atol=1e-3)
    assert moved == len(augmented)  # the target follows the audio: unshifted crops have other targets


def test_wide_voice_pool_and_voice_augmentation_in_a_tiny_distillation(tmp_path, pool, models_yaml):
    import importlib.util

    from benchmark.data import demo

    path = Path(__file__).resolve().parents[1] / "experiments" / "wide_pool.py"
    spec = importlib.util.spec_from_file_location("wide_pool", path)
    widepool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(widepool)

    speakers = [widepool.wide_speaker(f"w{i}", np.random.default_rng([0, i])) for i in range(200)]
    for sex in ("female", "male"):
        f0 = np.array([s.f0 for s in speakers if s.sex == sex])
        scale = np.array([s.formant_scale for s in speakers if s.sex == sex])
        # far wider than the demo's speakers, and overlapping across the sexes
        assert f0.min() < 100 and f0.max() > 250 and scale.min() < 0.9 and scale.max() > 1.25
    files, info = widepool.wide_pool(8, seed=0)
    assert len(files) == 8 and info["speakers"] == 2 and sum(info["speakers_per_sex"].values()) == 2
    again, _ = widepool.wide_pool(8, seed=0)
    assert again == files and all(audiofile.read(f)[0].size for f in files)
    with pytest.raises(ValueError, match="at least 1 utterance"):
        widepool.wide_pool(0)
    digest = demo.generator_digest()
    listing = widepool.write_list(str(pool), 8, 0, tmp_path / "wide.txt")
    outcome = run(config(tmp_path, pool, models_yaml, data=str(listing), aug_pitch=0.5, aug_tilt=0.5))
    record = json.loads((outcome.out / "provenance.json").read_text())
    assert record["data"]["train_files"] + record["data"]["heldout_files"] == 16
    assert record["data"]["source"] == f"list {listing}"
    assert (
        record["recipe"]["augmentation"]["pitch_prob"] == 0.5 and record["recipe"]["augmentation"]["tilt_prob"] == 0.5
    )
    assert demo.generator_digest() == digest  # the demo databases' generator is untouched


def test_ccc_loss_matches_definition():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(64, 3))
    p = t + rng.normal(scale=0.5, size=(64, 3))
    from benchmark.metrics import ccc_finite as ccc

    expected = 1 - np.mean([ccc(t[:, i], p[:, i]) for i in range(3)])
    got = float(ccc_loss(torch.tensor(p), torch.tensor(t), [0, 1, 2]))
    assert got == pytest.approx(expected, abs=1e-6)
    # weights: a weighted mean of the per-dimension CCCs, indexed like the columns
    weighted = 1 - np.average([ccc(t[:, i], p[:, i]) for i in (0, 2)], weights=[1.0, 3.0])
    assert float(ccc_loss(torch.tensor(p), torch.tensor(t), [0, 2], weights=(1.0, 9.0, 3.0))) == pytest.approx(
        weighted, abs=1e-6
    )
    # equal weights are the plain mean, bit for bit (the default run's model stays the same)
    p32, t32 = torch.tensor(p, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)
    assert torch.equal(ccc_loss(p32, t32, [0, 1, 2], 0.5, (2.0, 2.0, 2.0)), ccc_loss(p32, t32, [0, 1, 2], 0.5))


def test_loss_weights_steer_training_and_are_recorded(tmp_path, pool, models_yaml, capsys):
    from benchmark.distill.cli import config_from_argv, main

    plain = run(config(tmp_path, pool, models_yaml, out="plain", register=False))
    valence = run(config(tmp_path, pool, models_yaml, out="valence", register=False, loss_weights=(0.0, 0.0, 1.0)))
    assert onnx_bytes(plain) != onnx_bytes(valence)
    record = json.loads((valence.out / "provenance.json").read_text())
    assert record["hyperparameters"]["loss_weights"] == [0.0, 0.0, 1.0]
    assert json.loads((plain.out / "provenance.json").read_text())["hyperparameters"]["loss_weights"] == [1, 1, 1]
    # a checkpoint of other weights is another run: not resumed into this one
    assert valence.history["train_loss"].tolist() != plain.history["train_loss"].tolist()

    base = ["--student", "tiny", "--models", str(models_yaml)]
    assert config_from_argv(base + ["--loss-weights", "1", "1", "3"]).loss_weights == (1.0, 1.0, 3.0)
    text = models_yaml.read_text()
    entry = "    description: tiny test student\n"
    models_yaml.write_text(
        text.replace(entry, entry + "    distilled: {teacher: feature-teacher, recipe: {loss_weights: [1, 2, 3]}}\n")
    )
    assert config_from_argv(base).loss_weights == (1.0, 2.0, 3.0)
    assert config_from_argv(base + ["--loss-weights", "1", "1", "1"]).loss_weights == (1.0, 1.0, 1.0)
    models_yaml.write_text(
        text.replace(entry, entry + "    distilled: {teacher: feature-teacher, recipe: {loss_weights: 3}}\n")
    )
    with pytest.raises(DistillError, match="sets loss_weights: 3, which is not a list of numbers"):
        config_from_argv(base)
    models_yaml.write_text(text)
    for wrong in (["1", "-1", "1"], ["0", "0", "0"]):
        out = tmp_path / "never"
        assert main(base + ["--out", str(out), "--loss-weights", *wrong]) == 2
        assert "--loss-weights=" in capsys.readouterr().err and not out.exists()
    with pytest.raises(DistillError, match="must be three weights"):
        DistillConfig(loss_weights=(1.0, 1.0))


def test_cli_with_real_student(tmp_path, pool, models_yaml, capsys):
    from benchmark.distill.cli import main

    argv = [
        "--student",
        "wav2small-17k",
        "--teacher",
        "random-gaussian",
        "--data",
        str(pool),
        "--out",
        str(tmp_path / "weights" / "w2s2"),
        "--models",
        str(models_yaml),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--crop-seconds",
        "0.5",
        "--variants",
        "1",
        "--threads",
        "1",
        "--no-progress",
        "--no-register",
        "--gold",
        "none",
    ]
    assert main(argv) == 0
    assert (tmp_path / "weights" / "w2s2-int8" / "model.onnx").exists()
    assert main(argv[:-2] + ["--gold", "msppodcast:test-1"]) == 2


def test_cli_help_shows_the_defaults_that_hold():
    from benchmark.distill.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "passes over the training files (default: 7)" in text
    # switches have no default to show: "--no-register ... (default: True)" read as off by default
    assert "(default: True)" not in text and "(default: False)" not in text and "(default: None)" not in text


def test_batchnorm_calibration_uses_current_weights():
    from benchmark.distill.candidate import calibrate_batchnorm

    data = np.random.default_rng(0).normal(size=(8, 1600)).astype(np.float32)

    class Batches:
        def batch(self, indices):
            return data[indices]

    model = TinyStudent()
    model.norm.running_mean.fill_(100.0)
    rng_before = torch.get_rng_state()
    calibrate_batchnorm(model, Batches(), [np.arange(4), np.arange(4, 8)])
    with torch.no_grad():
        expected = model.conv(torch.from_numpy(data)[:, None]).mean(dim=(0, 2))
    assert torch.allclose(model.norm.running_mean, expected, atol=1e-5)
    assert model.norm.momentum == 0.1 and model.training
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_epoch_batches_group_crops_of_one_length(tmp_path, pool):
    from benchmark.distill.config import Hyper
    from benchmark.distill.train import epoch_batches

    files = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav")))
    recipe = crops.Recipe(crop_seconds=1.0, bucket_seconds=0.25, variants=2)
    shards = annotate.annotate_pool(FeatureTeacher(), files, recipe, progress=False)
    assert set(shards.length.tolist()) == {4000 * k for k in (1, 2, 3, 4)}  # 0.4..1.1 s files, up to 1 s
    usable = np.ones(len(shards), dtype=bool)
    hyper = Hyper(batch_size=2)
    for epoch in (0, 1):
        batches = epoch_batches(shards, usable, epoch, hyper)
        assert all(len(set(shards.length[b].tolist())) == 1 for b in batches)
        used = np.concatenate(batches)
        assert len(set(used.tolist())) == len(used)  # no crop twice in an epoch
        assert set(shards.file_index[used].tolist()) <= set(range(8))
        assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(shards, usable, epoch, hyper)))
    # every file cycles through its variants
    first = {int(shards.file_index[r]): int(shards.variant[r]) for r in shards.records(0)}
    second = {int(shards.file_index[r]): int(shards.variant[r]) for r in shards.records(1)}
    assert all(first[f] != second[f] for f in first)
    x = shards.batch(epoch_batches(shards, usable, 0, hyper)[0])
    assert x.dtype == np.float32 and x.ndim == 2


def test_keep_freed_memory_takes_effect_on_glibc():
    import platform

    from benchmark.distill.runtime import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert keep_freed_memory() is True


def test_settings_that_leave_nothing_to_train_are_refused(tmp_path, models_yaml, capsys):
    r"""``--epochs 0`` used to annotate the whole pool and then crash loading an empty checkpoint."""
    from benchmark.distill.cli import main

    with pytest.raises(DistillError, match=r"--epochs=0 \(must be at least 1\)"):
        DistillConfig(epochs=0)
    with pytest.raises(DistillError, match=r"--batch-size=0 .*--variants=0 .*--lr=0.0 \(must be above 0\)"):
        DistillConfig(batch_size=0, variants=0, lr=0.0)
    with pytest.raises(DistillError, match="--crop-seconds=-1"):
        DistillConfig(crop_seconds=-1.0)
    # the same check guards a recipe in models.yaml and the command line, before any work
    text = models_yaml.read_text().replace(
        "    description: tiny test student\n",
        "    description: tiny test student\n    distilled: {teacher: feature-teacher, recipe: {epochs: 0}}\n",
    )
    models_yaml.write_text(text)
    out = tmp_path / "never"
    assert main(["--student", "tiny", "--models", str(models_yaml), "--out", str(out)]) == 2
    assert "--epochs=0" in capsys.readouterr().err and not out.exists()


def test_student_recipe_in_registry_sets_defaults(tmp_path, pool, models_yaml):
    r"""``distilled.recipe`` of the student's entry: its defaults; options on the command line win."""
    from benchmark.distill.cli import config_from_argv

    text = models_yaml.read_text().replace(
        "    description: tiny test student\n",
        "    description: tiny test student\n    distilled: {teacher: feature-teacher, recipe: {epochs: 3, lr: 0.02}}\n",
    )
    models_yaml.write_text(text)
    base = ["--student", "tiny", "--models", str(models_yaml)]
    cfg = config_from_argv(base)
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (3, 0.02, DistillConfig().batch_size)
    cfg = config_from_argv(base + ["--epochs", "5"])
    assert (cfg.epochs, cfg.lr) == (5, 0.02)
    assert config_from_argv(["--student", "wav2small", "--models", str(models_yaml)]).epochs == DistillConfig().epochs
    # registering keeps the recipe with the entry
    outcome = run(config(tmp_path, pool, models_yaml, epochs=cfg.epochs))
    from benchmark.registry import Registry

    registry = Registry.from_yaml_text(models_yaml.read_text(), root=models_yaml.parent)
    assert registry["tiny"].distilled["recipe"] == {"epochs": 3, "lr": 0.02}
    assert registry["tiny"].source["sha256"] == artifact_sha256(outcome.out)
    models_yaml.write_text(text.replace("recipe: {epochs: 3, lr: 0.02}", "recipe: {epochs: 3, learning_rate: 1}"))
    with pytest.raises(DistillError, match="unknown setting.*learning_rate.*allowed: epochs"):
        config_from_argv(base)


# own_demo: a cold teacher cache; the seeds test scores the same stand-in teacher on this split
def test_targets_score_the_exported_folders(tmp_path, pool, models_yaml, own_demo):
    from benchmark.data.datasets import load_split
    from benchmark.distill import targets

    outcome = run(config(tmp_path, pool, models_yaml))
    teacher = FeatureTeacher()
    report = targets.score(outcome.out, teacher, resamples=200)
    files = len(load_split("msppodcast", "test-1", data="demo").files)
    assert report["files"] == files and report["skipped"] == 0 and report["split"]["split"] == "test-1"
    for label, folder in (("fp32", outcome.out), ("int8", outcome.out_int8)):
        model = report["models"][label]
        assert model["sha256"] == artifact_sha256(folder)
        for d in ("arousal", "dominance", "valence", "mean"):
            low, high = model["ccc_vs_teacher_ci95"][d]
            assert low <= model["ccc_vs_teacher"][d] <= high
    fp32, int8 = (report["models"][k]["ccc_vs_teacher"] for k in ("fp32", "int8"))
    assert report["int8_loss"] == pytest.approx({d: fp32[d] - int8[d] for d in fp32})
    for d, (low, high) in report["int8_loss_ci95"].items():
        assert low <= report["int8_loss"][d] <= high
    # the teacher ran once on the split; a second scoring reads its cached outputs
    calls = teacher.calls
    assert calls > 0 and targets.score(outcome.out, teacher, resamples=10)["files"] == files
    assert teacher.calls == calls

    # the wall time of a run is kept for a re-score of the same model only
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({**report, "timing": {"wall_seconds": 600.0}}))
    assert targets.earlier_timing(path, report["models"]["fp32"]["sha256"]) == {"wall_seconds": 600.0}
    assert targets.earlier_timing(path, "0" * 64) is None
    assert targets.earlier_timing(tmp_path / "missing.json", report["models"]["fp32"]["sha256"]) is None
    checks = targets.checks({**report, "timing": {"wall_seconds": 900.5}})
    assert checks["default distill <= 15 min wall"] is False
    assert checks["CCC(student, teacher) arousal >= 0.90"] is (fp32["arousal"] >= 0.90)
    assert "default distill <= 15 min wall" not in targets.checks(report)


def test_voice_shift_and_per_sex_agreement_on_the_demo_split(use_demo):
    from benchmark.analyses.perturbations import voice
    from benchmark.data.datasets import load_split
    from benchmark.distill import targets

    evalset = load_split("msppodcast", "test-1", data="demo")
    teacher = FeatureTeacher()
    teacher_pred, audio, _, _ = annotate.annotate_files(teacher, [str(f) for f in evalset.files], label="test-sex")
    signals = list(audio)

    def follower(signal, sr):  # a student that hears what the teacher hears
        return teacher.predict(signal)

    def deaf(signal, sr):  # a student that ignores the voice: only the level (dimension 0) follows
        out = teacher.predict(signal)
        return np.array([out[0], 0.5 + 1e-3 * out[0], 0.5 + 1e-3 * out[0]])

    shifts = ("pitch+4", "formant-10%")
    report = targets.voice_shift_agreement(follower, teacher, signals[:12], shifts)
    assert set(report["conditions"]) == set(shifts) and report["files"] == 12
    assert report["pooled"]["arousal"] == pytest.approx(1.0) and report["worst"]["mean"] == pytest.approx(1.0)
    assert report["shifts"] == {"pitch+4": ["pitch", 4.0], "formant-10%": ["formant", 0.9]}
    poor = targets.voice_shift_agreement(deaf, teacher, signals[:12], shifts)
    assert poor["pooled"]["arousal"] == pytest.approx(1.0) and poor["pooled"]["dominance"] < 0.5
    # the teacher heard the shifted audio: its outputs differ from those on the clean files
    shifted = np.stack([teacher.predict(voice.voice_shift(s, "pitch+4")) for s in signals[:12]])
    assert not np.allclose(shifted, teacher_pred.to_numpy()[:12], atol=1e-3)
    checked = targets.checks(
        {
            "models": {"fp32": {"ccc_vs_teacher": {"arousal": 0.95, "mean": 0.9}}},
            "int8_loss": {"arousal": 0.0},
            "voice_shift": poor,
        }
    )
    assert checked["CCC(student, teacher) arousal under voice shifts >= 0.85"] is True
    checked = targets.checks(
        {
            "models": {"fp32": {"ccc_vs_teacher": {"arousal": 0.95, "mean": 0.9}}},
            "int8_loss": {"arousal": 0.0},
            "voice_shift": {"pooled": {"arousal": 0.849}},
        }
    )
    assert checked["CCC(student, teacher) arousal under voice shifts >= 0.85"] is False

    same = targets.sex_agreement(follower, teacher, evalset, label="test-sex")
    sexes = evalset.sex.astype(str)
    assert same["female"]["files"] == int((sexes == "female").sum()) and same["male"]["files"] == int(
        (sexes == "male").sum()
    )
    assert same["gap"]["arousal"] == pytest.approx(0.0) and same["female"]["mean"] == pytest.approx(1.0)
    # a student that follows the teacher less for men: a positive gap, in the male group only
    values = teacher_pred.to_numpy().copy()
    male = (evalset.sex.astype(str).reindex(teacher_pred.index.astype(str)) == "male").to_numpy()
    values[male] += np.random.default_rng(0).normal(scale=0.3, size=(int(male.sum()), 3))
    biased = targets.sex_agreement(follower, teacher, evalset, values, label="test-sex")
    assert biased["female"]["arousal"] == pytest.approx(1.0) and biased["gap"]["arousal"] > 0.1
    with pytest.raises(ValueError, match="no sex labels"):
        targets.sex_agreement(follower, teacher, dataclasses.replace(evalset, sex=None), label="test-sex")


def test_seed_spread_script_reads_finished_scratch_runs(tmp_path, pool, models_yaml, use_demo):
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "distill_seeds.py"
    spec = importlib.util.spec_from_file_location("distill_seeds", path)
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)

    outcome = run(config(tmp_path, pool, models_yaml, out="seed3", seed=3, register=False))
    # a finished run of that seed is reused, nothing else is
    assert seeds.finished(outcome.out, 3)
    assert not seeds.finished(outcome.out, 0) and not seeds.finished(tmp_path / "weights" / "seed4", 4)
    row = seeds.figures("tiny", outcome.out, FeatureTeacher())
    exported = outcome.provenance["validation"]["onnx"]["fp32"]
    assert row["held-out mean"] == exported["teacher_mean"] and row["held-out valence"] == exported["teacher_valence"]
    report = json.loads((tmp_path / "weights" / "seed3-records" / "provenance.json").read_text())
    assert row["best epoch"] == report["training"]["best_epoch"] and row["sha256"] == artifact_sha256(outcome.out)
    assert set(seeds.COLUMNS) - set(row) == {"voice-shift arousal", "wall minutes"}  # not asked for; main() times
    assert row["targets"]["CCC(student, teacher) arousal >= 0.90"] == (row["test-1 arousal"] >= 0.90)
    assert row["test-1 mean"] == pytest.approx(
        np.mean([row[f"test-1 {d}"] for d in ("arousal", "dominance", "valence")])
    )
    stats = seeds.summary([row, {**row, "test-1 mean": row["test-1 mean"] + 0.1}])
    assert stats["test-1 mean"]["max"] - stats["test-1 mean"]["min"] == pytest.approx(0.1)
    assert stats["test-1 mean"]["worst"] == row["test-1 mean"]
    assert stats["test-1 mean"]["median"] == pytest.approx(row["test-1 mean"] + 0.05)
    report = {
        "student": "tiny",
        "teacher": "feature-teacher",
        "distill_args": [],
        "cpu": "x",
        "date": "d",
        "seeds": [{"seed": 3, **row}],
        "summary": seeds.summary([row]),
        "worst_seed_targets": seeds.worst_seed_checks([row]),
    }
    page = seeds.markdown(report)
    assert f"| 3 | {row['held-out arousal']:.3f} |" in page and f"`{row['sha256'][:12]}`" in page
    # a resumed measurement reuses the figures (and wall time) of the same model, scored as fully as asked
    (tmp_path / "seeds.json").write_text(json.dumps({"seeds": [{"seed": 3, **row, "wall minutes": 9.5}]}))
    earlier = seeds.earlier_rows(tmp_path / "seeds.json")
    assert seeds.reusable(earlier[3], outcome.out, voice_shifts=False)["wall minutes"] == 9.5
    assert seeds.reusable(earlier[3], outcome.out, voice_shifts=True) is None  # voice shifts never measured
    assert seeds.reusable({**earlier[3], "sha256": "0" * 64}, outcome.out, voice_shifts=False) is None
    assert seeds.earlier_rows(tmp_path / "none.json") == {}
    (outcome.out.with_name("seed3-int8") / "model.onnx").unlink()  # an export cut short
    assert not seeds.finished(outcome.out, 3)


def test_head_refit_recovers_a_linear_map_of_the_head_inputs(pool):
    import pandas as pd

    from benchmark.distill import refit
    from benchmark.distill.validation import ValidationSet

    files = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav")))
    signals = [audio.read_audio(f) for f in files.files]
    # each file also in halves and in thirds: more samples than a tiny pool has files
    signals += [part for x in signals for k in (2, 3) for part in np.array_split(x, k)]
    torch.manual_seed(0)
    student = small_wav2small("wav2small").eval()
    features = refit.head_inputs(student, signals)
    assert features.shape == (len(signals), student.head.in_features)
    # targets that a head can reach exactly: the refit must find that head
    rng = np.random.default_rng(1)
    weight, bias = rng.normal(size=(3, features.shape[1])) / 30, np.array([0.5, 0.4, 0.6])
    names = ["arousal", "dominance", "valence"]
    reachable = pd.DataFrame(features @ weight.T + bias, columns=names, index=[f"f{i}" for i in range(len(signals))])
    training = ValidationSet("train", signals, reachable.iloc[:, [0, 2]])
    kept_row = student.head.weight[1].detach().clone()
    report = refit.refit_head(student, training, [0, 2])
    assert report["fitted_on"] == f"{len(signals)} whole training files" and report["alpha"] in refit.ALPHAS
    assert torch.equal(student.head.weight[1], kept_row)  # a dimension the teacher does not predict
    head = {k: v.double().numpy() for k, v in student.head.state_dict().items()}
    prediction = refit.head_inputs(student, signals) @ head["weight"].T + head["bias"]
    for d in (0, 2):
        target = reachable.iloc[:, d].to_numpy()
        assert np.corrcoef(prediction[:, d], target)[0, 1] > 0.999
        assert abs(prediction[:, d].std() - target.std()) < 0.01 * target.std()
    assert report["chosen_on"] == "5-fold cross-validation over training files"
    # whole held-out files choose the penalty when there are any; the targets stay reachable
    held = ValidationSet("teacher", signals[:4], reachable.iloc[:4])
    report = refit.refit_head(student, training, [0, 2], held)
    assert report["chosen_on"] == "4 held-out files" and set(report["mean_ccc_by_alpha"]) == {
        str(a) for a in refit.ALPHAS
    }
    assert max(report["mean_ccc_by_alpha"].values()) > 0.99
    with pytest.raises(ValueError, match="no linear output layer 'head'"):
        refit.refit_head(nn.Sequential(nn.Conv1d(1, 3, 1)), training, [0])


def test_head_refit_changes_only_the_head_and_is_recorded(tmp_path, pool, models_yaml):
    refitted = run(config(tmp_path, pool, models_yaml, out="refit", register=False))
    plain = run(config(tmp_path, pool, models_yaml, out="plain", register=False, head_refit=False))
    # a post-training step: the same training, epoch by epoch
    timeless = ["train_seconds"]
    assert refitted.history.drop(columns=timeless).equals(plain.history.drop(columns=timeless))
    record = json.loads((refitted.out / "provenance.json").read_text())["head_refit"]
    assert json.loads((plain.out / "provenance.json").read_text())["head_refit"] == {
        "applied": False,
        "reason": "switched off (--no-head-refit)",
    }
    teacher_mean = record["validation"]["teacher_mean"]
    assert teacher_mean["before"] == pytest.approx(
        plain.history.loc[plain.history["epoch"] == plain.provenance["training"]["best_epoch"], "teacher_mean"].item(),
        abs=1e-4,
    )
    onnx_mean = refitted.provenance["validation"]["onnx"]["fp32"]["teacher_mean"]
    # kept exactly where it does not lower the held-out CCC: the export is then the refitted model, else the trained one
    kept = teacher_mean["after"] >= teacher_mean["before"]
    assert record["applied"] is kept and (onnx_bytes(refitted) != onnx_bytes(plain)) is kept
    assert onnx_mean == pytest.approx(teacher_mean["after" if kept else "before"], abs=2e-3)
    assert kept or record["reason"] == "lowered teacher_mean on the held-out files"
    assert record["fitted_on"] == "6 whole training files" and record["chosen_on"] == "2 held-out files"
    assert set(record["mean_ccc_by_alpha"]) == {"0.0001", "0.001", "0.01", "0.1"}


def test_offscale_whole_training_files_are_left_out_and_named(tmp_path, pool, models_yaml):
    class OffScaleOnOneFile(FeatureTeacher):
        # off the scale for signals of one whole training file's length (every crop is shorter)
        def __init__(self, length):
            super().__init__()
            self.name, self.artifact_hash, self.length = "offscale-teacher", sha256_text("offscale-teacher-1"), length

        def predict(self, signal):
            return np.full(3, 5.0) if len(signal) == self.length else super().predict(signal)

    files = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav")))
    train, _ = files.split(0.25)
    longest = max(train.files, key=lambda f: len(audio.read_audio(f)))  # over 0.5 s: cropped in training
    outcome = run(
        config(tmp_path, pool, models_yaml, register=False),
        teacher=OffScaleOnOneFile(len(audio.read_audio(longest))),
    )
    record = json.loads((outcome.out / "provenance.json").read_text())
    offscale = record["data"]["offscale_targets"]
    assert offscale["train_files_left_out"] == 1 and offscale["crops_left_out"] == 0
    assert f"{Path(longest).name} (training, whole file)" in offscale["examples"]
    assert record["head_refit"]["fitted_on"] == "5 whole training files"


def test_head_refit_reads_at_most_refit_max_files(tmp_path, pool, models_yaml, monkeypatch):
    from benchmark.distill import teacher

    monkeypatch.setattr(teacher, "REFIT_MAX_FILES", 3)
    outcome = run(config(tmp_path, pool, models_yaml, out="capped", register=False))
    record = json.loads((outcome.out / "provenance.json").read_text())["head_refit"]
    assert record["fitted_on"] == "3 whole training files"
    assert outcome.provenance["data"]["train_files"] == 6  # training itself still uses every file


def refit_folder(tmp_path, pool) -> Path:
    r"""Five new files, a copy of a held-out and of a training pool file, and a broken file."""
    folder = write_tones(
        tmp_path / "refit",
        "r",
        5,
        1,
        seconds=lambda i: 0.5 + 0.15 * i,
        hz=lambda i: 120 + 70 * i,
        level=lambda i: 0.03 * (i + 1),
        noise=lambda i: 0.01,
    )
    train, held = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav"))).split(0.25)
    (folder / "copy-of-held.wav").write_bytes(Path(held.files[0]).read_bytes())
    (folder / "copy-of-train.wav").write_bytes(Path(train.files[0]).read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav file")
    return folder


def test_head_refit_is_fitted_on_the_refit_data_too(tmp_path, pool, models_yaml):
    folder = refit_folder(tmp_path, pool)
    plain = run(config(tmp_path, pool, models_yaml, out="plain", register=False))
    teacher = FeatureTeacher()
    extra = run(config(tmp_path, pool, models_yaml, out="extra", register=False, refit_data=str(folder)), teacher)
    timeless = ["train_seconds"]
    assert extra.history.drop(columns=timeless).equals(plain.history.drop(columns=timeless))  # training unchanged
    assert plain.provenance["data"]["refit_files"] == {"source": "none"}  # 'auto' with other data than the demo
    record = json.loads((extra.out / "provenance.json").read_text())
    # the copies of pool files are dropped: a held-out file must never be fitted on
    assert record["head_refit"]["fitted_on"] == "6 whole training files and 5 refit files"
    refit_files = record["data"]["refit_files"]
    assert refit_files["source"] == f"folder {folder}" and refit_files["listed_files"] == 8
    assert refit_files["files"] == 5 and refit_files["in_pool_dropped"] == 2
    assert refit_files["skipped_count"] == 1 and refit_files["skipped"][0]["file"] == "broken.wav"
    hashes = sorted(sha256_file(folder / f"r{i}.wav") for i in range(5))
    assert refit_files["files_sha256"] == sha256_text("\n".join(hashes))
    plain_refit = plain.provenance["head_refit"]
    assert record["head_refit"]["mean_ccc_by_alpha"] != plain_refit["mean_ccc_by_alpha"]  # fitted on more files
    # the refit files' teacher outputs are cached by content like the training files'
    calls = teacher.calls
    again = run(config(tmp_path, pool, models_yaml, out="extra", register=False, refit_data=str(folder)), teacher)
    assert teacher.calls == calls and onnx_bytes(again) == onnx_bytes(extra)


def test_refit_data_beyond_refit_max_files_is_left_out(tmp_path, pool, models_yaml, monkeypatch):
    from benchmark.distill import teacher

    monkeypatch.setattr(teacher, "REFIT_MAX_FILES", 8)
    folder = refit_folder(tmp_path, pool)
    outcome = run(config(tmp_path, pool, models_yaml, register=False, refit_data=str(folder)))
    refit_files = outcome.provenance["data"]["refit_files"]
    # the broken file takes one of the two places left beside the 6 training files
    assert refit_files["over_limit_dropped"] == 4 and refit_files["files"] + refit_files["skipped_count"] == 2
    assert outcome.provenance["head_refit"]["fitted_on"].endswith(f"and {refit_files['files']} refit files")


def test_refit_data_without_audio_is_refused_before_the_teacher_runs(tmp_path, pool, models_yaml):
    teacher = FeatureTeacher()
    with pytest.raises(DataError, match="--refit-data"):
        run(
            config(tmp_path, pool, models_yaml, register=False, refit_data=str(tmp_path / "nothing" / "*.wav")), teacher
        )
    assert teacher.calls == 0


def test_head_refit_is_undone_when_the_heldout_ccc_drops(pool):
    import pandas as pd

    from benchmark.distill import finish

    files = audio.scan_pool(sorted(str(p) for p in pool.glob("*.wav")))
    signals = [audio.read_audio(f) for f in files.files]
    names = ["arousal", "dominance", "valence"]
    held = teacher_set("teacher", signals)
    student = TinyStudent().eval()
    before = {k: v.clone() for k, v in student.head.state_dict().items()}
    # a best epoch that no refit can beat: held-out CCC 1 on every dimension
    perfect = pd.DataFrame([{"epoch": 1, **{f"teacher_{d}": 1.0 for d in names + ["mean"]}}])
    report, _ = finish.refit_head(
        DistillConfig(), student, held, None, [0, 1, 2], [held], perfect.iloc[0].to_dict(), "cpu"
    )
    assert not report["applied"] and report["reason"] == "lowered teacher_mean on the held-out files"
    assert report["validation"]["teacher_mean"]["before"] == 1.0 > report["validation"]["teacher_mean"]["after"]
    assert all(torch.equal(v, before[k]) for k, v in student.head.state_dict().items())


def test_int8_guard_raises_the_penalty_until_the_int8_model_holds_the_limit(tmp_path, pool, models_yaml, monkeypatch):
    from benchmark.distill import finish, refit

    plain = run(config(tmp_path, pool, models_yaml, out="plain", register=False))
    chosen = json.loads((plain.out / "provenance.json").read_text())["head_refit"]
    assert chosen["applied"] and list(chosen["int8_loss_by_alpha"]) == [str(chosen["alpha"])]
    assert chosen["int8_loss_by_alpha"][str(chosen["alpha"])] <= finish.INT8_LOSS_LIMIT
    # a limit no int8 model holds: every larger penalty is tried, the last one kept or the trained head restored
    monkeypatch.setattr(finish, "INT8_LOSS_LIMIT", -1.0)
    strict = run(config(tmp_path, pool, models_yaml, out="strict", register=False))
    record = json.loads((strict.out / "provenance.json").read_text())
    guard = record["head_refit"]
    tried = [a for a in refit.ALPHAS if a >= chosen["alpha"]]
    assert list(guard["int8_loss_by_alpha"]) == [str(a) for a in tried]
    assert guard["alpha"] == tried[-1]
    assert guard["chosen_on"].endswith("raised for the int8 model")
    held = guard["validation"]["teacher_mean"]
    exported = record["validation"]["onnx"]["fp32"]["teacher_mean"]
    kept = held["after"] >= held["before"]  # the last refit, where it holds the held-out CCC; else the trained head
    assert guard["applied"] is kept and exported == pytest.approx(held["after" if kept else "before"], abs=2e-3)


def test_per_file_passes_run_a_thread_each_and_match_one_thread_in_order():
    from benchmark.distill import refit
    from benchmark.distill.validation import per_file, predict

    rng = np.random.default_rng(0)
    signals = [rng.normal(scale=0.1, size=int(SR * s)).astype(np.float32) for s in rng.uniform(0.3, 1.5, 9)]
    torch.manual_seed(0)
    student = small_wav2small("wav2small").to(memory_format=torch.channels_last).train()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.inference_mode():
            student.eval()
            expected = np.stack([student(torch.from_numpy(x)[None])[0].double().numpy() for x in signals])
            student.train()
        features = refit.head_inputs(student, signals)
        torch.set_num_threads(2)
        assert np.array_equal(predict(student, signals), expected)  # same bytes, in the order of the signals
        assert np.array_equal(refit.head_inputs(student, signals), features)
        assert student.training and torch.get_num_threads() == 2  # modes and thread count restored

        # each item waits for a partner: that returns only while two workers run at once (else the barrier breaks)
        pair = threading.Barrier(2, timeout=60)

        def worker(_) -> int:
            pair.wait()
            return threading.get_ident()

        assert len(set(per_file(worker, list(range(8))))) == 2  # a worker per torch thread
        with pytest.raises(ZeroDivisionError):
            per_file(lambda x: 1 / x, [1, 0])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_whole_files_are_read_where_they_are_used_not_held(tmp_path):
    import tracemalloc

    from benchmark.distill import refit

    folder = write_tones(
        tmp_path / "long",
        "l",
        40,
        0,
        seconds=lambda i: 6.0,
        hz=lambda i: 120 + 40 * i,
        level=lambda i: 0.05 + 0.01 * i,
        noise=lambda i: 0.01,
    )
    files = sorted(str(f) for f in folder.glob("*.wav"))
    targets, signals, skipped, calls = annotate.annotate_files(FeatureTeacher(), files, label="long")
    assert isinstance(signals, audio.AudioFiles) and signals.files == list(targets.index) and calls
    held = [audio.read_audio(f) for f in files]
    total = sum(x.nbytes for x in held)  # 40 files of 6 s: 15.4 MB
    torch.manual_seed(0)
    student = TinyStudent()
    expected = refit.head_inputs(student, held)
    del held
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # files in flight: as many as threads
    tracemalloc.start()
    try:
        features = refit.head_inputs(student, signals)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        torch.set_num_threads(threads)
    assert np.array_equal(features, expected)
    assert peak < total / 4, f"{peak} bytes at the peak for {total} bytes of audio"  # measured: 1.9 MB
    (folder / "l3.wav").unlink()
    with pytest.raises(DataError, match=r"l3\.wav: .*changed or removed since"):
        refit.head_inputs(student, signals)


def test_exports_are_scored_once_and_as_the_benchmark_scores_them(tmp_path, pool, models_yaml, monkeypatch):
    from benchmark import DIMENSIONS, registry
    from benchmark.distill import export
    from benchmark.distill.validation import json_number

    outcome = run(config(tmp_path, pool, models_yaml, out="scored", register=False, threads=2))
    signals = [audio.read_audio(str(f)) for f in sorted(pool.glob("*.wav"))]
    sets = [teacher_set("teacher", signals[:5]), teacher_set("gold", signals[3:])]
    real, loads = registry.load_model, []
    monkeypatch.setattr(registry, "load_model", lambda *a, **k: loads.append(a[0].name) or real(*a, **k))
    scored: dict = {}
    first = export.score_export(outcome.out, sets, "fp32", scored)
    assert export.score_export(outcome.out, sets[:1], "fp32", scored) == {
        k: v for k, v in first.items() if k.startswith("teacher_")
    }
    assert export.score_export(outcome.out, sets, "fp32", scored) == first and loads == ["distilled-fp32"]
    export.score_export(outcome.out_int8, sets, "int8", scored)  # other bytes: scored anew
    assert loads == ["distilled-fp32", "distilled-int8"]
    model = real(
        registry.ModelEntry(
            name="check",
            kind="audonnx",
            role="student",
            source={"path": str(outcome.out)},
            sampling_rate=SR,
            outputs={d: d for d in DIMENSIONS},
            description="",
            root=outcome.out.parent,
        ),
        registry={},
    )
    for vs in sets:  # file by file through the benchmark's loader, as `benchmark run` scores
        pred = np.stack([model(x, SR) for x in vs.signals])
        for d in vs.reference.columns:
            expected = json_number(ccc_finite(vs.reference[d].to_numpy(), pred[:, DIMENSIONS.index(d)]))
            assert first[f"{vs.name}_{d}"] == expected
    record = json.loads((outcome.out / "provenance.json").read_text())["validation"]["onnx"]
    assert set(record) == {"fp32", "int8"} and record["fp32"]["teacher_mean"] is not None
