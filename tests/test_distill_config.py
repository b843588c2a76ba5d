"""The distillation's one configuration: parts declared once, command-line options generated from them."""

from __future__ import annotations

import dataclasses

from benchmark.distill.cli import RECIPE_KEYS, build_parser, config_from_args
from benchmark.distill.config import Crops, DistillConfig, Finishing, Hyper, Runtime, Task, Validation

OPTIONS = {  # every option of the hand-written parser this one replaced, and later ones: (destination, default)
    "--student": ("student", "wav2small"),
    "--teacher": ("teacher", "egemaps-teacher"),
    "--data": ("data", "demo"),
    "--refit-data": ("refit_data", "auto"),
    "--real-speech": ("real_speech", None),
    "--max-files": ("max_files", 0),
    "--out": ("out", None),
    "--models": ("models", None),
    "--no-register": ("register", True),
    "--replace": ("replace", False),
    "--compare-files": ("compare_files", 0),
    "--epochs": ("epochs", 7),
    "--batch-size": ("batch_size", 16),
    "--lr": ("lr", 0.0015),
    "--weight-decay": ("weight_decay", 0.01),
    "--warmup": ("warmup", 0.05),
    "--schedule": ("schedule", "cosine"),
    "--mse-weight": ("mse_weight", 0.5),
    "--loss-weights": ("loss_weights", (1.0, 1.0, 1.0)),
    "--bn-calibration": ("bn_calibration", 192),
    "--bn-freeze-epochs": ("bn_freeze_epochs", 0),
    "--ema": ("ema", 0.99),
    "--seed": ("seed", 0),
    "--crop-seconds": ("crop_seconds", 4.0),
    "--bucket-seconds": ("bucket_seconds", 0.5),
    "--variants": ("variants", 3),
    "--no-augment": ("augment", True),
    # voice augmentation: pitch and formant on by default since 0.13.0
    "--aug-pitch": ("aug_pitch", 0.5),
    "--aug-formant": ("aug_formant", 0.5),
    "--aug-speed": ("aug_speed", 0.0),
    "--aug-tilt": ("aug_tilt", 0.0),
    "--aug-channel": ("aug_channel", 0.0),
    "--no-head-refit": ("head_refit", True),
    "--val-fraction": ("val_fraction", 0.1),
    "--target-range": ("target_range", (-0.5, 1.5)),
    "--gold": ("gold", "auto"),
    "--device": ("device", "auto"),
    "--precision": ("precision", "fp32"),
    "--threads": ("threads", 0),
    "--numerics": ("numerics", "portable"),
    "--resume": ("resume", True),
    "--no-resume": ("resume", True),
    "--checkpoint-every": ("checkpoint_every", 50),
    "--teacher-batch": ("teacher_batch", 64),
    "--teacher-workers": ("teacher_workers", 0),
    "--no-progress": ("progress", True),
    "--stop-after-steps": ("stop_after_steps", None),
}


def _options() -> dict[str, tuple[str, object]]:
    return {
        flag: (action.dest, action.default)
        for action in build_parser()._actions
        if action.dest != "help"
        for flag in action.option_strings
    }


def test_options_keep_their_names_and_defaults():
    assert _options() == OPTIONS


def test_every_option_is_a_field_and_no_options_give_the_defaults():
    fields = {f.name: f for f in dataclasses.fields(DistillConfig)}
    assert {dest for dest, _ in _options().values()} == {n for n, f in fields.items() if "help" in f.metadata}
    assert config_from_args(build_parser().parse_args([])) == DistillConfig()
    argv = ["--loss-weights", "1", "2", "1", "--no-resume", "--epochs", "3"]
    parsed = config_from_args(build_parser().parse_args(argv))
    assert (parsed.loss_weights, parsed.resume, parsed.epochs) == ((1.0, 2.0, 1.0), False, 3)


def test_the_configuration_is_made_of_its_parts():
    parts = (Task, Hyper, Crops, Finishing, Validation, Runtime)
    names = [f.name for part in parts for f in dataclasses.fields(part)]
    assert [f.name for f in dataclasses.fields(DistillConfig)] == names and len(set(names)) == len(names)
    config = DistillConfig(epochs=3, device="cpu", gold="none")
    assert config.part(Hyper) == config.hyper() == Hyper(epochs=3)
    assert config.part(Runtime) == Runtime(device="cpu") and config.part(Validation) == Validation(gold="none")
    # Hyper is recorded in every provenance.json (and so in the committed weights' sha256): same keys, same order
    assert list(dataclasses.asdict(config.hyper())) == [
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "warmup",
        "schedule",
        "final_lr",
        "mse_weight",
        "loss_weights",
        "grad_clip",
        "bn_calibration",
        "bn_freeze_epochs",
        "ema",
        "seed",
        "precision",
    ]


def test_recipe_keys_are_the_fields_marked_as_recipe_settings():
    assert set(RECIPE_KEYS) == {
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "warmup",
        "schedule",
        "mse_weight",
        "loss_weights",
        "bn_calibration",
        "bn_freeze_epochs",
        "ema",
        "crop_seconds",
        "bucket_seconds",
        "variants",
        "val_fraction",
        "precision",
        "head_refit",
        "aug_pitch",
        "aug_formant",
        "aug_speed",
        "aug_tilt",
        "aug_channel",
    }
