"""Sessions: ``benchmark``, ``distill``, ``docs``, ``efficiency``, ``lint``, ``perf``, ``tests``.

Each session's virtualenv is reused, and its install is skipped while
``pyproject.toml`` and ``constraints.txt`` (exact pins) are unchanged,
so a second call starts in seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent


def _install(session: nox.Session) -> None:
    r"""Install the project once per change of its requirements."""
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    stamp = Path(session.virtualenv.location) / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    # torch first, by exact version: on these machines that takes the local CPU build.
    session.install("torch==2.13.0")
    # docs: the tests build the HTML site with MkDocs, as `nox -s docs` does; ray: the tests exercise
    # --executor ray on a real local cluster
    session.install("-c", "constraints.txt", "-e", ".[test,docs,ray]")
    stamp.write_text(digest)


@nox.session(name="tests")
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest) in file order; extra args go to pytest.

    No test may depend on another's order or leftovers; check it with
    ``nox -s tests -- --reverse`` (reverse order) or
    ``nox -s tests -- -p randomly --randomly-seed=N`` (a random order from
    seed N; the seed is printed, so a failing order can be replayed).
    pytest-randomly is off by default (``-p no:randomly`` in pyproject's
    pytest options) because, when on, it also reseeds ``random`` and numpy's
    global generator before each test: the default run keeps the order and
    the random state that a failure report can be reproduced from.
    """
    _install(session)
    # the 15 slowest tests are printed, so a test that turns slow shows in CI's log; -rs prints why each skip skipped
    session.run("python", "-m", "pytest", "-q", "-rs", "--durations=15", *session.posargs, env={"OMP_NUM_THREADS": "1"})


@nox.session(name="benchmark")
def benchmark(session: nox.Session) -> None:
    """Benchmark a model: nox -s benchmark -- --model NAME [options]; see --help."""
    _install(session)
    args = session.posargs or ["--help"]
    session.run("python", "-m", "benchmark", "run", *args)


@nox.session(name="distill")
def distill(session: nox.Session) -> None:
    """Distil a student from a teacher: nox -s distill [-- --student wav2small ...]."""
    _install(session)
    session.run("python", "-m", "benchmark", "distill", *session.posargs)


@nox.session(name="docs")
def docs(session: nox.Session) -> None:
    """Regenerate the Markdown under docs/ from results/ (no model runs), then build the HTML site into site/."""
    _install(session)
    session.run("python", "-m", "benchmark", "docs", "--timing", *session.posargs)
    # NO_MKDOCS_2_WARNING: Material prints a banner about its successor on every build
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    session.log(f"site: {ROOT / 'site' / 'index.html'}")


@nox.session(name="efficiency")
def efficiency(session: nox.Session) -> None:
    """Measure parameters, ONNX size, ms per 5 s clip: nox -s efficiency -- --model all."""
    _install(session)
    session.run("python", "-m", "benchmark", "efficiency", *(session.posargs or ["--model", "all"]))


@nox.session(name="lint")
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff (no changes made): nox -s lint."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="perf")
def perf(session: nox.Session) -> None:
    """Files/s of the local and Ray executors against raw onnxruntime: nox -s perf [-- --threads 1 2]."""
    _install(session)
    session.run("python", "-m", "benchmark", "perf", *session.posargs, env={"OMP_NUM_THREADS": "1"})
