"""Publish a built audformat database as a versioned audb dataset and register it.

The one home of what every importer shares (``import-dataset`` and the
release importers of ``import-corpus``): the target repository, the
refusal of a version that exists, the validation of the registry entry
*before* anything is published (a bad input never burns a version),
linking media into the build folder without leaving it, the publish
itself and the atomic write of the entry.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import tempfile
import typing
from pathlib import Path

import yaml

from benchmark.data.datasets import DatasetConfigError, entry_problems, parse_repository
from benchmark.paths import cache_dir, name_problem


@dataclasses.dataclass
class ImportReport:
    r"""What an import did: the entry written, the files kept and every problem, row by row."""

    entry: dict
    repository: typing.Any
    registry: Path
    kept: int = 0
    problems: list = dataclasses.field(default_factory=list)  # (file or row, reason)

    def lines(self) -> list[str]:
        out = [
            f"{self.entry['name']} {self.entry['version']}: {self.kept} file(s) published to "
            f"{self.repository.host}/{self.repository.name}; entry written to {self.registry}"
        ]
        out += [f"  left out {where}: {why}" for where, why in self.problems]
        return out


def safe_relative(path: str) -> str | None:
    r"""``path`` as a clean relative POSIX path, or None if it is absolute or leaves its folder.

    ``./x`` and ``a//b`` are normalised; ``..`` anywhere, a leading ``/``,
    ``\`` or a drive letter are refused, so a joined path never escapes.

    Examples:
        >>> safe_relative("./a//b.wav"), safe_relative("../../victim/notes.wav"), safe_relative("/etc/x")
        ('a/b.wav', None, None)
        >>> safe_relative("a/../b.wav"), safe_relative("C:/x.wav"), safe_relative(".")
        (None, None, None)

    """
    text = str(path).strip().replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    if ".." in text.split("/"):
        return None
    clean = posixpath.normpath(text)
    return None if clean in (".", "") else clean


def target_repository(spec: str | None):
    r"""The file-system repository ``NAME=HOST`` to publish to (default: ``local`` in the cache); created."""
    repo = parse_repository(spec or f"local={cache_dir('audb-own')}")
    if repo.backend != "file-system":
        raise DatasetConfigError(f"--repository {spec}: import publishes to a file-system repository only.")
    Path(repo.host, repo.name).mkdir(parents=True, exist_ok=True)
    return repo


def check_target(name: str, version: str, repo) -> None:
    r"""Refuse a bad ``--name``/``--version`` or a version already published in ``repo``."""
    import audb

    for what, value in (("--name", name), ("--version", version)):
        if name_problem(value):
            raise DatasetConfigError(f"{what}: {name_problem(value)}")
    saved = list(audb.config.REPOSITORIES)
    audb.config.REPOSITORIES = [repo]  # else audb asks the public repository over the network first
    try:
        existing = audb.versions(name)
    finally:
        audb.config.REPOSITORIES = saved
    if version in existing:
        raise DatasetConfigError(
            f"{name} {version} is already published in {repo.host}/{repo.name}: choose a new --version "
            f"(published: {', '.join(existing)})."
        )


def place_media(source: Path, build: Path, relative: str) -> None:
    r"""Put ``source`` at ``build/relative`` (hard link if possible, else a copy); never outside ``build``."""
    clean = safe_relative(relative)
    if clean is None:
        raise DatasetConfigError(f"media path {relative!r} leaves the build folder")
    target = build / clean
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # a release can be large: no second copy until audb stores it
    except OSError:
        shutil.copy2(source, target)


def publish(
    build_database: typing.Callable[[Path], typing.Any],
    entry: dict,
    repo,
    registry: str | os.PathLike,
    *,
    kept: int,
    problems: list | None = None,
) -> ImportReport:
    r"""Validate ``entry``, build into a temporary folder, publish it at ``entry['version']`` and register it.

    Args:
        build_database: writes the database (tables and media) into the folder it is given
        entry: the registry entry; checked before anything is built or published
        repo: target repository (:func:`target_repository`)
        registry: registry file the entry is written into (an entry of the same name is replaced)
        kept: files published, for the report
        problems: rows left out, for the report

    Raises:
        benchmark.data.datasets.DatasetConfigError: an invalid entry or an existing version

    """
    import audb

    check_target(entry["name"], str(entry["version"]), repo)
    found = entry_problems(entry)
    if found:
        raise DatasetConfigError(f"{entry['name']}: nothing published, the registry entry would be invalid: {found}")
    registry = Path(registry)
    _check_registry_writable(registry)
    saved = list(audb.config.REPOSITORIES)
    audb.config.REPOSITORIES = [repo]
    try:
        with tempfile.TemporaryDirectory(prefix="ser-import-") as tmp:
            build_database(Path(tmp))
            audb.publish(
                tmp,
                str(entry["version"]),
                repo,
                previous_version=None,
                verbose=False,
                cache_root=str(cache_dir("audb-publish")),
            )
    finally:
        audb.config.REPOSITORIES = saved
    write_entry(registry, entry)
    return ImportReport(entry, repo, registry, kept=kept, problems=list(problems or []))


def _check_registry_writable(path: Path) -> None:
    r"""Fail before publishing if the registry file cannot be read as a registry."""
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as ex:
            raise DatasetConfigError(
                f"--datasets {path}: not a readable YAML registry ({ex}); nothing published."
            ) from None
        if data is not None and not isinstance(data, dict):
            raise DatasetConfigError(f"--datasets {path}: not a registry (a mapping with 'datasets:').")


def write_entry(path: Path, entry: dict) -> None:
    r"""Add ``entry`` to the registry file at ``path`` (replacing one of the same name), atomically."""
    from benchmark.results import atomic_write_text

    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    entries = [e for e in data.get("datasets") or [] if not (isinstance(e, dict) and e.get("name") == entry["name"])]
    data["datasets"] = [*entries, entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
