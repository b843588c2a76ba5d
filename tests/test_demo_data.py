"""Embedded demo corpora: determinism, schema parity with ``datasets.yaml``, speaker
disjointness, and that the synthetic cues are learnable (arousal) or hard (valence).

The corpora are built small (``SCALE``) and published into a temporary
cache, then loaded through :func:`benchmark.data.datasets.load_split`:
the same audb path as the real data.
"""

from __future__ import annotations

import wave
from pathlib import Path

import audmetric
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_SCALE as SCALE  # ~10% of the full size: a few hundred utterances in all

from benchmark.data import demo, demo_build
from benchmark.data.datasets import load_registry, load_split


def _splits():
    registry = load_registry()
    for name, entry in registry.items():
        for split in entry.splits:
            yield name, split
    yield "msppodcast", "train"


# ---------------------------------------------------------------- determinism


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    for name in ("demo-mosi", "demo-iemocap"):
        demo_build.build(name, tmp_path / name / "a", scale=0.02)
        demo_build.build(name, tmp_path / name / "b", scale=0.02, num_workers=1)
        a, b = _tree(tmp_path / name / "a"), _tree(tmp_path / name / "b")
        assert len(a) > 4 and a.keys() == b.keys()
        assert [f for f in a if a[f] != b[f]] == []
    demo_build.build("demo-mosi", tmp_path / "c", scale=0.02, seed=1)
    other = _tree(tmp_path / "c")
    assert other["audio/mosi-001_000.wav"] != _tree(tmp_path / "demo-mosi" / "a")["audio/mosi-001_000.wav"]


def test_scaled_build_is_a_subset(tmp_path):
    demo_build.build("demo-mosi", tmp_path / "s", scale=0.02)
    demo_build.build("demo-mosi", tmp_path / "l", scale=0.1)
    small, large = _tree(tmp_path / "s"), _tree(tmp_path / "l")
    audio = [f for f in small if f.startswith("audio/")]
    assert audio and all(small[f] == large[f] for f in audio)


# ---------------------------------------------------------------- schema parity


@pytest.mark.parametrize("dataset, split", list(_splits()))
def test_split_loads_like_real_data(use_demo, dataset, split):
    entry = load_registry()[dataset].resolved("demo")  # the replica's view: its scale and speaker tables
    data = load_split(dataset, split, data="demo")
    assert data.audb_name == entry.demo["name"] and data.version == str(entry.demo["version"])
    assert set(data.dimensions) == set(entry.labels)
    # gold labels on the corpus scale, quantised like a mean of integer ratings
    lo, hi = entry.label_range
    raw = data.truth * (hi - lo) + lo
    assert raw.min().min() >= lo and raw.max().max() <= hi
    raters = demo_build._CORPORA[entry.demo["name"]].raters
    assert np.allclose(raw * raters, np.round(raw * raters), atol=1e-6)
    assert raw.std().min() > 0.3  # labels spread, not all neutral
    # speaker and sex for every file; both sexes, at least 2 speakers each
    assert data.speaker.notna().all() and data.sex.notna().all()
    per_sex = data.speaker.groupby(data.sex).nunique()
    assert set(per_sex.index) == {"female", "male"} and per_sex.min() >= 2
    # audio: absolute paths to 16-bit mono 16 kHz WAV, 1.5 to 8 s
    for file in data.files[:3]:
        with wave.open(file) as fp:
            assert (fp.getnchannels(), fp.getsampwidth(), fp.getframerate()) == (1, 2, 16000)
            assert 1.5 <= fp.getnframes() / 16000 <= 8.0


def test_iemocap_has_sessions(use_demo):
    import audb

    load_split("iemocap", "test", data="demo")  # configures the demo repository
    db = audb.load("demo-iemocap", version=demo.DEMO_VERSION, tables=["files"], only_metadata=True, verbose=False)
    sessions = db["files"]["session"].get()
    assert sessions.min() == 1 and sessions.notna().all()


def test_full_size_matches_the_brief():
    def count(name):
        corpus = demo_build._CORPORA[name]
        return {s.table: (len(demo_build._speakers(corpus, s, 1.0)), s.utterances) for s in corpus.splits}

    msp = count("demo-msppodcast")
    assert msp["emotion.dimensions.test-1.gold_standard"] == (60, 10)
    assert count("demo-iemocap") == {"emotion.dimensions.test.gold_standard": (10, 30)}
    assert count("demo-mosi") == {"sentiment.test.gold_standard": (20, 10)}
    assert count("demo-pool") == {None: (50, 20)}
    assert count("demo-refit") == {None: (50, 20)}


# ---------------------------------------------------------------- speakers


def test_speakers_disjoint_at_full_size():
    seen = {}
    for name, corpus in demo_build._CORPORA.items():
        for split in corpus.splits:
            for speaker, _, _ in demo_build._speakers(corpus, split, 1.0):
                assert speaker not in seen, f"{speaker} in {seen.get(speaker)} and {name}/{split.table}"
                seen[speaker] = (name, split.table)


def test_speakers_disjoint_when_loaded(use_demo):
    speakers = {(d, s): set(load_split(d, s, data="demo").speaker) for d, s in _splits()}
    pool = demo.pool_files()
    assert len(pool) > 0 and all(pd.Series(pool).map(lambda f: f.startswith(str(use_demo))))
    speakers["pool"] = {f.rsplit("/", 1)[-1].rsplit("_", 1)[0] for f in pool}
    speakers["refit"] = {f.rsplit("/", 1)[-1].rsplit("_", 1)[0] for f in demo.pool_files("demo-refit")}
    assert speakers["refit"] and all(s.startswith("refit-") for s in speakers["refit"])
    keys = list(speakers)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not speakers[a] & speakers[b], (a, b)


# ---------------------------------------------------------------- repository


def test_repository_is_built_once_and_recovers(own_demo, capsys):
    import audb

    demo.repository()
    assert "Building" not in capsys.readouterr().err  # already published
    header = own_demo / "audb-demo" / "demo" / "demo-mosi" / demo.DEMO_VERSION / "db.yaml"
    header.unlink()  # as if publication was interrupted before the header
    repo = demo.repository()
    assert "Building" in capsys.readouterr().err and header.exists()
    assert demo._published(own_demo / "audb-demo", "demo-mosi")["scale"] == SCALE  # completed at its scale
    audb.config.REPOSITORIES = [repo]
    assert demo.DEMO_VERSION in audb.versions("demo-mosi")
    with pytest.raises(RuntimeError, match="scale"):
        demo.repository(scale=1.0)


def test_build_by_other_generator_code_is_rebuilt(own_demo, capsys):
    r"""A published build whose header names other generator code is not served under the same version."""
    import yaml

    demo.repository()
    capsys.readouterr()
    fresh = load_split("mosi", "test", data="demo")
    header = own_demo / "audb-demo" / "demo" / "demo-mosi" / demo.DEMO_VERSION / "db.yaml"
    meta = yaml.safe_load(header.read_text())
    meta["demo"]["generator_digest"] = "0" * 64  # as if an older generator had published it
    header.write_text(yaml.safe_dump(meta))
    first = next(iter(fresh.files))
    with open(first, "r+b") as fp:  # and audb's cached copy holds that build's audio
        fp.seek(100)
        fp.write(b"\x7f\x7f")
    demo.repository()
    err = capsys.readouterr().err
    assert "demo-mosi" in err and "other generator code (000000000000" in err and "rebuilding" in err
    assert demo._published(own_demo / "audb-demo", "demo-mosi")["generator_digest"] == demo.generator_digest()
    again = load_split("mosi", "test", data="demo")
    assert again.fingerprint == fresh.fingerprint  # the rebuild is the current code's build, byte for byte
    assert "demo-iemocap" not in err  # databases of the current code stay as they are


def test_generator_digest_ignores_docstrings_not_code(tmp_path, monkeypatch):
    import types

    source = tmp_path / "gen.py"
    source.write_text('"""Doc."""\nX = 1  # comment\n\n\ndef f():\n    """Doc."""\n    return X\n')
    module = types.SimpleNamespace(__file__=str(source))
    before = demo_build._code_dump(module)
    source.write_text('"""Other doc."""\nX = 1\n\n\ndef f():\n    r"""Other."""\n    return X\n')
    assert demo_build._code_dump(module) == before
    source.write_text('"""Doc."""\nX = 2\n\n\ndef f():\n    return X\n')
    assert demo_build._code_dump(module) != before
    source.write_text('"""Doc."""\nX = 1\n\n\ndef f():\n    return X\n\n\ndef generator_digest():\n    return 0\n')
    assert demo_build._code_dump(module) == before  # the digest's own code is not generating code
    digest = demo.generator_digest()
    publishing = tmp_path / "demo.py"
    publishing.write_text(Path(demo.__file__).read_text() + "\n\ndef repository():\n    return 0\n")
    monkeypatch.setattr(demo, "__file__", str(publishing))
    assert demo.generator_digest() == digest  # publishing code is not generating code


# ---------------------------------------------------------------- learnability


def features(file: str) -> dict[str, float]:
    r"""A handful of frame-level acoustic features, summarised per file (numpy only)."""
    with wave.open(file) as fp:
        x = np.frombuffer(fp.readframes(fp.getnframes()), dtype="<i2") / 32768.0
    frames = np.lib.stride_tricks.sliding_window_view(x, 640)[::160] * np.hanning(640)
    energy = 10 * np.log10(np.sum(frames**2, axis=1) + 1e-10)
    active = energy > energy.max() - 30
    spec = np.abs(np.fft.rfft(frames, 1024)) ** 2  # bins of 15.6 Hz
    acf = np.fft.irfft(spec)[:, :300]
    lags = np.arange(40, 230)  # f0 70..400 Hz
    peak = lags[np.argmax(acf[:, lags], axis=1)]
    strength = acf[np.arange(len(acf)), peak] / (acf[:, 0] + 1e-12)
    voiced = active & (strength > 0.5)
    f0 = np.log2(16000 / peak[voiced]) * 12 if voiced.any() else np.zeros(1)
    low, high = spec[active, 3:64].sum(), spec[active, 64:256].sum()  # 50-1000 Hz vs 1-4 kHz
    envelope = np.convolve(energy, np.ones(5) / 5, mode="same")
    nuclei = np.sum((envelope[1:-1] > envelope[:-2]) & (envelope[1:-1] >= envelope[2:]) & active[1:-1])
    return {
        "loudness": float(np.mean(energy[active])),
        "loudness_range": float(np.percentile(energy[active], 90) - np.percentile(energy[active], 10)),
        "f0": float(np.median(f0)),
        "f0_range": float(np.percentile(f0, 90) - np.percentile(f0, 10)),
        "slope": float(10 * np.log10(high / low)),
        "zcr": float(np.mean(np.abs(np.diff(np.sign(x))) > 0)),
        "rate": float(nuclei / (active.sum() * 0.01)),
        "voiced": float(voiced.mean()),
    }


def ridge(train: pd.DataFrame, target: pd.Series, test: pd.DataFrame, alpha: float = 1.0) -> np.ndarray:
    r"""Ridge regression on standardised features."""
    mean, std = train.mean(), train.std() + 1e-9
    xtr, xte = ((train - mean) / std).to_numpy(), ((test - mean) / std).to_numpy()
    w = np.linalg.solve(xtr.T @ xtr + alpha * np.eye(xtr.shape[1]), xtr.T @ (target - target.mean()).to_numpy())
    return xte @ w + target.mean()


@pytest.fixture(scope="module")
def acoustic(demo_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_BENCHMARK_CACHE", str(demo_cache))
        train = load_split("msppodcast", "train", data="demo")
        test = load_split("msppodcast", "test-1", data="demo")
    return {
        name: (data, pd.DataFrame([features(f) for f in data.files], index=data.files))
        for name, data in (("train", train), ("test", test))
    }


def test_arousal_learnable_valence_hardest(acoustic):
    (train, xtr), (test, xte) = acoustic["train"], acoustic["test"]
    ccc = {
        dim: audmetric.concordance_cc(test.truth[dim].to_numpy(), ridge(xtr, train.truth[dim], xte))
        for dim in ("arousal", "dominance", "valence")
    }
    assert ccc["arousal"] > 0.5, ccc
    assert ccc["valence"] < min(ccc["arousal"], ccc["dominance"]), ccc


def test_pitch_only_arousal_model_has_a_sex_gap(acoustic):
    # calibrated on male speakers only, raw f0 reads every female voice as aroused
    (train, xtr), (test, xte) = acoustic["train"], acoustic["test"]
    male = (train.sex == "male").to_numpy()
    pred = pd.Series(ridge(xtr.loc[male, ["f0"]], train.truth["arousal"][male], xte[["f0"]]), index=test.files)
    bias = (pred - test.truth["arousal"]).groupby(test.sex).mean()
    assert bias["female"] - bias["male"] > 0.15, bias


def test_demo_version_matches_dataset_registry():
    from benchmark.data.datasets import load_registry

    for entry in load_registry().values():
        assert str(entry.demo["version"]) == demo.DEMO_VERSION, (
            f"datasets.yaml pins {entry.demo['name']} {entry.demo['version']} but the generator is "
            f"{demo.DEMO_VERSION}: bump both together"
        )
