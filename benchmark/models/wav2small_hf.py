"""Loader for kind ``wav2small-hf``: audEERING's published Wav2Small checkpoint.

``audeering/wav2small`` on the Hugging Face hub (Kounades-Bastian et al.,
arXiv 2408.13920) is a ``config.json`` and a ``model.safetensors``; its
model card defines the network in plain torch, as a
``Wav2Vec2PreTrainedModel`` subclass with two children, ``vgg7`` and
``adv``. The benchmark never runs downloaded code, so the network is
rebuilt here from that description, with the card's module names, so that
the published state dict loads unchanged:

1. ``_prenorm``: per-utterance zero mean and unit variance (eps 1e-7);
2. ``vgg7.spectrogram_extractor``: a frozen DFT as two strided
   ``Conv1d`` (``conv_real``, ``conv_imag``; periodic Hann window of 64,
   64 bins → 33, hop 32, no padding), power ``re² + im²``;
3. ``vgg7.logmel_extractor``: ``melW`` (33 × 26 Slaney mel filterbank,
   as ``librosa.filters.mel(sr=16000, n_fft=64, n_mels=26)``), floor
   ``amin`` = 1e-10, ``10 log10`` → an image ``[batch, 1, frames, 26]``
   (time first, unlike the project's own students);
4. ``vgg7.l1`` … ``vgg7.l7``: 3×3 ``conv`` (no bias, 13 channels) →
   ``norm`` (BatchNorm2d) → ReLU, with a 3×3 / 2 max-pool (padding 1)
   after ``l3``;
5. attention pooling: ``vgg7.lin(x) * softmax(vgg7.sof(x))`` over the
   frames, summed over the frames → ``[batch, 13, 13]``; each channel's
   row is followed by its row of the channel Gram matrix ``P Pᵀ``
   (unscaled) → 338 features;
6. ``adv``: linear 338 → 3, in the order arousal, dominance, valence.

Sources: the model card's code as reproduced by public re-implementations
that load the published weights by these names (a "manual weight loading"
test script and the Tenstorrent model zoo's ``wav2small`` loader). The
real ``model.safetensors`` could not be read from here (no network): its
key names are those of the card's module tree, not observed. Loading is
strict, so a file that differs fails with the keys that differ (see
``docs/students.md``, "audEERING's published Wav2Small").
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

from benchmark.hashing import checkpoint_hash
from benchmark.models.base import Predictor
from benchmark.models.w2v2 import TorchPredictor, resolve_checkpoint, torch_device
from benchmark.students.published import ARCHITECTURE, CHANNELS, LABELS, N_MELS, PublishedWav2Small

FRONT_END_KEYS = (
    "vgg7.spectrogram_extractor.conv_real.weight",
    "vgg7.spectrogram_extractor.conv_imag.weight",
    "vgg7.logmel_extractor.melW",
    "vgg7.logmel_extractor.amin",
)
"""Fixed signal processing: used from the file when there (as the card's loader does), else computed here."""


def expected_shapes() -> dict[str, tuple[int, ...]]:
    r"""Every tensor of the card's state dict with its shape (``num_batches_tracked`` included).

    Examples:
        >>> shapes = expected_shapes()
        >>> shapes["vgg7.l1.conv.weight"], shapes["adv.weight"], len(shapes)
        ((13, 1, 3, 3), (3, 338), 52)

    """
    bins = ARCHITECTURE["n_fft"] // 2 + 1
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, 8):
        shapes[f"vgg7.l{i}.conv.weight"] = (CHANNELS, 1 if i == 1 else CHANNELS, 3, 3)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"vgg7.l{i}.norm.{name}"] = (CHANNELS,)
        shapes[f"vgg7.l{i}.norm.num_batches_tracked"] = ()
    for name in ("lin", "sof"):
        shapes[f"vgg7.{name}.weight"] = (CHANNELS, CHANNELS, 1, 1)
        shapes[f"vgg7.{name}.bias"] = (CHANNELS,)
    shapes[FRONT_END_KEYS[0]] = shapes[FRONT_END_KEYS[1]] = (bins, 1, ARCHITECTURE["n_time"])
    shapes[FRONT_END_KEYS[2]] = (bins, N_MELS)
    shapes[FRONT_END_KEYS[3]] = (1,)
    shapes["adv.weight"] = (len(LABELS), ARCHITECTURE["hidden"])
    shapes["adv.bias"] = (len(LABELS),)
    return shapes


def optional_keys() -> set[str]:
    r"""Keys a checkpoint may leave out: the fixed front end and BatchNorm's step counters."""
    return set(FRONT_END_KEYS) | {k for k in expected_shapes() if k.endswith("num_batches_tracked")}


def build():
    r"""The published architecture with its fixed front end and untrained layers (``torch.nn.Module``)."""
    return PublishedWav2Small()


def check_config(config: typing.Mapping, name: str = "model") -> None:
    r"""Refuse a ``config.json`` whose settings differ from the card's fixed architecture.

    Keys it does not give are taken to be the card's.

    Examples:
        >>> check_config({"half_mel": 13, "model_type": "wav2vec2"})
        >>> check_config({"n_fft": 128}, "m")
        Traceback (most recent call last):
        ...
        ValueError: Model 'm': config.json sets n_fft=128, but audEERING's published Wav2Small has n_fft=64 ...

    """
    for key, value in ARCHITECTURE.items():
        if key in config and config[key] != value:
            raise ValueError(
                f"Model '{name}': config.json sets {key}={config[key]}, but audEERING's published Wav2Small "
                f"has {key}={value} (fixed in its model card's modules); this loader builds only that "
                "architecture. Is it the audeering/wav2small checkpoint?"
            )


def state_dict_problems(state: typing.Mapping[str, typing.Any]) -> list[str]:
    r"""What keeps ``state`` from loading into the card's architecture: missing, unexpected and misshapen keys."""
    shapes = expected_shapes()
    missing = sorted(set(shapes) - set(state) - optional_keys())
    unexpected = sorted(set(state) - set(shapes))
    misshapen = sorted(
        f"{k} {tuple(state[k].shape)} (expected {shapes[k]})"
        for k in set(state) & set(shapes)
        if tuple(state[k].shape) != shapes[k]
    )
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected: {', '.join(unexpected)}")
    if misshapen:
        problems.append(f"wrong shape: {', '.join(misshapen)}")
    return problems


def load_checkpoint(folder: str | os.PathLike, name: str = "model"):
    r"""The published Wav2Small in ``folder`` (``config.json`` + weights), loaded strictly, in eval mode.

    Raises:
        ValueError: the config or the weights are not those of the
            published architecture; the message names every key that differs

    """

    from benchmark.models.wavlm import read_state_dict

    folder = Path(folder)
    check_config(json.loads((folder / "config.json").read_text()), name)
    state = read_state_dict(folder)
    problems = state_dict_problems(state)
    if problems:
        raise ValueError(
            f"Model '{name}': the weights in {folder} do not fit audEERING's published Wav2Small "
            f"({'; '.join(problems)}). Expected the audeering/wav2small checkpoint or one saved with its "
            "module names (docs/students.md)."
        )
    model = build()
    # strict=False only for the optional keys: every other difference was refused above
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
    return model.eval()


class Wav2SmallHfPredictor(TorchPredictor):
    r"""The published Wav2Small as a :class:`Predictor`.

    The network normalises each signal itself and has no padding mask,
    so only signals of equal length share a batch (padding never changes
    a result).
    """

    def normalize(self, signal):
        r"""The signal as it is (the network normalises it), refused if it holds no analysis frame."""
        if len(signal) < ARCHITECTURE["n_fft"]:
            raise ValueError(
                f"Model '{self.name}': a signal of {len(signal)} samples is shorter than one "
                f"{ARCHITECTURE['n_fft']}-sample analysis window (4 ms at 16 kHz); it has no frame to predict from."
            )
        return signal

    def forward(self, x, mask):
        return self.model(x)


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``wav2small-hf``.

    ``params``: ``device`` (``'cpu'`` default, ``'cuda'``, ``'auto'``),
    ``batch_size`` (default 8).
    """
    folder = resolve_checkpoint(entry)
    model = load_checkpoint(folder, entry.name)
    return Wav2SmallHfPredictor(
        entry.name,
        checkpoint_hash(folder),
        model,
        LABELS,
        entry.outputs,
        device=torch_device(entry.params.get("device"), entry.name),
        batch_size=entry.params.get("batch_size", 8),
        use_mask=False,
        sampling_rate=entry.sampling_rate,
    )
