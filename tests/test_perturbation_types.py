"""The spectral-tilt, music, environmental, mic-position and voice-shift conditions on known signals.

The voice transforms themselves (:mod:`benchmark.analyses.perturbations.voice`) are tested in test_voice.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from benchmark.analyses import perturbations as P
from benchmark.analyses.perturbations import noises
from benchmark.analyses.perturbations import voice as VT
from benchmark.analyses.pitch import median_f0

SR = 16000


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))


def condition(kind: str, **parameters) -> dict:
    return {"name": kind, "group": "test", "type": kind, "parameters": parameters}


def voice(seconds: float = 2.0, f0: float = 150.0, formant_hz: float = 1000.0) -> np.ndarray:
    r"""Harmonic voice with a little vibrato through one resonance, (1, n)."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 40) if k * f0 * 1.03 < SR / 2)
    b, a = scipy.signal.iirpeak(formant_hz, 5, SR)
    x = scipy.signal.lfilter(b, a, x)
    return (0.3 * x / np.max(np.abs(x)))[np.newaxis].astype("float32")


def welch_db(x, nperseg: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    f, p = scipy.signal.welch(np.asarray(x, dtype="float64").reshape(-1), SR, nperseg=nperseg)
    return f, 10 * np.log10(p + 1e-30)


def log_frequency_shift(x, y, around: float) -> float:
    r"""Frequency ratio that best maps the spectrum of ``x`` onto that of ``y``, an octave either side of ``around``.

    The whole resonance counts, not its highest bin: the argmax of a noise spectrum jumps by bins.
    """
    f, before = welch_db(x, 2048)
    _, after = welch_db(y, 2048)
    grid = np.geomspace(around / 2, around * 2, 400)
    reference = np.interp(grid, f, before)
    ratios = np.geomspace(0.8, 1.25, 401)
    fits = [np.corrcoef(reference, np.interp(grid * r, f, after))[0, 1] for r in ratios]
    return float(ratios[int(np.argmax(fits))])


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype="float64") ** 2)))


@pytest.mark.parametrize("tilt", [3.0, -3.0, 6.0])
def test_spectral_tilt_of_white_noise(tilt):
    x = np.random.default_rng(0).normal(scale=0.1, size=(1, 4 * SR)).astype("float32")
    y = P.perturb(x, SR, condition("spectral-tilt", tilt_db_per_octave=tilt), seed=0)
    f, before = welch_db(x)
    _, after = welch_db(y)
    band = (f > 200) & (f < 6000)
    slope = np.polyfit(np.log2(f[band]), after[band] - before[band], 1)[0]
    assert slope == pytest.approx(tilt, abs=0.1)  # dB per octave
    below = (f > 10) & (f < 80)  # held at low_hz: flat there
    assert np.ptp(after[below] - before[below]) < 3
    assert y.shape == x.shape and rms(y) == pytest.approx(rms(x), rel=1e-3)


@pytest.mark.parametrize("semitones", [-4, -2, 2, 4])
def test_pitch_shift_moves_f0_by_semitones(semitones):
    x = voice()
    y = P.perturb(x, SR, condition("pitch-shift", semitones=semitones), seed=0)
    assert y.shape == x.shape
    measured = 12 * np.log2(median_f0(y, SR) / median_f0(x, SR))
    assert measured == pytest.approx(semitones, abs=0.15)


def test_pitch_shift_keeps_the_formant():
    x = voice(f0=120.0, formant_hz=1500.0)
    y = VT.pitch_shift(x[0], 4, SR)
    f, before = welch_db(x)
    _, after = welch_db(y)
    # envelope peak (smoothed over harmonics) stays at the resonance
    smooth = np.ones(41) / 41
    peak = f[np.argmax(np.convolve(after, smooth, mode="same"))]
    assert peak == pytest.approx(f[np.argmax(np.convolve(before, smooth, mode="same"))], rel=0.08)


@pytest.mark.parametrize("factor", [0.9, 1.1])
@pytest.mark.parametrize("resonance", [1000.0, 2000.0])
def test_formant_shift_moves_a_resonance(factor, resonance):
    noise = np.random.default_rng(1).normal(size=3 * SR)
    b, a = scipy.signal.iirpeak(resonance, 8, SR)
    x = (0.1 * scipy.signal.lfilter(b, a, noise))[np.newaxis].astype("float32")
    y = P.perturb(x, SR, condition("formant-shift", factor=factor), seed=0)
    assert log_frequency_shift(x, y, resonance) == pytest.approx(factor, abs=0.015)


def test_formant_shift_keeps_f0_and_level():
    x = voice()
    y = VT.formant_shift(x[0], 1.1, SR)
    assert 12 * np.log2(median_f0(y, SR) / median_f0(x, SR)) == pytest.approx(0, abs=0.05)
    assert rms(y) == pytest.approx(rms(x), rel=1e-3)


VOICE_SHIFT_CONDITIONS = {
    "pitch-4": "pitch-down-4st",
    "pitch-2": "pitch-down-2st",
    "pitch+2": "pitch-up-2st",
    "pitch+4": "pitch-up-4st",
    "formant-10%": "formant-down-10pct",
    "formant+10%": "formant-up-10pct",
}
"""The distillation proxy's voice shifts and the conditions.yaml entry of each."""


def test_voice_shift_conditions_and_the_distillation_proxy_run_the_same_transform():
    conditions = {c["name"]: c for c in P.load_conditions()}
    assert set(VOICE_SHIFT_CONDITIONS) == set(VT.VOICE_SHIFTS)
    assert {c["name"] for c in conditions.values() if c["group"] == "voice-shift"} == set(
        VOICE_SHIFT_CONDITIONS.values()
    )
    x = voice(seconds=1.0)
    for shift, name in VOICE_SHIFT_CONDITIONS.items():
        kind, value = VT.VOICE_SHIFTS[shift]
        cond = conditions[name]
        assert cond["parameters"] == ({"semitones": value} if kind == "pitch" else {"factor": value})
        y = P.perturb(x, SR, cond, seed=7)
        expected = VT.voice_shift(x[0], shift, SR)
        assert y.dtype == expected.dtype and np.array_equal(y[0], expected), name
        assert not np.allclose(y[0], x[0], atol=1e-3)  # and it did shift
    for name in ("spectral-tilt-up", "spectral-tilt-down"):
        params = conditions[name]["parameters"]
        y = P.perturb(x, SR, conditions[name], seed=7)
        expected = VT.tilt(x[0], params["tilt_db_per_octave"], SR, pivot_hz=params["pivot_hz"], low_hz=params["low_hz"])
        assert np.array_equal(y[0], expected), name


@pytest.mark.parametrize("kind", ["music", "environmental"])
@pytest.mark.parametrize("snr_db", [20, 0])
def test_background_sounds_at_their_snr_and_seeded(kind, snr_db):
    x = voice()
    cond = condition(kind, snr_db=snr_db)
    y = P.perturb(x, SR, cond, seed=5)
    noise = y - x
    assert 10 * np.log10(rms(x) ** 2 / rms(noise) ** 2) == pytest.approx(snr_db, abs=0.1)
    assert np.array_equal(y, P.perturb(x, SR, cond, seed=5))  # same file seed, same sound
    assert not np.array_equal(y, P.perturb(x, SR, cond, seed=6))


def test_music_is_tonal_and_environment_is_not():
    # music: spectral lines (notes) far above their neighbourhood; the scenes are noise-like
    def line_db(x):
        f, p = scipy.signal.welch(x, SR, nperseg=2048)
        band = (f > 50) & (f < 700)  # below every scene's cut-off
        return float(np.max(10 * np.log10(p[band] / scipy.signal.medfilt(p, 31)[band])))

    music = [line_db(noises.music(3 * SR, SR, np.random.default_rng(s))) for s in range(3)]
    scenes = [line_db(noises.environmental(3 * SR, SR, np.random.default_rng(s))) for s in range(3, 9)]
    assert min(music) > 15
    assert max(scenes) < 11  # chance peaks of a 46-segment Welch average


def test_every_scene_is_drawn():
    drawn = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        drawn.add(noises.SCENES[int(rng.integers(len(noises.SCENES)))])
    assert drawn == set(noises.SCENES)


def test_mic_position_far_is_more_reverberant_in_the_same_rooms(tmp_path):
    import audiofile

    room = {"rooms": 3, "rt60_s": 0.5, "length_m": 8.0, "width_m": 6.0, "height_m": 3.0}
    near = condition("mic-position", distance_m=0.4, **room)
    far = condition("mic-position", distance_m=3.5, **room)

    def arrival(r):  # first sample of the direct path (reflections may sum to a higher peak later)
        return int(np.argmax(np.abs(r) > 0.2 * np.max(np.abs(r))))

    def drr(r):  # direct-to-reverberant ratio of an impulse response, dB
        onset, half = arrival(r), int(0.0025 * SR)
        return 10 * np.log10(np.sum(r[max(0, onset - half) : onset + half] ** 2) / np.sum(r[onset + half :] ** 2))

    near_rirs = P.rir_bank(tmp_path / "near", near, seed=0)
    far_rirs = P.rir_bank(tmp_path / "far", far, seed=0)
    for a, b in zip(near_rirs, far_rirs):
        r_near, r_far = audiofile.read(a)[0], audiofile.read(b)[0]
        assert drr(r_near) > drr(r_far) + 6
        # the microphone moved 3.1 m further from the same talker: the direct sound arrives later
        assert (arrival(r_far) - arrival(r_near)) / SR * 343 == pytest.approx(3.1, abs=0.3)
    x = voice()
    y = P.perturb(x, SR, far, seed=3, rir_files=far_rirs)
    assert y.shape == x.shape and rms(y) == pytest.approx(rms(x), rel=0.01)


def test_new_conditions_validate():
    errors = P.validate_condition(condition("formant-shift", factor=-1.1))
    assert errors == ["parameter 'factor': must be > 0"]
    assert P.validate_condition(condition("mic-position"))  # distance missing
    assert P.validate_condition(condition("pitch-shift", semitones=[2, "x"]))
    assert not P.validate_condition(condition("spectral-tilt", tilt_db_per_octave=-3))
    # the voice transforms' own ranges, reported when the file is loaded rather than mid-run
    assert P.validate_condition(condition("pitch-shift", semitones=[2, 13])) == [
        "parameter 'semitones': pitch shift, must be within -12..12 semitones"
    ]
    assert P.validate_condition(condition("formant-shift", factor=2.5)) == [
        "parameter 'factor': formant factor, must be within 0.5..2 (1.1 is +10 %)"
    ]


def test_committed_conditions_include_the_new_groups():
    conditions = {c["name"]: c for c in P.load_conditions()}
    groups = {c["group"] for c in conditions.values()}
    assert "voice-shift" in groups
    for name, group in [
        ("spectral-tilt-up", "small-changes"),
        ("spectral-tilt-down", "small-changes"),
        ("music-20db", "background-noise"),
        ("environmental-20db", "background-noise"),
        ("mic-near", "channel"),
        ("mic-far", "channel"),
        ("pitch-up-4st", "voice-shift"),
        ("formant-down-10pct", "voice-shift"),
    ]:
        assert conditions[name]["group"] == group


@pytest.mark.parametrize("name", ["music-20db", "environmental-20db", "mic-far", "pitch-up-2st"])
def test_new_conditions_materialize_reproducibly_per_file(tmp_path, monkeypatch, name):
    import audiofile

    root = tmp_path / "db"
    files = []
    for i in range(3):
        path = root / "wav" / f"s{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        audiofile.write(str(path), voice(seconds=0.6, f0=120 + 30 * i)[0], SR)
        files.append(str(path))
    cond = next(c for c in P.load_conditions() if c["name"] == name)
    first = P.materialize(files, cond, root_key="tiny-1.0.0", seed=0, root=root)
    assert len(first) == 3 and not first.attrs["skipped"]
    # another cache and the reverse order: the same bytes, so each file's draw is its own
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "other-cache"))
    again = P.materialize(files[::-1], cond, root_key="tiny-1.0.0", seed=0, root=root, workers=1)
    for file in files:
        assert open(again[file], "rb").read() == open(first[file], "rb").read()
        assert audiofile.read(first[file])[0].shape == audiofile.read(file)[0].shape


def test_opt_in_conditions_run_only_when_selected(tmp_path):
    from benchmark.analyses import robustness
    from benchmark.analyses.perturbations import ConditionError, load_conditions, validate_condition

    conditions = load_conditions()
    # the committed models were re-run with every condition: a default run has them all
    assert len(robustness.select_conditions(conditions, None)) == len(conditions) == 38
    path = tmp_path / "conditions.yaml"
    path.write_text(
        "conditions:\n"
        "  - {name: quiet, group: small-changes, type: gain, parameters: {gain_db: -6}}\n"
        "  - {name: loud, group: extra, type: gain, parameters: {gain_db: 6}, default: false}\n"
    )
    custom = load_conditions(path)
    assert [c["name"] for c in robustness.select_conditions(custom, None)] == ["quiet"]
    assert [c["name"] for c in robustness.select_conditions(custom, ["extra"])] == ["loud"]
    assert {c["name"] for c in robustness.select_conditions(conditions, ["voice-shift"])} == {
        c["name"] for c in conditions if c["group"] == "voice-shift"
    }
    assert len(robustness.select_conditions(conditions, "all")) == len(conditions)
    assert validate_condition(
        {"name": "g", "group": "x", "type": "gain", "parameters": {"gain_db": 1}, "default": "no"}
    ) == ["field 'default': true (run by default) or false (run only when selected)"]
    with pytest.raises(ConditionError):
        robustness.select_conditions(conditions, ["no-such-group"])
