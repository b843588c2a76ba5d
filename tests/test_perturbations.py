"""Perturbations against their definitions (docs/analyses.md)."""

from __future__ import annotations

import os
from pathlib import Path

import audiofile
import numpy as np
import pandas as pd
import pytest

from benchmark.analyses import perturbations as P

SR = 16000


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))


def speech_like(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    r"""Harmonic signal with syllable-rate amplitude modulation and a little noise, (1, n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * rng.random()
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 20))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    x += 0.01 * rng.normal(size=t.size)
    return (0.3 * x / np.max(np.abs(x)))[np.newaxis].astype("float32")


def condition(kind: str, **parameters) -> dict:
    return {"name": kind, "group": "test", "type": kind, "parameters": parameters}


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype="float64") ** 2)))


def sine(freq: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t))[np.newaxis].astype("float32")


def level_db(y, x, skip: int = 2000) -> float:
    r"""Gain of y over x in dB, after the filter's transient."""
    return 20 * np.log10(rms(y[..., skip:]) / rms(x[..., skip:]))


@pytest.fixture
def pool(tmp_path) -> list[str]:
    r"""Babble sources: six 'talkers' with different pitch; one stereo 22.05 kHz file."""
    files = []
    for i in range(6):
        rate, channels = (22050, 2) if i == 5 else (SR, 1)
        t = np.arange(int(0.7 * rate)) / rate
        x = (0.2 + 0.05 * i) * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        path = tmp_path / "pool" / f"talker{i}.wav"
        path.parent.mkdir(exist_ok=True)
        audiofile.write(str(path), np.tile(x, (channels, 1)).astype("float32"), rate)
        files.append(str(path))
    return files


# ------------------------------------------------------------------ conditions file


def test_project_conditions_load():
    conditions = P.load_conditions()
    names = [c["name"] for c in conditions]
    assert len(names) == len(set(names)) == 38
    groups = {"small-changes", "background-noise", "snr-sweep", "channel", "voice-shift"}
    assert {c["group"] for c in conditions} == groups
    assert sum(c["group"] == "small-changes" for c in conditions) == 12
    for curve in ("white-noise", "babble", "music", "environmental"):
        snrs = sorted(c["parameters"]["snr_db"] for c in conditions if c.get("sweep") == curve)
        assert snrs == [0, 5, 10, 20]
    hp = next(c for c in conditions if c["name"] == "high-pass")
    assert hp["parameters"] == {"cutoff_hz": [50, 100, 150], "order": 1}


def test_conditions_file_errors(tmp_path):
    path = tmp_path / "conditions.yaml"
    path.write_text(
        "conditions:\n"
        "  - {name: a, group: g, type: warp, parameters: {}}\n"
        "  - {name: b, group: g, type: gain, parameters: {}}\n"
        "  - {name: c, group: g, type: gain, parameters: {gain_db: 1, volume: 2}}\n"
        "  - {name: d, group: g, type: clip, parameters: {ratio: {low: 0.3, high: 0.1}}}\n"
        "  - {name: e, group: g, type: crop-end, parameters: {samples: [10.5]}}\n"
        "  - {name: e, group: g, type: gain, parameters: {gain_db: 1}}\n"
        "  - {name: f, group: g, type: gain, sweep: x, parameters: {gain_db: 1}}\n"
    )
    with pytest.raises(P.ConditionError) as error:
        P.load_conditions(path)
    message = str(error.value)
    for expected in (
        "entry 'a': unknown type 'warp'",
        "entry 'b': type 'gain': parameter 'gain_db' is missing",
        "entry 'c': type 'gain': unknown parameter 'volume'",
        "entry 'd': parameter 'ratio': range: 'low' must not exceed 'high'",
        "entry 'e': parameter 'samples': must be an integer",
        "entry 'e': duplicate name",
        "entry 'f': field 'sweep': the condition needs a fixed number 'snr_db'",
    ):
        assert expected in message
    with pytest.raises(P.ConditionError, match="not found"):
        P.load_conditions(tmp_path / "missing.yaml")


def test_draw_parameters_per_file():
    cond = condition("tone", frequency_hz={"low": 5000, "high": 7000}, snr_db=[40, 45, 50])
    digest = P.condition_hash(cond, seed=0)
    draws = [P.draw_parameters(cond, np.random.default_rng(P.file_seed(digest, f"f{i}.wav"))) for i in range(60)]
    assert {d["snr_db"] for d in draws} == {40, 45, 50}
    assert all(5000 <= d["frequency_hz"] <= 7000 and isinstance(d["frequency_hz"], int) for d in draws)
    again = P.draw_parameters(cond, np.random.default_rng(P.file_seed(digest, "f3.wav")))
    assert again == draws[3]


def test_condition_hash():
    cond = condition("gain", gain_db=1)
    assert P.condition_hash(cond, seed=0) == P.condition_hash({**cond, "name": "other", "group": "x"}, seed=0)
    assert P.condition_hash(cond, seed=0) != P.condition_hash(cond, seed=1)
    assert P.condition_hash(cond, seed=0) != P.condition_hash(condition("gain", gain_db=2), seed=0)
    # defaults count as given
    assert P.condition_hash(condition("low-pass", cutoff_hz=7000), seed=0) == P.condition_hash(
        condition("low-pass", cutoff_hz=7000, order=1), seed=0
    )


@pytest.mark.parametrize(
    ("cond", "moved"),
    [
        (condition("gain", gain_db=1), False),
        (condition("white-noise", snr_db=40), False),
        (condition("pitch-shift", semitones=2), True),
        (condition("formant-shift", factor=1.1), True),
        (condition("spectral-tilt", tilt_db_per_octave=3, pivot_hz=1000, low_hz=100), True),
    ],
)
def test_only_the_voice_transform_types_left_version_1(cond, moved):
    import json

    from benchmark.hashing import sha256_text

    # the hash as version 1 wrote it: stale cached audio of the old voice code must not be found again,
    # while every other type keeps its audio, its file seeds and the hashes in committed results
    spec = {"version": 1, "type": cond["type"], "parameters": cond["parameters"], "seed": 0, "sampling_rate": 16000}
    version_1 = sha256_text(json.dumps(spec, sort_keys=True))
    assert (P.condition_hash(cond, seed=0) != version_1) is moved


# ------------------------------------------------------------------ definitions


@pytest.mark.parametrize("snr", [40, 45, 50])
def test_tone_peak_snr(snr):
    x = speech_like()
    y = P.perturb(x, SR, condition("tone", frequency_hz=6000, snr_db=snr), seed=1)
    tone = y - x
    measured = 20 * np.log10(np.max(np.abs(x)) / np.max(np.abs(tone)))
    assert abs(measured - snr) < 0.5
    spectrum = np.abs(np.fft.rfft(tone[0]))
    assert np.fft.rfftfreq(tone.shape[1], 1 / SR)[np.argmax(spectrum)] == pytest.approx(6000, abs=2)


@pytest.mark.parametrize("snr", [45, 20, 0])
def test_white_noise_rms_snr(snr):
    x = speech_like()
    y = P.perturb(x, SR, condition("white-noise", snr_db=snr), seed=2)
    assert abs(10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean((y - x).astype(float) ** 2)) - snr) < 0.5


@pytest.mark.parametrize("snr", [20, 5, 0])
def test_babble_rms_snr(pool, snr):
    x = speech_like()
    cond = condition("babble", snr_db=snr, speakers={"low": 4, "high": 7})
    y = P.perturb(x, SR, cond, seed=3, babble_files=pool)
    noise = y - x
    assert abs(20 * np.log10(rms(x) / rms(noise)) - snr) < 0.5
    # several talkers: the noise carries more than one pitch
    spectrum = np.abs(np.fft.rfft(noise[0]))
    freqs = np.fft.rfftfreq(noise.shape[1], 1 / SR)
    peaks = {int(round(f / 40)) * 40 for f in freqs[spectrum > 0.3 * spectrum.max()] if f < 400}
    assert len(peaks) >= 2
    other = P.perturb(x, SR, cond, seed=4, babble_files=pool)
    assert not np.allclose(other, y)
    with pytest.raises(P.ConditionError, match="babble"):
        P.perturb(x, SR, cond, seed=3)


@pytest.mark.parametrize("gain", [-2, -1, 1, 2])
def test_gain_exact(gain):
    x = speech_like()
    y = P.perturb(x, SR, condition("gain", gain_db=gain), seed=0)
    np.testing.assert_allclose(y, x * 10 ** (gain / 20), rtol=1e-6)


@pytest.mark.parametrize("n", [100, 500, 1000])
def test_zeros_and_crops_exact(n):
    x = speech_like(0.25)
    y = P.perturb(x, SR, condition("prepend-zeros", samples=n), seed=0)
    assert y.shape[1] == x.shape[1] + n and not y[0, :n].any() and np.array_equal(y[:, n:], x)
    y = P.perturb(x, SR, condition("append-zeros", samples=n), seed=0)
    assert y.shape[1] == x.shape[1] + n and not y[0, -n:].any() and np.array_equal(y[:, :-n], x)
    y = P.perturb(x, SR, condition("crop-start", samples=n), seed=0)
    assert np.array_equal(y, x[:, n:])
    y = P.perturb(x, SR, condition("crop-end", samples=n), seed=0)
    assert np.array_equal(y, x[:, :-n])
    with pytest.raises(P.PerturbationError):
        P.perturb(x[:, :n], SR, condition("crop-start", samples=n), seed=0)


@pytest.mark.parametrize("ratio", [0.001, 0.002, 0.003])
def test_clip_ratio(ratio):
    x = speech_like()
    y = P.perturb(x, SR, condition("clip", ratio=ratio), seed=0)
    changed = ~np.isclose(y, x, rtol=0, atol=1e-6)
    assert abs(changed.sum() - int(ratio * x.size)) <= 1
    level = np.max(np.abs(y))
    assert np.all(np.abs(x[changed]) > level - 1e-6)  # exactly the loudest samples were limited
    assert np.sum(np.isclose(np.abs(y), level, atol=1e-6)) >= changed.sum()


@pytest.mark.parametrize("cutoff", [50, 100, 150])
def test_high_pass_first_order(cutoff):
    cond = condition("high-pass", cutoff_hz=cutoff)
    at_cutoff = sine(cutoff, seconds=2)
    assert level_db(P.perturb(at_cutoff, SR, cond, seed=0), at_cutoff, skip=SR) == pytest.approx(-3.01, abs=0.2)
    low = sine(cutoff / 5, seconds=4)  # first order: about -6 dB per octave below the cutoff
    expected = -10 * np.log10(1 + 25)
    assert level_db(P.perturb(low, SR, cond, seed=0), low, skip=2 * SR) == pytest.approx(expected, abs=0.5)
    speech = sine(1000)
    assert level_db(P.perturb(speech, SR, cond, seed=0), speech) > -0.1


@pytest.mark.parametrize("cutoff", [6500, 7000, 7500])
def test_low_pass_first_order(cutoff):
    cond = condition("low-pass", cutoff_hz=cutoff)
    probe = sine(cutoff)
    assert level_db(P.perturb(probe, SR, cond, seed=0), probe) == pytest.approx(-3.01, abs=0.2)
    speech = sine(500)
    assert level_db(P.perturb(speech, SR, cond, seed=0), speech) > -0.1


def test_phone_band_limit():
    cond = P.with_defaults(condition("phone"))
    x = sine(1000, amplitude=0.3) + sine(6000, amplitude=0.3) + sine(100, amplitude=0.3)
    y = P.perturb(x, SR, cond, seed=0)
    assert y.shape == x.shape
    assert rms(y) == pytest.approx(rms(x), rel=1e-3)  # level kept
    spectrum = np.abs(np.fft.rfft(y[0, 2000:]))
    freqs = np.fft.rfftfreq(y.shape[1] - 2000, 1 / SR)

    def band(f):
        return spectrum[np.abs(freqs - f) < 20].max()

    assert 20 * np.log10(band(6000) / band(1000)) < -40  # above the 8 kHz channel's band
    assert 20 * np.log10(band(100) / band(1000)) < -10  # below the telephone band
    # the codec adds quantisation noise: not the band-passed signal itself
    clean = P.telephone(x, SR, bits=16, mu=255)
    assert not np.allclose(clean, y, atol=1e-4)


def test_reverb(tmp_path):
    cond = condition("reverb", rooms=2, rt60_s=0.3, length_m=5.0, width_m=4.0, height_m=3.0, distance_m=1.5)
    rirs = P.rir_bank(tmp_path / "a", cond, seed=0)
    assert [Path(r).name for r in rirs] == ["rir-00.wav", "rir-01.wav"]
    again = P.rir_bank(tmp_path / "b", cond, seed=0)
    assert all(Path(a).read_bytes() == Path(b).read_bytes() for a, b in zip(rirs, again))
    rir, rate = audiofile.read(rirs[0])
    assert rate == SR
    # energy decay: 60 dB within roughly the requested RT60 (Schroeder integration)
    energy = np.cumsum(rir[::-1].astype(float) ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0])
    t20 = (np.argmax(decay < -25) - np.argmax(decay < -5)) / SR
    assert 0.15 < 3 * t20 < 0.6
    x = speech_like()
    y = P.perturb(x, SR, cond, seed=5, rir_files=rirs)
    assert y.shape == x.shape
    assert rms(y) == pytest.approx(rms(x), rel=1e-3)
    assert not np.allclose(y, x, atol=1e-3)


# ------------------------------------------------------------------ files and caching


@pytest.fixture
def database(tmp_path) -> tuple[pd.Index, Path]:
    root = tmp_path / "db"
    files = []
    for i in range(6):
        path = root / "wav" / f"s{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        audiofile.write(str(path), speech_like(0.3, seed=i), SR)
        files.append(str(path))
    # a stereo 44.1 kHz file and a file too short to crop
    stereo = root / "wav" / "stereo.wav"
    audiofile.write(str(stereo), np.tile(speech_like(0.3, seed=9)[0, ::1], (2, 1)), 44100)
    short = root / "wav" / "short.wav"
    audiofile.write(str(short), speech_like(0.01), SR)
    return pd.Index(files + [str(stereo), str(short)], name="file"), root


def test_materialize_deterministic_and_reused(database, tmp_path, monkeypatch):
    files, root = database
    cond = condition("white-noise", snr_db=[10, 20, 30])
    first = P.materialize(files, cond, root_key="tiny-1.0.0", seed=0, root=root)
    assert list(first.index) == list(files)
    assert all(Path(p).exists() and "perturbed/tiny-1.0.0/white-noise-" in p for p in first)
    assert first[str(root / "wav" / "s0.wav")].endswith("wav/s0.wav")
    signal, rate = audiofile.read(first[files[-2]], always_2d=True)  # the stereo 44.1 kHz file
    assert rate == SR and signal.shape[0] == 1
    stamps = {p: os.stat(p).st_mtime_ns for p in first}
    again = P.materialize(files, cond, root_key="tiny-1.0.0", seed=0, root=root)
    assert again.equals(first)
    assert stamps == {p: os.stat(p).st_mtime_ns for p in again}  # reused, not rewritten
    # another cache, reversed order, one worker: the same bytes
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "other-cache"))
    reverse = P.materialize(files[::-1], cond, root_key="tiny-1.0.0", seed=0, root=root, workers=1)
    for file in files:
        assert Path(reverse[file]).read_bytes() == Path(first[file]).read_bytes()
    other_seed = P.materialize(files, cond, root_key="tiny-1.0.0", seed=1, root=root)
    assert Path(other_seed[files[0]]).read_bytes() != Path(first[files[0]]).read_bytes()


def test_materialize_skips_short_files(database):
    files, root = database
    out = P.materialize(files, condition("crop-start", samples=500), root_key="tiny", seed=0, root=root)
    short = str(root / "wav" / "short.wav")
    assert short not in out.index and len(out) == len(files) - 1
    assert "cannot remove 500 samples" in out.attrs["skipped"][short]
    with pytest.raises(P.ConditionError, match="babble_files"):
        P.materialize(files, condition("babble", snr_db=20), root_key="tiny", seed=0, root=root)
    with pytest.raises(P.ConditionError, match="unknown type"):
        P.materialize(files, condition("warp"), root_key="tiny", seed=0, root=root)
