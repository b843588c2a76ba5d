"""Voice transforms (benchmark.analyses.perturbations.voice) on signals whose pitch and formants are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.analyses.perturbations import voice

SR = 16000
FORMANTS = (600.0, 1700.0, 2600.0)


def vowel(f0: float, formants=FORMANTS, seconds: float = 1.5) -> np.ndarray:
    r"""A harmonic source at ``f0`` shaped by resonances at ``formants`` (Gaussian bumps, 150 Hz wide)."""
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    for h in range(1, int(7500 / f0)):
        f = h * f0
        x += (sum(np.exp(-(((f - F) / 150.0) ** 2)) for F in formants) + 0.01) * np.sin(2 * np.pi * f * t)
    return (0.1 * x / np.max(np.abs(x))).astype(np.float32)


def f0_of(x: np.ndarray) -> float:
    r"""Fundamental by autocorrelation, 70..400 Hz, with parabolic interpolation of the peak."""
    x = x[2000:10000].astype(np.float64)
    ac = np.correlate(x, x, "full")[len(x) - 1 :]
    low, high = SR // 400, SR // 70
    lag = int(np.argmax(ac[low:high])) + low
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    return SR / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def first_formant(x: np.ndarray) -> float:
    r"""Peak of the mean cepstral envelope between 300 and 1200 Hz."""
    spec = np.abs(voice._stft(x.astype(np.float64)))
    env = voice.envelope(spec).mean(axis=1)
    freqs = np.arange(len(env)) * SR / voice.N_FFT
    band = (freqs > 300) & (freqs < 1200)
    return float(freqs[band][np.argmax(env[band])])


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("semitones", [-4, -2, 2, 4])
def test_pitch_shift_moves_f0_and_keeps_formants(semitones):
    x = vowel(140.0)
    y = voice.pitch_shift(x, semitones)
    assert y.shape == x.shape and y.dtype == np.float32
    assert f0_of(y) == pytest.approx(140.0 * 2 ** (semitones / 12), rel=0.02)
    assert first_formant(y) == pytest.approx(first_formant(x), abs=80)
    assert rms(y) == pytest.approx(rms(x), rel=1e-4)
    # without the envelope correction the formants move with the pitch
    moved = voice.pitch_shift(x, semitones, keep_formants=False)
    assert abs(first_formant(moved) - first_formant(x)) > abs(first_formant(y) - first_formant(x))


@pytest.mark.parametrize("ratio", [0.9, 1.1])
def test_formant_shift_moves_the_envelope_and_keeps_f0(ratio):
    x = vowel(120.0)
    y = voice.formant_shift(x, ratio)
    assert f0_of(y) == pytest.approx(f0_of(x), rel=0.01)
    assert first_formant(y) / first_formant(x) == pytest.approx(ratio, abs=0.06)
    assert rms(y) == pytest.approx(rms(x), rel=1e-4)


def test_speed_tilt_and_channel_on_tones():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    fast = voice.speed(tone, 1.25)
    assert len(fast) == int(round(SR / 1.25))
    spectrum = np.abs(np.fft.rfft(fast))
    assert np.argmax(spectrum) * SR / len(fast) == pytest.approx(625, abs=2)
    noise = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    for slope in (-3.0, 3.0):
        gain = np.abs(np.fft.rfft(voice.tilt(noise, slope))) / np.abs(np.fft.rfft(noise))
        assert 20 * np.log10(gain[2000] / gain[500]) == pytest.approx(2 * slope, abs=0.05)
    two = (np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    s = np.abs(np.fft.rfft(voice.channel(two, 300, 3400)))
    assert s[100] < 0.05 * s[1000] and s[6000] < 0.05 * s[1000]
    clipped = voice.channel(tone, 0, SR, drive=3.0)
    harmonics = np.abs(np.fft.rfft(clipped))
    assert harmonics[1500] > 0.01 * harmonics[500]  # soft clipping adds odd harmonics
    assert rms(clipped) == pytest.approx(rms(tone), rel=1e-4)


def test_voice_shifts_are_deterministic_and_refuse_unknown_settings():
    x = vowel(200.0, seconds=0.8)
    for name in voice.VOICE_SHIFTS:
        a, b = voice.voice_shift(x, name), voice.voice_shift(x, name)
        assert np.array_equal(a, b) and len(a) == len(x) and not np.array_equal(a, x)
    assert np.array_equal(voice.voice_shift(np.zeros(4000, np.float32), "formant+10%"), np.zeros(4000))
    with pytest.raises(ValueError, match="give -12..12"):
        voice.pitch_shift(x, 13)
    with pytest.raises(ValueError, match="between 0.5 and 2"):
        voice.formant_shift(x, 3.0)
    with pytest.raises(ValueError, match="choose one of pitch-4"):
        voice.voice_shift(x, "formant+20%")


def _time_stretch_frame_by_frame(signal: np.ndarray, rate: float) -> np.ndarray:
    r"""The phase vocoder as it was written before it was vectorised: the committed results were made with it."""
    x = np.asarray(signal, dtype=np.float64)
    spec = voice._stft(x)
    steps = np.arange(0, spec.shape[1] - 1, rate)
    expected = 2 * np.pi * voice.HOP * np.arange(spec.shape[0]) / voice.N_FFT
    phase = np.angle(spec[:, 0])
    out = np.empty((spec.shape[0], len(steps)), dtype=complex)
    for k, step in enumerate(steps):
        i = int(step)
        frac = step - i
        left, right = spec[:, i], spec[:, i + 1]
        out[:, k] = ((1 - frac) * np.abs(left) + frac * np.abs(right)) * np.exp(1j * phase)
        delta = np.angle(right) - np.angle(left) - expected
        delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
        phase = phase + expected + delta
    return voice._istft(out, int(round(len(x) / rate)))


@pytest.mark.parametrize("rate", [0.7937, 1.0, 1.26, 2.5])
def test_vectorised_voice_transforms_give_the_frame_by_frame_bits(rate):
    # the robustness results are committed: a faster transform must give the same samples, not close ones
    rng = np.random.default_rng(int(rate * 100))
    for x in (vowel(140.0), rng.standard_normal(7001).astype(np.float32)):
        assert np.array_equal(voice.time_stretch(x, rate), _time_stretch_frame_by_frame(x, rate))
        env = voice.envelope(np.abs(voice._stft(x.astype(np.float64))))
        bins = np.arange(env.shape[0], dtype=np.float64)
        per_frame = np.stack([np.interp(bins / rate, bins, env[:, t]) for t in range(env.shape[1])], axis=1)
        assert np.array_equal(voice._warp(env, rate), per_frame)


def test_music_notes_are_the_bits_of_a_tone_made_for_each_note():
    from benchmark.analyses.perturbations import noises

    def made_alone(frequency, samples, sr=SR, partials=8):
        t = np.arange(samples) / sr
        tone = np.zeros(samples)
        for k in range(1, partials + 1):
            if k * frequency < sr / 2:
                tone += np.sin(2 * np.pi * k * frequency * t) / k**1.5
        return tone * np.minimum(1.0, t / 0.01) * np.exp(-t / (0.25 * samples / sr + 0.05))

    # a long note first, then shorter ones cut from the kept tone, then one longer than it
    for frequency, samples in ((261.63, 20000), (261.63, 5601), (261.63, 30000), (7000.0, 999)):
        assert np.array_equal(noises._note(frequency, samples, SR), made_alone(frequency, samples))


def test_model_page_shows_voice_shift_and_per_sex_agreement(tmp_path):
    import json

    from benchmark.docs.distillation import distillation_targets

    scores = {"arousal": 0.9, "dominance": 0.8, "valence": 0.6, "mean": 0.7667}
    report = {
        "split": {"dataset": "demo-msppodcast", "dataset_version": "1.0.0", "split": "test-1"},
        "files": 4,
        "models": {"fp32": {"ccc_vs_teacher": scores}},
        "voice_shift": {
            "conditions": {"pitch+2": scores, "formant-10%": {**scores, "arousal": 0.812}},
            "pooled": {**scores, "arousal": 0.861},
            "worst": scores,
            "files": 4,
        },
        "sex_agreement": {
            "test-1": {
                "split": "test-1",
                "female": {**scores, "files": 2},
                "male": {**scores, "arousal": 0.85, "files": 2},
                "gap": {"arousal": 0.05, "dominance": 0.0, "valence": 0.0, "mean": 0.0167},
            }
        },
    }
    (tmp_path / "targets.json").write_text(json.dumps(report))
    text = distillation_targets(tmp_path / "targets.json")
    assert "| formant-10%       |     0.812 |" in text
    assert "| all shifts pooled |     0.861 |" in text
    assert "test-1, male (2 files)" in text and "| test-1, gap female − male |     0.050 |" in text
    # a report without them (the other students' records) shows neither
    del report["voice_shift"], report["sex_agreement"]
    (tmp_path / "targets.json").write_text(json.dumps(report))
    assert "Voice shifts" not in distillation_targets(tmp_path / "targets.json")
