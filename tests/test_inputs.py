"""Inputs a careless or hostile user gives the ``run`` command: each ends in a clear message, nothing written.

Driven through :func:`benchmark.cli.main` (or ``python -m benchmark`` where the
process matters) on ``testcorpus``, published to a file-system audb repository
(conftest ``audb_repository``), as in ``tests/test_cli.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import BASELINES_YAML

from benchmark import cli, interrupts, results
from benchmark.data import datasets as dsets

ROOT = Path(__file__).resolve().parents[1]

REGISTRY = (
    BASELINES_YAML.rstrip("\n")
    + """
  - name: huge
    kind: constant
    role: baseline
    source: {}
    params: {value: [1.0e9, 0.5, -3.0]}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: arousal 1e9, valence -3, far off the 0..1 scale
  - name: overshoot
    kind: constant
    role: baseline
    source: {}
    params: {value: [1.9, 0.5, -0.9]}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: a little past the ends of the scale, as regression heads are
  - name: point-one
    kind: constant
    role: baseline
    source: {}
    params: {value: 0.1}
    sampling_rate: 16000
    outputs: {arousal: arousal, dominance: dominance, valence: valence}
    description: 0.1 for every file (whose standard deviation rounds to 1e-17)
"""
)


@pytest.fixture()
def setup(tmp_path, dataset_registry, audb_repository):
    r"""Model and dataset registry files and the ``--repository`` argument."""
    models = tmp_path / "models.yaml"
    models.write_text(REGISTRY)
    return {
        "models": str(models),
        "datasets": str(tmp_path / "datasets.yaml"),  # written by the dataset_registry fixture
        "repository": f"{audb_repository.name}={audb_repository.host}",
    }


def run_args(setup, *models: str, extra: tuple = ()) -> list[str]:
    r"""``run`` on testcorpus test-1, correctness only unless ``extra`` says else."""
    args = [
        "run",
        "--model",
        *models,
        "--models",
        setup["models"],
        "--datasets",
        setup["datasets"],
        "--data",
        "real",
        "--repository",
        setup["repository"],
        "--split",
        "test-1",
        "--bootstrap",
        "20",
        "--no-docs",
        "--no-progress",
    ]
    if "--tests" not in extra:
        args += ["--tests", "correctness"]
    return args + list(extra)


def results_dir() -> Path:
    return Path(os.environ["SER_BENCHMARK_RESULTS"])


def written() -> list[str]:
    r"""Every file under the results folder (none if it does not exist)."""
    root = results_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def predicted_models() -> list[str]:
    r"""Models that have anything in the prediction cache."""
    folder = Path(os.environ["SER_BENCHMARK_CACHE"]) / "predictions"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------------ options checked up front


@pytest.mark.parametrize(
    "extra, option",
    [
        (("--max-files", "-5"), "--max-files"),
        (("--bootstrap", "0"), "--bootstrap"),
        (("--bootstrap", "-3"), "--bootstrap"),
        (("--replicas", "0"), "--replicas"),
        (("--workers", "0"), "--workers"),
        (("--batch-size", "0"), "--batch-size"),
        (("--gpus-per-replica", "-1"), "--gpus-per-replica"),
        (("--ray-timeout", "0"), "--ray-timeout"),
        (("--bootstrap", "many"), "--bootstrap"),
    ],
)
def test_bad_counts_are_usage_errors_before_any_work(setup, capsys, extra, option):
    with pytest.raises(SystemExit) as ex:
        cli.main(run_args(setup, "constant", extra=extra))
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: give" in err and "usage: python -m benchmark run" in err
    assert written() == [] and predicted_models() == []


@pytest.mark.parametrize(
    "extra, needles",
    [
        (
            ("--tests", "robustness", "--conditions", "gain+6"),
            ("--conditions: Unknown condition(s) ['gain+6']", "Groups:"),
        ),
        (
            ("--dataset", "nope"),
            ("--dataset: Unknown dataset 'nope'. Registered: testcorpus", "add an entry to datasets.yaml"),
        ),
        (("--split", "test-9"), ("--split: Unknown split(s) 'test-9'", "testcorpus: test-1, test-2")),
        (("--address", "127.0.0.1:6379"), ("--address 127.0.0.1:6379 needs --executor ray",)),
    ],
)
def test_options_the_registries_reject_exit_2_with_no_row(setup, capsys, extra, needles):
    assert cli.main(run_args(setup, "constant", extra=extra)) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert written() == [] and predicted_models() == []


def test_unknown_model_after_a_known_one_writes_nothing(setup, capsys):
    assert cli.main(run_args(setup, "constant", "nope")) == cli.EXIT_USAGE
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert written() == [] and predicted_models() == []


def test_settings_conflict_is_refused_before_the_predict_phase(setup, capsys):
    assert cli.main(run_args(setup, "constant")) == cli.EXIT_OK
    before = {name: (results_dir() / name).read_bytes() for name in written()}
    capsys.readouterr()
    # another bootstrap count into the same folder, with a model that has never been predicted
    args = run_args(setup, "random-gaussian", extra=("--bootstrap", "30"))
    args.remove("20")
    args.remove("--bootstrap")
    assert cli.main(args) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "holds results made with bootstrap 20; this run uses bootstrap 30" in err
    assert predicted_models() == ["constant"]  # random-gaussian never ran
    assert {name: (results_dir() / name).read_bytes() for name in written()} == before


# ------------------------------------------------------------------------------------ a user's summary.csv


def test_a_summary_csv_the_benchmark_did_not_write_is_never_replaced(setup, capsys):
    results_dir().mkdir(parents=True)
    mine = results_dir() / "summary.csv"
    mine.write_text("speaker,notes\nspk00,loud room\n")
    assert cli.main(run_args(setup, "constant")) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{mine} was not written by the benchmark" in err and "--results DIR" in err
    assert mine.read_text() == "speaker,notes\nspk00,loud room\n"
    assert written() == ["summary.csv"] and predicted_models() == []
    assert cli.main(["report"]) == cli.EXIT_USAGE  # the report command refuses it too
    assert mine.read_text() == "speaker,notes\nspk00,loud room\n"


def test_the_benchmarks_own_summary_is_rewritten(setup):
    assert cli.main(run_args(setup, "constant")) == cli.EXIT_OK
    first = (results_dir() / "summary.csv").read_text()
    assert first.startswith("model,model_sha256,tests,passed,")
    assert cli.main(run_args(setup, "constant", "random-gaussian")) == cli.EXIT_OK
    assert "random-gaussian" in (results_dir() / "summary.csv").read_text() and "random-gaussian" not in first


# ------------------------------------------------------------------------------------ odd predictions


def test_far_out_of_range_predictions_are_warned_about_and_counted(setup, capsys):
    assert cli.main(run_args(setup, "huge")) == cli.EXIT_OK
    out = capsys.readouterr().out
    # test-1 holds 12 files; arousal (1e9) and valence (-3) of each lie far outside 0..1, dominance (0.5) does not
    assert "warning: huge on testcorpus/test-1 · clean: 24 prediction(s) far outside 0..1 (below -1 or above 2)" in out
    assert "e.g. arousal 1e+09 for audio/" in out
    assert "24 prediction(s) far outside 0..1 (1 cell(s): testcorpus/test-1 · clean)" in out


def test_a_small_overshoot_is_no_warning(setup, capsys):
    assert cli.main(run_args(setup, "overshoot")) == cli.EXIT_OK
    assert "far outside" not in capsys.readouterr().out


def test_constant_prediction_has_no_pearson(setup):
    assert cli.main(run_args(setup, "point-one")) == cli.EXIT_OK
    table = results.read_table("correctness", results_dir())
    assert len(table) == 3 and table["pearson"].isna().all()  # undefined, not a rounding error near 0
    assert (table["ccc"].abs() < 1e-12).all()  # CCC stays defined: 0 up to rounding


def test_messages_show_plain_numbers(setup, tmp_path, capsys):
    # testcorpus labels lie on 1..7; a registry that says 1..5 is refused with the first label outside
    text = Path(setup["datasets"]).read_text().replace("label_range: [1, 7]", "label_range: [1, 5]")
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(text)
    args = run_args(setup, "constant")
    args[args.index(setup["datasets"])] = str(narrow)
    # a dataset that cannot load is reported and skipped, and the run ends non-zero naming it
    assert cli.main(args) == cli.EXIT_FAILURES
    out = capsys.readouterr().out
    assert "lie outside label_range [1, 5], e.g. " in out
    assert "np.float64" not in out and "np.int64" not in out
    value = float(out.split("e.g. ")[1].split(" for ")[0])
    assert value > 5


# ------------------------------------------------------------------------------------ Ray addresses


def test_unreachable_ray_address_fails_with_the_address_and_what_to_check(setup, capsys):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    # port 1 on loopback: nothing listens there
    extra = ("--executor", "ray", "--address", "127.0.0.1:1", "--ray-timeout", "3")
    assert cli.main(run_args(setup, "constant", extra=extra)) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err
    assert "ray start --head --port=PORT" in err and "--ray-timeout" in err
    assert written() == [] and predicted_models() == []


def test_ray_client_address_timeout_comes_from_the_environment(setup, capsys, monkeypatch):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    monkeypatch.setenv("SER_BENCHMARK_RAY_TIMEOUT", "2.5")
    extra = ("--executor", "ray", "--address", "ray://127.0.0.1:1")
    assert cli.main(run_args(setup, "constant", extra=extra)) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at ray://127.0.0.1:1" in err and "waited up to 2.5 s" in err
    assert "Ray Client server" in err
    monkeypatch.setenv("SER_BENCHMARK_RAY_TIMEOUT", "soon")
    assert cli.main(run_args(setup, "constant", extra=extra)) == cli.EXIT_USAGE
    assert "SER_BENCHMARK_RAY_TIMEOUT='soon': give a number" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ Ctrl-C


@pytest.fixture
def sigint_as_at_a_terminal():
    r"""SIGINT handled as in a process started from an interactive shell.

    A job a script starts in the background (``cmd &``, as a CI runner may)
    starts with SIGINT ignored, and passes that on to its children: there
    Ctrl-C cannot reach the benchmark, by the user's own choice, and these
    tests would see nothing to handle.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a child starts with the default
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_ends_with_one_line_and_exit_130(setup, audb_repository, dataset_registry, sigint_as_at_a_terminal):
    assert cli.main(run_args(setup, "constant")) == cli.EXIT_OK  # test-1 finished: its rows must survive
    kept = (results_dir() / "correctness.csv").read_bytes()
    # a test-2 file that blocks whoever reads it (a named pipe) holds the run in its predict phase
    evalset = dsets.load_split(
        "testcorpus", "test-2", data="real", repositories=[audb_repository], registry=dataset_registry
    )
    pipe = Path(evalset.files[0])
    pipe.unlink()
    os.mkfifo(pipe)
    args = run_args(setup, "constant", extra=("--workers", "1"))
    args[args.index("test-1")] = "test-2"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["PYTHONFAULTHANDLER"] = "1"  # a run that still hangs shows where (SIGABRT below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        writer = _open_when_read(pipe, proc)  # the run now waits on the pipe: it is inside its predict phase
        proc.send_signal(signal.SIGINT)
        os.close(writer)
        out, err = _communicate_feeding_eof(proc, pipe, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: what finished is kept")
    assert (results_dir() / "correctness.csv").read_bytes() == kept


def test_a_ctrl_c_that_a_finaliser_swallows_still_ends_the_run(monkeypatch, sigint_as_at_a_terminal):
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: swallowed.append(hook.exc_type))

    class Finaliser:  # as soundfile.SoundFile.__del__ after a failed read: the interrupt lands inside it
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # bytecode for the signal to be handled in
                pass

    with interrupts.handled():
        assert not interrupts.requested()
        Finaliser()  # collected at once
        assert swallowed == [KeyboardInterrupt]  # Python ignored it ...
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()  # ... the run's next file does not
    assert not interrupts.requested() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    interrupts.check()  # outside a run: nothing to raise


def test_a_ctrl_c_swallowed_after_the_last_file_ends_the_run_at_the_end_of_its_phase(sigint_as_at_a_terminal):
    from benchmark.timing import Timing

    timing, reached = Timing(), []
    with interrupts.handled():
        with pytest.raises(KeyboardInterrupt):
            with timing.phase("predict"):
                try:  # swallowed where no file follows that would check for it
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):
                        pass
                except KeyboardInterrupt:
                    pass
                reached.append("end of predict")
            reached.append("score")  # never: the phase ends the run
    assert reached == ["end of predict"] and "predict" in timing.seconds


def _open_when_read(pipe: Path, proc: subprocess.Popen) -> int:
    r"""Open ``pipe`` for writing as soon as a reader holds it open (no timing involved)."""
    while True:
        try:
            return os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            if proc.poll() is not None:
                raise AssertionError(f"the run ended before reading the pipe: {proc.communicate()}") from None
            time.sleep(0.05)


def _communicate_feeding_eof(proc: subprocess.Popen, pipe: Path, timeout: float) -> tuple[str, str]:
    r"""``proc.communicate``, while every later reader of ``pipe`` gets an end of file at once.

    libsndfile opens a file several times inside one ``sf_open`` call: after
    a single close of the writer, its next open of the pipe would block in C
    for ever, with no bytecode for the interrupt to be raised at. A run still alive after ``timeout``
    seconds gets SIGABRT, and its thread stacks (faulthandler) fail the test.
    """
    done = threading.Event()

    def feed() -> None:
        while not done.is_set():
            try:
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader now
                done.wait(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"the run had not ended {timeout} s after Ctrl-C; its stacks:\n{err[-20000:]}") from None
    finally:
        done.set()
        feeder.join()
