"""Paths users rely on, driven as users drive them: ``benchmark.cli.main`` or ``python -m benchmark``.

Each expectation is worked out here from the inputs (file counts, signals,
written tables), not taken from the code that produces the output.
"""

from __future__ import annotations

import doctest
import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import audb
import audiofile
import numpy as np
import pandas as pd
import pytest
import scipy.signal
import yaml
from conftest import build_database, copy_demo, publish

from benchmark import cli, numerics, runner
from benchmark import registry as model_registry
from benchmark.analyses.perturbations import conditions as condition_file
from benchmark.data import datasets as dsets
from benchmark.models.baselines import RandomGaussian
from benchmark.paths import PROJECT_ROOT
from benchmark.registry import Registry, load_model
from benchmark.results import PROVENANCE

WEIGHTS = PROJECT_ROOT / "weights"
WAV2SMALL = next(
    m for m in yaml.safe_load((PROJECT_ROOT / "models.yaml").read_text())["models"] if m["name"] == "wav2small"
)
MODELS = f"""
models:
  - name: wav2small
    kind: audonnx
    role: student
    source: {{path: {WEIGHTS / "wav2small"}, sha256: {WAV2SMALL["source"]["sha256"]}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: the project's Wav2Small
  - name: constant
    kind: constant
    role: baseline
    source: {{}}
    params: {{value: 0.5}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: always 0.5
  - name: random-gaussian
    kind: random
    role: baseline
    source: {{}}
    params: {{seed: 0}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: seeded Gaussian draws
"""


@pytest.fixture()
def models_yaml(tmp_path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS)
    return path


def run_cli(*argv: str) -> int:
    return cli.main([str(a) for a in argv])


def snapshot(folder: Path) -> dict[str, str]:
    r"""Every file below ``folder`` and a digest of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def table(path: Path) -> pd.DataFrame:
    r"""A result table without the columns that say when and how fast it was made."""
    df = pd.read_csv(path, dtype=str)
    return df.drop(columns=[c for c in (*PROVENANCE, "wall_seconds") if c in df])


# ---------------------------------------------------------------- registry files with a YAML syntax error

BROKEN_YAML = "{top}:\n  - name: x\n    kind: [unclosed\n"  # the flow sequence opened on line 3 never closes


@pytest.mark.parametrize("registry", ["models", "datasets", "thresholds"])
def test_a_yaml_syntax_error_names_the_file_and_line(registry, tmp_path, capsys):
    path = tmp_path / f"{registry}.yaml"
    path.write_text(BROKEN_YAML.format(top="models" if registry == "models" else registry))
    argv = {
        "models": ["list", "--models"],
        "datasets": ["list", "--datasets"],
        "thresholds": ["report", "--thresholds"],
    }
    code = run_cli(*argv[registry], path)
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE, err
    assert f"error: {path}: not valid YAML" in err and "line 3" in err
    assert "Traceback" not in err


def test_a_yaml_syntax_error_in_conditions_names_the_file_and_line(use_demo, tmp_path, monkeypatch, capsys):
    # conditions.yaml is read from the project folder: a checkout whose file has a syntax error
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "conditions.yaml").write_text(BROKEN_YAML.format(top="conditions"))
    monkeypatch.setattr(condition_file, "PROJECT_ROOT", checkout)
    code = run_cli(
        "run", "--model", "constant", "--dataset", "mosi", "--tests", "robustness", "--no-progress", "--no-docs",
        "--results", tmp_path / "results",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code != cli.EXIT_OK
    assert f"{checkout / 'conditions.yaml'}: not valid YAML" in out + err and "line 3" in out + err
    assert "Traceback" not in err


# ---------------------------------------------------------------- --results DIR keeps docs/ as it is


def test_results_elsewhere_never_reach_docs(use_demo, tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# the user's docs\n")
    monkeypatch.setenv("SER_BENCHMARK_DOCS", str(docs))
    project = {name: snapshot(PROJECT_ROOT / name) for name in ("docs", "results")}
    elsewhere = tmp_path / "elsewhere"
    # non-default settings (another seed and bootstrap), and no --no-docs
    code = run_cli(
        "run", "--model", "constant", "--dataset", "mosi", "--tests", "correctness", "--bootstrap", "30", "--seed",
        "7", "--no-progress", "--results", elsewhere,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    rows = pd.read_csv(elsewhere / "correctness.csv")
    assert set(rows["model"]) == {"constant"} and set(rows["dataset"]) == {"demo-mosi"}
    assert snapshot(docs) == {"index.md": hashlib.sha256(b"# the user's docs\n").hexdigest()}
    assert {name: snapshot(PROJECT_ROOT / name) for name in ("docs", "results")} == project
    assert "docs/ not regenerated" in out


# ---------------------------------------------------------------- resume of the local executor


INTERRUPT = {"after": None, "calls": 0, "lock": threading.Lock()}
"""The interrupting model's switch: a KeyboardInterrupt, as Ctrl-C raises, on the call after ``after``."""


class Interrupting(RandomGaussian):
    r"""Seeded random predictions that stop like Ctrl-C after ``INTERRUPT['after']`` calls."""

    def predict(self, signal: np.ndarray) -> np.ndarray:
        with INTERRUPT["lock"]:
            INTERRUPT["calls"] += 1
            stop = INTERRUPT["after"] is not None and INTERRUPT["calls"] > INTERRUPT["after"]
        if stop:
            raise KeyboardInterrupt
        return super().predict(signal)


def load(entry, registry=None) -> Interrupting:
    r"""Loader of the registry kind ``interrupting`` (registered by the test that uses it)."""
    return Interrupting(entry.name, "1" * 64, sampling_rate=entry.sampling_rate)


def stored_predictions(cache: Path) -> int:
    r"""Files the prediction store on disk holds a prediction for (``predictions/**/predictions.csv``)."""
    return sum(len(pd.read_csv(p)) for p in (cache / "predictions").rglob("predictions.csv"))


def test_an_interrupted_local_run_resumes_where_it_stopped(demo_cache, tmp_path, monkeypatch):
    monkeypatch.setitem(model_registry.KINDS, "interrupting", (__name__, set()))
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - name: stopper\n    kind: interrupting\n    role: baseline\n    source: {}\n"
        "    sampling_rate: 16000\n    outputs: {arousal: arousal, dominance: dominance, valence: valence}\n"
        "    description: seeded draws that stop like Ctrl-C\n"
    )
    argv = ["run", "--model", "stopper", "--models", models, "--dataset", "mosi", "iemocap", "--tests", "correctness"]
    argv += ["--bootstrap", "20", "--workers", "1", "--no-progress", "--no-docs"]

    def run(cache: Path, results: Path, after: int | None) -> int | None:
        monkeypatch.setenv("SER_BENCHMARK_CACHE", str(cache))
        INTERRUPT.update(after=after, calls=0)
        code = run_cli(*argv, "--results", results)
        if code == cli.EXIT_INTERRUPTED:  # Ctrl-C ends the command with 130, keeping what finished
            return None
        assert code == cli.EXIT_OK
        return INTERRUPT["calls"]

    monkeypatch.setitem(INTERRUPT, "after", None)  # the switch is off again after the test
    whole = run(copy_demo(demo_cache, tmp_path / "cache-whole"), tmp_path / "whole", None)
    assert whole is not None and stored_predictions(tmp_path / "cache-whole") == whole  # one call a file
    # two cells (one per corpus), each under the runner's chunk of cache writes: the interrupt, 3 files before the
    # end, comes in the second cell, after the first was stored whole
    cache = copy_demo(demo_cache, tmp_path / "cache")
    assert run(cache, tmp_path / "resumed", whole - 3) is None
    stored = stored_predictions(cache)
    assert 0 < stored < whole - 3
    rest = run(cache, tmp_path / "resumed", None)
    assert rest == whole - stored  # only the files the store did not hold yet
    for name in ("correctness.csv", "distribution.csv"):
        pd.testing.assert_frame_equal(table(tmp_path / "resumed" / name), table(tmp_path / "whole" / name))
    made = snapshot(tmp_path / "whole" / "predictions")
    assert made and snapshot(tmp_path / "resumed" / "predictions") == made


# ---------------------------------------------------------------- other sample rates, stereo, a missing file

RATES = {"mono16k": (16000, 1), "mono8k": (8000, 1), "stereo44k": (44100, 2)}


def test_the_same_signal_at_other_rates_and_in_stereo_predicts_alike(models_yaml, tmp_path):
    host = tmp_path / "host"
    repo = audb.Repository("rates", str(host), "file-system")
    (host / repo.name).mkdir(parents=True)
    entries = []
    for variant, (rate, channels) in RATES.items():
        build = tmp_path / f"build-{variant}"
        build_database(build, name=f"rates-{variant}", n_speakers=2, per_speaker=4)
        for wav in (build / "audio").glob("*.wav"):
            x, sr = audiofile.read(str(wav))
            # the tones' harmonics stay below 1.2 kHz: a 4 kHz low-pass first, so 8 kHz holds the same signal
            x = scipy.signal.sosfiltfilt(scipy.signal.butter(8, 3500, fs=sr, output="sos"), x)
            g = math.gcd(rate, sr)
            y = scipy.signal.resample_poly(x, rate // g, sr // g).astype(np.float32)
            audiofile.write(str(wav), np.stack([y] * channels) if channels > 1 else y, rate)
        publish(build, "1.0.0", repo, cache_root=str(tmp_path / "publish-cache"))
        entries.append(
            f"""  - name: {variant}
    audb: rates-{variant}
    version: 1.0.0
    splits: {{test-1: emotion.dimensions.test-1.gold_standard}}
    labels: {{arousal: arousal, dominance: dominance, valence: valence}}
    label_range: [1, 7]
    speaker: {{table: files, column: speaker}}
    sex: {{table: speaker, column: gender}}
"""
        )
    datasets = tmp_path / "datasets.yaml"
    datasets.write_text("datasets:\n" + "".join(entries))
    results = tmp_path / "results"
    code = run_cli(
        "run", "--model", "wav2small", "--models", models_yaml, "--datasets", datasets, "--data", "real",
        "--repository", f"rates={host}", "--tests", "correctness", "--bootstrap", "20", "--no-progress",
        "--results", results,
    )  # fmt: skip
    assert code == cli.EXIT_OK
    predictions = {}
    for variant in RATES:
        (path,) = (results / "predictions").rglob(f"rates-{variant}__*.csv")
        predictions[variant] = pd.read_csv(path, index_col="file")[["pred_arousal", "pred_dominance", "pred_valence"]]
    reference = predictions["mono16k"]
    assert len(reference) == 4 and reference.std().gt(0).any()  # 4 files of test-1, not all predicted alike
    spread = reference.max() - reference.min()  # between files, per dimension
    # A dimension on which the model hardly tells these four tones apart says nothing about rates: a quarter of
    # its spread is below resampling's own effect (the teacher spreads dominance over 0.07 only).
    told_apart = spread[spread >= 0.1].index
    assert len(told_apart)
    # 44.1 kHz stereo holds the 16 kHz signal twice over: only resampling's rounding is left, within 0.03.
    # (measured: below 0.001; 0.019 before Wav2Small's log-mel had its -60 dB floor: the 3.5 kHz low-pass leaves the mel
    # bands above it at rounding noise, which the log turns into dB that move).
    # 8 kHz is resampled down here and up again by the runner: near 4 kHz the two filters differ; within 0.12
    # (measured: 0.052, valence; 0.104 before), and less than a quarter of what tells the files apart.
    for variant, tolerance in (("stereo44k", 0.03), ("mono8k", 0.12)):
        assert list(predictions[variant].index) == list(reference.index)
        difference = (predictions[variant] - reference).abs()
        assert difference.max().max() < tolerance, (variant, difference.max())
        assert (difference.max()[told_apart] < 0.25 * spread[told_apart]).all(), (variant, difference.max(), spread)


def test_a_gold_file_missing_from_disk(models_yaml, tmp_path, capsys, monkeypatch):
    host = tmp_path / "host"
    repo = audb.Repository("lossy", str(host), "file-system")
    (host / repo.name).mkdir(parents=True)
    build_database(tmp_path / "build", name="lossy")
    publish(tmp_path / "build", "1.0.0", repo, cache_root=str(tmp_path / "publish-cache"))
    datasets = tmp_path / "datasets.yaml"
    datasets.write_text(
        """datasets:
  - name: lossy
    audb: lossy
    version: 1.0.0
    splits: {test-1: emotion.dimensions.test-1.gold_standard, test-2: emotion.dimensions.test-2.gold_standard}
    labels: {arousal: arousal, dominance: dominance, valence: valence}
    label_range: [1, 7]
    speaker: {table: files, column: speaker}
    sex: {table: speaker, column: gender}
"""
    )
    evalset = dsets.load_split(
        "lossy", "test-1", data="real", repositories=[repo], registry=dsets.load_registry(datasets)
    )
    gone = Path(evalset.files[2])
    # lost from the loaded corpus and from the repository, so audb cannot fetch it again
    monkeypatch.setattr(audb.config, "REPOSITORIES", [repo])  # the loader restores audb's own after loading
    deps = audb.dependencies("lossy", version="1.0.0", cache_root=str(tmp_path / "publish-cache"))
    archive = deps.archive(gone.relative_to(evalset.root).as_posix())
    (lost,) = (host / repo.name).rglob(f"{archive}.zip")
    lost.unlink()
    gone.unlink()
    code = run_cli(
        "run", "--model", "random-gaussian", "--models", models_yaml, "--datasets", datasets, "--data", "real",
        "--repository", f"lossy={host}", "--tests", "correctness", "--no-progress", "--results", tmp_path / "results",
    )  # fmt: skip
    captured = capsys.readouterr()
    # audb restores what the cache lacks; what the repository lost too cannot be had: the dataset is reported
    # and skipped with a clear message, no traceback, and the run ends non-zero
    assert code == cli.EXIT_FAILURES and "Traceback" not in captured.err
    assert "Dataset 'lossy': lossy 1.0.0 cannot be loaded: a file is missing from its repository" in captured.out
    assert archive in captured.out and "Publish the version again" in captured.out
    # a file gone after loading (the cache emptied under a running benchmark) is a recorded skip; the others are scored
    model = load_model("random-gaussian", Registry.from_file(models_yaml))
    pred, skips = runner.predict(model, evalset, progress=False)
    assert list(skips.index) == [str(gone)] and skips["reason"].iloc[0]
    assert list(pred.index) == [f for f in evalset.files if f != str(gone)]


# ---------------------------------------------------------------- report, efficiency, perf


def test_report_judges_a_run_and_writes_the_summary(use_demo, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    argv = ["run", "--model", "constant", "--dataset", "mosi", "--tests", "correctness", "--bootstrap", "20"]
    assert run_cli(*argv, "--no-progress", "--no-docs", "--results", results) == cli.EXIT_OK
    (results / "summary.csv").unlink()  # made again by the command under test
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(results))
    capsys.readouterr()
    assert run_cli("report") == cli.EXIT_OK
    out = capsys.readouterr().out
    summary = pd.read_csv(results / "summary.csv").set_index("model")
    # demo-mosi has valence only: ccc, pearson, mae and jensen-shannon on it
    row = summary.loc["constant"]
    assert row["tests"] == 4 and row[["passed", "undecided", "failed", "not_scored"]].sum() == 4
    (per_file,) = (results / "predictions").rglob("*.csv")
    truth = pd.read_csv(per_file)["truth_valence"].to_numpy()
    # a constant 0.5 has CCC 0, which fails >= 0.5; its MAE passes <= 0.1 only if the gold stays near the middle
    mae_passes = np.abs(truth - 0.5).mean() <= 0.1
    assert row["passed"] == int(mae_passes) and row["failed"] >= 1 + (not mae_passes)
    assert "constant" in out


def test_efficiency_measures_registered_models(models_yaml, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SER_BENCHMARK_RESULTS", str(tmp_path / "results"))
    code = run_cli("efficiency", "--model", "wav2small", "constant", "--repeats", "3", "--models", models_yaml)
    assert code == cli.EXIT_OK
    rows = pd.read_csv(tmp_path / "results" / "efficiency.csv").set_index("model")
    assert sorted(rows.index) == ["constant", "wav2small"]
    assert (rows["threads"] == 1).all() and (rows["repeats"] == 3).all()
    assert np.allclose(rows["xrt"] * rows["ms_per_5s"], 5000.0)  # one median, two ways of saying it
    onnx = sorted((WEIGHTS / "wav2small").glob("*.onnx"))
    assert rows.loc["wav2small", "onnx_bytes"] == sum(p.stat().st_size for p in onnx)
    assert rows.loc["wav2small", "model_sha256"] == WAV2SMALL["source"]["sha256"]
    assert math.isnan(rows.loc["constant", "onnx_bytes"])
    assert "wav2small" in capsys.readouterr().out


def perf_script():
    r"""``scripts/perf.py`` (a developer benchmark, not a package module), loaded as ``python scripts/perf.py`` runs it."""
    spec = importlib.util.spec_from_file_location("perf_script", PROJECT_ROOT / "scripts" / "perf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perf_script_examples_hold():
    outcome = doctest.testmod(perf_script(), optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert outcome.attempted >= 2 and outcome.failed == 0


def test_perf_is_a_script_not_a_command(capsys):
    with pytest.raises(SystemExit) as ex:
        cli.main(["perf"])
    assert ex.value.code == cli.EXIT_USAGE and "invalid choice: 'perf'" in capsys.readouterr().err


def test_perf_compares_the_executors_on_a_scratch_cache(own_demo, monkeypatch, capsys):
    pytest.importorskip("ray", reason="perf times the Ray executor: pip install -e '.[test,ray]'")
    private = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must stay under 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", private)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert not (own_demo / "predictions").exists()
    try:
        code = perf_script().main(
            ["--model", "wav2small", "--dataset", "mosi", "--split", "test", "--threads", "1",
             "--replicas", "1", "--repeats", "1"]
        )  # fmt: skip
    finally:
        shutil.rmtree(private, ignore_errors=True)
    out = capsys.readouterr().out
    assert code == 0, out
    n = len(dsets.load_split("mosi", "test", data="demo").files)
    assert f"perf: wav2small on demo-mosi/test, {n} files" in out
    for what in ("raw onnxruntime", "local executor", "ray executor, 1 replica(s)"):
        assert any(what in line and "files/s" in line for line in out.splitlines()), what
    assert "local / raw onnxruntime (1 thread)" in out and "ray 1 replica / local" in out
    assert not (own_demo / "predictions").exists()  # the timed runs' predictions went to a scratch cache
    assert os.environ["SER_BENCHMARK_CACHE"] == str(own_demo)


# ---------------------------------------------------------------- python -m benchmark distill, as users start it


def console_script():
    r"""The function ``[project.scripts]`` of pyproject.toml names for ``ser-benchmark``."""
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    scripts = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    (target,) = re.findall(r'^ser-benchmark\s*=\s*"([^"]+)"', scripts, flags=re.MULTILINE)
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def test_the_console_script_runs_the_commands(capsys):
    assert console_script()(["list"]) == cli.EXIT_OK
    assert "wav2small" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ex:
        console_script()(["frobnicate"])
    assert ex.value.code == cli.EXIT_USAGE


@pytest.mark.skipif(numerics.supported() is not None, reason=f"no portable numerics here: {numerics.supported()}")
def test_the_console_script_restarts_distill_as_python_m_benchmark_does(monkeypatch):
    for name in [*numerics.PORTABLE_ENV, "SER_BENCHMARK_NUMERICS"]:
        monkeypatch.delenv(name, raising=False)
    started = []

    class Restarted(Exception):
        pass

    def execve(path, args, env):
        started.append((path, args, env))
        raise Restarted  # the real one never returns

    monkeypatch.setattr(os, "execve", execve)
    with pytest.raises(Restarted):
        console_script()(["distill", "--epochs", "1"])
    ((path, args, env),) = started
    assert path == sys.executable and args == [sys.executable, "-m", "benchmark", "distill", "--epochs", "1"]
    assert all(env[k] == v for k, v in numerics.PORTABLE_ENV.items()) and env["SER_BENCHMARK_NUMERICS"] == "portable"


@pytest.mark.skipif(numerics.supported() is not None, reason=f"no portable numerics here: {numerics.supported()}")
def test_python_m_benchmark_distill_restarts_into_the_portable_numerics(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        t = np.arange(int(16000 * (0.6 + 0.1 * i))) / 16000
        x = 0.05 * (i + 1) * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.01 * rng.normal(size=t.size)
        audiofile.write(str(pool / f"f{i}.wav"), x.astype(np.float32), 16000)
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    out = tmp_path / "student"
    env = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV and k != "SER_BENCHMARK_NUMERICS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PROJECT_ROOT), env.get("PYTHONPATH"))))
    argv = ["--student", "wav2small-17k", "--teacher", "random-gaussian", "--data", pool, "--out", out]
    argv += ["--models", models, "--epochs", "1", "--batch-size", "4", "--crop-seconds", "0.5", "--variants", "1"]
    argv += ["--gold", "none", "--no-register", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "distill", *map(str, argv)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = json.loads((out / "provenance.json").read_text())["numerics"]
    # started without any of the profile's settings: only the restart can have put them in place
    assert record["profile"] == "portable", record
    assert record["env"] and all(k in numerics.PORTABLE_ENV for k in record["env"])
    assert (out / "model.onnx").is_file() and (tmp_path / "student-int8" / "model.onnx").is_file()
