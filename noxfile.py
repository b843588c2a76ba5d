"""Sessions: ``benchmark``, ``distill``, ``docs``, ``efficiency``, ``lint``, ``perf``, ``tests``.

Each session installs only what it uses (:data:`EXTRAS`): a benchmark run gets
the core package, not the test, docs or Ray extras. Virtualenvs are made with
uv where it is installed (``pip install uv``: several times faster) and with
the standard ``venv`` otherwise. Each session's virtualenv is reused, and its
install is skipped while ``pyproject.toml``, ``constraints.txt`` (exact pins)
and the session's extras are unchanged, so a second call starts in seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent

EXTRAS = {
    # the tests build the HTML site with MkDocs and exercise --executor ray on a real local cluster
    "tests": ("test", "docs", "ray"),
    "docs": ("docs",),
    "perf": ("ray",),
}
"""Optional dependencies of each session; a session not listed installs the core package alone."""


def _pip_setting(name: str) -> str:
    r"""A pip setting (``find-links``, ``extra-index-url``, ...) from pip's environment or configuration."""
    value = os.environ.get("PIP_" + name.upper().replace("-", "_"), "")
    if value:
        return value
    try:
        found = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", f"global.{name}"], capture_output=True, text=True
        )
    except OSError:
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


def _uv_env() -> dict[str, str]:
    r"""Hand pip's local wheel folders to uv, which does not read pip's configuration.

    Where pip is set up to find a local CPU build of torch (``find-links``),
    uv must see it too, or ``torch==2.13.0`` resolves to the CUDA wheels.
    """
    if "UV_FIND_LINKS" in os.environ or not (links := _pip_setting("find-links")):
        return {}
    return {"UV_FIND_LINKS": links}


def _install(session: nox.Session, extras: tuple[str, ...] | None = None) -> None:
    r"""Install the project with the session's extras, once per change of its requirements."""
    extras = EXTRAS.get(session.name, ()) if extras is None else extras
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes() + ",".join(extras).encode()
    ).hexdigest()
    stamp = Path(session.virtualenv.location) / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    env = _uv_env() if session.venv_backend == "uv" else {}
    # torch first, by exact version: where pip finds a local CPU build, that is what it takes
    session.install("torch==2.13.0", env=env)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-c", "constraints.txt", "-e", target, env=env)
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
    args = session.posargs or ["--help"]
    _install(session, ("ray",) if _wants_ray(args) else ())
    session.run("python", "-m", "benchmark", "run", *args)


def _wants_ray(args: list[str]) -> bool:
    r"""Whether a run's arguments ask for the Ray executor (``--executor ray`` or ``--executor=ray``)."""
    return "--executor=ray" in args or any(a == "--executor" and b == "ray" for a, b in zip(args, args[1:]))


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
    """Lint, check formatting (no changes made) and the layering rules: nox -s lint."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "scripts/check_architecture.py")  # no import cycles, private imports, oversized code


@nox.session(name="perf")
def perf(session: nox.Session) -> None:
    """Files/s of the local and Ray executors against raw onnxruntime: nox -s perf [-- --threads 1 2]."""
    _install(session)
    session.run("python", "scripts/perf.py", *session.posargs, env={"OMP_NUM_THREADS": "1"})
