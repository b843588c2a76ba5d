"""Loader for kind ``wavlm-hf``: the MSP-Podcast Odyssey 2024 challenge baseline.

``3loi/SER-Odyssey-Baseline-WavLM-Multi-Attributes`` (Goncalves et al.,
Odyssey 2024) is WavLM-Large, attentive statistics pooling over its last
hidden states and a small regression head predicting arousal, dominance
and valence. The published checkpoint ships custom code
(``pipeline_utils.py``) for ``trust_remote_code``; the benchmark never
runs downloaded code, so the architecture is rebuilt here in plain torch
around transformers' ``WavLMModel``, with the module names of the
challenge repository (``ssl_model``, ``pool_model``, ``ser_model``) so the
published state dict loads unchanged. See ``docs/teachers.md`` for what
was taken from where and what is assumed.

Input: the raw 16 kHz signal normalised with the *global* mean and
standard deviation stored in the checkpoint's ``config.json``
(``(x - mean) / (std + 1e-6)``). Output: the challenge trains on labels
mapped from 1..7 to 0..1 (``(y - 1) / 6``), so the raw outputs are
already on the benchmark's scale; ``params.output_range: [1, 7]`` maps a
checkpoint that predicts on the 1..7 scale instead.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path

import numpy as np

from benchmark.hashing import checkpoint_files, checkpoint_hash
from benchmark.models.base import Predictor
from benchmark.models.w2v2 import TorchPredictor, output_labels, resolve_checkpoint, torch_device

WAVLM_LARGE = {
    # microsoft/wavlm-large's architecture, so the published checkpoint (whose config names
    # only ``ssl_type: microsoft/wavlm-large``) loads without fetching that config from the hub.
    # ``conv_bias`` is read from the weights; shapes are checked by a strict state-dict load.
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "layer",
    "feat_extract_activation": "gelu",
    "do_stable_layer_norm": True,
    "conv_dim": [512] * 7,
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "num_buckets": 320,
    "max_bucket_distance": 800,
}

SER_DEFAULTS = {
    # the challenge's ``SERConfig`` defaults
    "num_classes": 3,
    "hidden_size": 1024,
    "classifier_hidden_layers": 1,
    "classifier_dropout_prob": 0.5,
    "ssl_type": "microsoft/wavlm-large",
    "sampling_rate": 16000,
    "mean": 0.0,
    "std": 1.0,
}

_OPTIONAL_KEYS = ("ssl_model.masked_spec_embed",)  # used only for SpecAugment in training


@functools.cache
def _classes():
    r"""The torch modules, built lazily so importing this module needs no torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from transformers import WavLMModel

    class AttentiveStatisticsPooling(nn.Module):
        r"""Attention-weighted mean and standard deviation over time (Okabe et al., 2018).

        ``lengths`` are the valid frames of each signal. (The challenge
        code estimates them as ``(samples - 1) // 320 + 1``, one or two
        frames more than WavLM produces: harmless for a single signal,
        where slicing stops at the end, but it would pool padding frames
        in a batch. The exact count keeps batched and single results equal.)
        """

        def __init__(self, input_size: int):
            super().__init__()
            self.sap_linear = nn.Linear(input_size, input_size)
            self.attention = nn.Parameter(torch.empty(input_size, 1))
            nn.init.normal_(self.attention, mean=0.0, std=1.0)

        def forward(self, xs, lengths):
            pooled = []
            for x, n in zip(xs, lengths):
                x = x[: int(n)].unsqueeze(0)
                h = torch.tanh(self.sap_linear(x))
                w = F.softmax(torch.matmul(h, self.attention).squeeze(2), dim=1).unsqueeze(2)
                mu = torch.sum(x * w, dim=1)
                sd = torch.sqrt((torch.sum(x**2 * w, dim=1) - mu**2).clamp(min=1e-5))
                pooled.append(torch.cat((mu, sd), dim=1).squeeze(0))
            return torch.stack(pooled)

    class EmotionRegression(nn.Module):
        r"""Dropout, then ``layers`` × (linear, layer norm, ReLU, dropout), then a linear output."""

        def __init__(self, input_dim: int, hidden_dim: int, layers: int, output_dim: int, dropout: float = 0.5):
            super().__init__()

            def block(n_in):
                return nn.Sequential(
                    nn.Linear(n_in, hidden_dim), nn.LayerNorm(hidden_dim), nn.ReLU(), nn.Dropout(dropout)
                )

            self.inp_drop = nn.Dropout(dropout)
            self.fc = nn.ModuleList([block(input_dim)] + [block(hidden_dim) for _ in range(layers - 1)])
            self.out = nn.Sequential(nn.Linear(hidden_dim, output_dim))

        def forward(self, x):
            h = self.inp_drop(x)
            for layer in self.fc:
                h = layer(h)
            return self.out(h)

    class OdysseyWavLM(nn.Module):
        r"""WavLM → attentive statistics pooling → :class:`EmotionRegression`."""

        def __init__(self, ser: dict, ssl_config):
            super().__init__()
            self.ssl_model = WavLMModel(ssl_config)
            hidden = ssl_config.hidden_size
            self.pool_model = AttentiveStatisticsPooling(hidden)
            self.ser_model = EmotionRegression(
                2 * hidden,
                int(ser["hidden_size"]),
                int(ser["classifier_hidden_layers"]),
                int(ser["num_classes"]),
                dropout=float(ser["classifier_dropout_prob"]),
            )

        def forward(self, x, mask):
            hidden = self.ssl_model(x, attention_mask=mask).last_hidden_state
            lengths = self.ssl_model._get_feat_extract_output_lengths(mask.sum(dim=1)).tolist()
            return self.ser_model(self.pool_model(hidden, lengths))

    return OdysseyWavLM


def build(ser: dict, ssl_config):
    r"""A randomly initialised model for ``ser`` settings and a ``WavLMConfig``."""
    return _classes()(dict(SER_DEFAULTS, **ser), ssl_config)


def save(model, folder: str | os.PathLike, ser: dict) -> Path:
    r"""Write a checkpoint this loader reads: ``config.json`` + ``model.safetensors``.

    The backbone's configuration is embedded as ``ssl_config``, so the
    checkpoint is self-contained (the published one only names
    ``ssl_type``).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(SER_DEFAULTS, **ser)
    config["ssl_config"] = model.ssl_model.config.to_diff_dict()
    config["hidden_size"] = model.ser_model.fc[0][0].out_features
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.fspath(folder / "model.safetensors"))
    return folder


def read_state_dict(folder: str | os.PathLike) -> dict:
    r"""The checkpoint's weights, with legacy names mapped to current torch ones.

    Checkpoints saved by older transformers name the weight-normalised
    positional convolution ``weight_g`` / ``weight_v``; torch's
    parametrisation calls them ``parametrizations.weight.original0/1``.
    """
    import torch

    files = [p for p in checkpoint_files(folder) if p.suffix in (".safetensors", ".bin")]
    state = {}
    for path in files:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(os.fspath(path)))
        else:
            state.update(torch.load(path, map_location="cpu", weights_only=True))
    renamed = {}
    for key, value in state.items():
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        renamed[key] = value
    return renamed


def ssl_config_for(config: dict, state: dict):
    r"""The backbone's ``WavLMConfig``.

    From ``ssl_config`` in ``config.json`` if embedded, else a local
    ``ssl_type`` folder, else the built-in WavLM-Large architecture for
    ``microsoft/wavlm-large`` (the published checkpoint's case).
    """
    from transformers import WavLMConfig

    if isinstance(config.get("ssl_config"), dict):
        return WavLMConfig(**config["ssl_config"])
    ssl_type = str(config.get("ssl_type", SER_DEFAULTS["ssl_type"]))
    if Path(ssl_type, "config.json").is_file():
        return WavLMConfig.from_pretrained(ssl_type)
    if ssl_type.rstrip("/").split("/")[-1] != "wavlm-large":
        raise ValueError(
            f"Backbone '{ssl_type}' is not built in: only microsoft/wavlm-large is. Embed its "
            "configuration as 'ssl_config' in config.json, or set 'ssl_type' to a local folder "
            "holding its config.json."
        )
    settings = dict(WAVLM_LARGE)
    settings["conv_bias"] = "ssl_model.feature_extractor.conv_layers.0.conv.bias" in state
    return WavLMConfig(**settings)


def load_checkpoint(folder: str | os.PathLike, name: str = "model"):
    r"""Build the model for the checkpoint in ``folder`` and load its weights strictly.

    Returns:
        ``(model, config)`` where ``config`` is the parsed ``config.json``

    """
    folder = Path(folder)
    config = dict(SER_DEFAULTS, **json.loads((folder / "config.json").read_text()))
    state = read_state_dict(folder)
    model = build(config, ssl_config_for(config, state))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in _OPTIONAL_KEYS]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"Model '{name}': the weights in {folder} do not fit the Odyssey WavLM architecture "
            f"(missing: {missing[:5]}{'...' if len(missing) > 5 else ''}; unexpected: "
            f"{result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}). "
            "Is it the 3loi multi-attribute checkpoint?"
        )
    return model, config


class WavLMPredictor(TorchPredictor):
    r"""The Odyssey baseline as a :class:`Predictor`.

    Args:
        mean, std: global input normalisation from the checkpoint
        output_range: scale of the raw outputs, mapped linearly to 0..1
        *args, **kwargs: see :class:`benchmark.models.w2v2.TorchPredictor`

    """

    def __init__(self, *args, mean: float = 0.0, std: float = 1.0, output_range=(0.0, 1.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.mean, self.std = float(mean), float(std)
        self.low, self.high = (float(v) for v in output_range)

    def normalize(self, signal: np.ndarray) -> np.ndarray:
        return ((signal.astype(np.float64) - self.mean) / (self.std + 1e-6)).astype(np.float32)

    def forward(self, x, mask):
        return (self.model(x, mask) - self.low) / (self.high - self.low)


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``wavlm-hf``.

    ``params``: ``device`` (``'cpu'`` default, ``'cuda'``, ``'auto'``),
    ``batch_size`` (default 8), ``output_range`` (default ``[0, 1]``;
    ``[1, 7]`` for a checkpoint predicting on MSP-Podcast's raw scale).
    """
    folder = resolve_checkpoint(entry)
    digest = checkpoint_hash(folder)
    model, config = load_checkpoint(folder, entry.name)
    # transformers' WavLM attention mixes a bool padding mask with a float position bias;
    # torch warns on every padded batch, about transformers' code, not ours
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask", category=UserWarning)
    output_range = entry.params.get("output_range", [0.0, 1.0])
    if len(output_range) != 2 or float(output_range[1]) <= float(output_range[0]):
        raise ValueError(f"Model '{entry.name}': params.output_range must be [low, high] with high > low.")
    return WavLMPredictor(
        entry.name,
        digest,
        model,
        output_labels(config.get("id2label"), int(config["num_classes"])),
        entry.outputs,
        device=torch_device(entry.params.get("device"), entry.name),
        batch_size=entry.params.get("batch_size", 8),
        use_mask=True,
        sampling_rate=entry.sampling_rate,
        mean=config["mean"],
        std=config["std"],
        output_range=output_range,
    )
