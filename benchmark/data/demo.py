r"""The embedded demo corpora, published into a local audb repository on first use.

Synthetic replicas of MSP-Podcast, IEMOCAP and MOSI, and two unlabeled
pools (:mod:`benchmark.data.demo_build` generates them and describes
their tables). On first use the databases are built and published with
:func:`audb.publish` into a local file-system audb repository
(:func:`repository`), so evaluation code loads them with
:func:`audb.load` exactly like the real data. A published build made by
other generator code (:func:`generator_digest`) is rebuilt.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import typing
from pathlib import Path

import pandas as pd

from benchmark.data.demo_build import DATABASES, DEMO_VERSION, build, generator_digest, utterance_count
from benchmark.paths import cache_dir

if typing.TYPE_CHECKING:  # audb is imported lazily: it is slow to import
    import audb

REPOSITORY_NAME = "demo"
r"""Name of the local file-system audb repository."""


def _header(host: Path, name: str) -> Path:
    # audb publishes the header last: its presence marks a complete publication
    return host / REPOSITORY_NAME / name / DEMO_VERSION / "db.yaml"


def _published(host: Path, name: str) -> dict | None:
    r"""``demo`` meta of a completely published database, None if it is not (completely) published."""
    import yaml

    header = _header(host, name)
    if not header.exists():
        return None
    meta = (yaml.safe_load(header.read_text()) or {}).get("demo") or {}
    return {"scale": float(meta.get("scale", 1.0)), "generator_digest": meta.get("generator_digest")}


def _unpublish(host: Path, name: str) -> None:
    r"""Remove a published demo database and audb's cached copy of it (both are rebuildable)."""
    shutil.rmtree(host / REPOSITORY_NAME / name, ignore_errors=True)
    shutil.rmtree(cache_dir("audb") / name / DEMO_VERSION, ignore_errors=True)


def repository(*, scale: float | None = None, databases: typing.Sequence[str] = DATABASES) -> audb.Repository:
    r"""The local audb repository with all demo databases at :data:`DEMO_VERSION`.

    Builds and publishes the missing databases on first use, under
    ``benchmark.paths.cache_dir('audb-demo')``. Each database is built
    in a temporary folder and published on its own; audb writes its
    header last, so an interrupted run leaves no database that looks
    complete, and the next call publishes it again. A file lock keeps
    concurrent processes from building twice.

    Args:
        scale: size of the databases to build (see :func:`build`);
            ``None`` accepts whatever is published and builds missing
            databases at the same scale (full size if none is
            published). A scaled build is meant for tests
            with their own ``SER_BENCHMARK_CACHE``: the audb cache keys
            by name and version, so scales must not mix in one cache
        databases: which of :data:`DATABASES` must be published (default:
            all); a run on one corpus builds only that one and what it reads

    Returns:
        ``audb.Repository('demo', <cache>/audb-demo, 'file-system')``

    Raises:
        RuntimeError: if ``scale`` differs from the published databases

    """
    import audb
    import filelock  # a dependency of audb

    unknown = sorted(set(databases) - set(DATABASES))
    if unknown:
        raise ValueError(f"Unknown demo database(s) {unknown}; choose from {', '.join(DATABASES)}.")
    host = cache_dir("audb-demo")
    (host / REPOSITORY_NAME).mkdir(exist_ok=True)
    repo = audb.Repository(REPOSITORY_NAME, str(host), "file-system")
    with filelock.FileLock(str(host / ".lock")):
        digest = generator_digest()
        published = {}
        for name in DATABASES:
            meta = _published(host, name)
            if meta is not None and meta["generator_digest"] != digest:
                # same name and version, other content: audb would serve the old build
                print(
                    f"Demo database {name} in {host} was built by other generator code "
                    f"({(meta['generator_digest'] or 'not recorded')[:12]}, this code: {digest[:12]}): rebuilding it.",
                    file=sys.stderr,
                    flush=True,
                )
                _unpublish(host, name)
                meta = None
            published[name] = None if meta is None else meta["scale"]
        known = {s for s in published.values() if s is not None}
        if scale is None:  # complete what is there at its own scale
            scale = next(iter(known)) if len(known) == 1 else 1.0
        clash = {n: s for n, s in published.items() if s is not None and s != scale}
        if clash:
            raise RuntimeError(
                f"Demo databases in {host} were built at scale {clash}, not {scale}: "
                "use another SER_BENCHMARK_CACHE for a scaled build."
            )
        missing = [name for name, s in published.items() if s is None and name in databases]
        if missing:
            for stale in host.glob("build-*"):  # left by an interrupted run
                shutil.rmtree(stale, ignore_errors=True)
            estimate = _estimate(missing, scale)
            print(f"Building demo corpora (first use, ~{estimate:.0f} s)...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            for name in missing:
                _build_and_publish(name, repo, host, scale)
            print(f"Demo corpora ready in {host} ({time.perf_counter() - start:.0f} s).", file=sys.stderr, flush=True)
    return repo


def _estimate(names: list[str], scale: float) -> float:
    # measured: about 16 ms CPU per utterance to synthesize, write and publish; 2 threads
    return max(1.0, 0.012 * utterance_count(names, scale))


def _build_and_publish(name: str, repo, host: Path, scale: float) -> None:
    import audb

    with tempfile.TemporaryDirectory(prefix="build-", dir=host) as tmp:
        db = build(name, tmp, scale=scale)
        # one archive per speaker: a split's speakers are its own, so loading
        # one table fetches no audio of another
        archives = dict(zip(db["files"].index, db["files"]["speaker"].get()))
        audb.publish(
            tmp,
            DEMO_VERSION,
            repo,
            archives=archives,
            previous_version=None,
            cache_root=str(cache_dir("audb")),
            num_workers=2,  # zlib releases the GIL while zipping the archives
            verbose=False,
        )


def pool_files(name: str = "demo-pool") -> pd.Index:
    r"""Absolute paths of the audio of an unlabeled demo database, loaded with audb.

    Sets :data:`audb.config.REPOSITORIES` to the demo repository.

    Args:
        name: ``'demo-pool'`` (distillation's training and held-out files,
            and the robustness analysis' babble) or ``'demo-refit'``
            (distillation's whole files for the output-layer refit)

    """
    import audb

    if name not in ("demo-pool", "demo-refit"):
        raise ValueError(f"'{name}' is not an unlabeled demo database; choose 'demo-pool' or 'demo-refit'.")
    audb.config.REPOSITORIES = [repository(databases=[name])]
    db = audb.load(
        name,
        version=DEMO_VERSION,
        tables=["files"],
        full_path=True,
        verbose=False,
        cache_root=str(cache_dir("audb")),
    )
    return db["files"].index
