"""Batched inference in the runner: length-bucketed ``predict_batch`` agrees with file-by-file runs."""

from __future__ import annotations

import audiofile
import numpy as np
import pandas as pd
import pytest
from test_teachers import _tiny_w2v2

from benchmark import prediction_cache, runner
from benchmark.data import datasets as dsets
from benchmark.registry import Registry, load_model


@pytest.fixture()
def evalset(dataset_registry, audb_repository):
    return dsets.load_split(
        "testcorpus", "test-1", data="real", repositories=[audb_repository], registry=dataset_registry
    )


def _w2v2(folder, norm: str):
    _tiny_w2v2(folder, norm=norm)
    reg = Registry.from_yaml_text(f"""
models:
  - name: tiny-{norm}
    kind: w2v2-hf
    role: teacher
    source: {{path: '{folder}'}}
    params: {{batch_size: 16}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: tiny random-config wav2vec 2.0
""")
    return load_model(f"tiny-{norm}", reg)


def _with_bad_files(evalset, folder) -> pd.Index:
    r"""The split's files plus a silent and a too-short one (skipped the same way either path)."""
    audiofile.write(str(folder / "silent.wav"), np.zeros(16000, dtype="float32"), 16000)
    audiofile.write(str(folder / "short.wav"), np.full(800, 0.1, dtype="float32"), 16000)
    return evalset.files.append(pd.Index([str(folder / "silent.wav"), str(folder / "short.wav")]))


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_batched_predictions_match_per_file(tmp_path, evalset, norm):
    model = _w2v2(tmp_path / "ckpt", norm)
    assert model.use_mask == (norm == "layer")  # group norm over the padded signal: equal lengths only
    files = _with_bad_files(evalset, tmp_path)
    assert len({audiofile.duration(f) for f in evalset.files}) > 3  # lengths differ: batches need padding
    single, single_skips = runner.predict(model, evalset, files, progress=False)
    batched, batched_skips = runner.predict(model, evalset, files, progress=False, batch_size=4)
    assert batched.attrs["computed"] == len(files)  # its own cache, not the per-file one
    assert list(batched.index) == list(single.index) and len(single) == len(evalset.files)
    np.testing.assert_allclose(batched.to_numpy(), single.to_numpy(), atol=1e-4, rtol=0)
    pd.testing.assert_frame_equal(batched_skips, single_skips)
    assert set(single_skips["reason"].str.split(" ").str[0]) == {"silent", "too"}
    assert (
        prediction_cache.PredictionCache(model, evalset, None, 4).folder
        != prediction_cache.PredictionCache(model, evalset).folder
    )


def test_models_without_predict_batch_ignore_batch_size(tmp_path, evalset):
    reg = Registry.from_yaml_text("""
models:
  - name: rnd
    kind: random
    role: baseline
    source: {}
    params: {seed: 0}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: seeded draws
""")
    model = load_model("rnd", reg)
    assert not runner.batches(model)
    single, _ = runner.predict(model, evalset, progress=False)
    again, _ = runner.predict(model, evalset, progress=False, batch_size=8)
    assert again.attrs["computed"] == 0  # the same cache: file by file either way
    pd.testing.assert_frame_equal(single, again)
