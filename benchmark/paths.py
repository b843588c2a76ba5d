"""Where the benchmark keeps its files.

The project root holds the user-facing, versioned artefacts
(``models.yaml``, ``datasets.yaml``, ``results/``, ``docs/``).
Everything that can be rebuilt (demo corpora, audb cache, predictions,
downloaded weights, perturbed audio) lives under the cache root,
``$SER_BENCHMARK_CACHE`` or ``~/.cache/ser-benchmark``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    r"""Root folder of all rebuildable files.

    Examples:
        >>> saved = os.environ.get("SER_BENCHMARK_CACHE")
        >>> os.environ["SER_BENCHMARK_CACHE"] = "/tmp/x"
        >>> str(cache_root())
        '/tmp/x'
        >>> if saved is None:
        ...     del os.environ["SER_BENCHMARK_CACHE"]
        ... else:
        ...     os.environ["SER_BENCHMARK_CACHE"] = saved

    """
    root = os.environ.get("SER_BENCHMARK_CACHE")
    if root:
        return Path(root).expanduser().resolve()
    return Path("~/.cache/ser-benchmark").expanduser().resolve()


def cache_dir(*parts: str) -> Path:
    r"""Sub-folder of :func:`cache_root`, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_root() -> Path:
    r"""Folder of the versioned result tables (``$SER_BENCHMARK_RESULTS`` or ``results/``)."""
    root = os.environ.get("SER_BENCHMARK_RESULTS")
    return Path(root).resolve() if root else PROJECT_ROOT / "results"


def docs_root() -> Path:
    r"""Folder of the docs (``$SER_BENCHMARK_DOCS`` or ``docs/``); the generated pages go to its ``results/``."""
    root = os.environ.get("SER_BENCHMARK_DOCS")
    return Path(root).resolve() if root else PROJECT_ROOT / "docs"


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class InvalidNameError(ValueError):
    r"""A name that becomes part of a file path is not a plain file name."""


def name_problem(name) -> str:
    r"""Why ``name`` cannot be one component of a path (``''`` if it can).

    Letters, digits, ``.``, ``_``, ``+`` and ``-``, starting with a letter
    or digit: no separator, no ``..`` component, nothing a shell or file system
    reads differently.

    Examples:
        >>> name_problem("test-1")
        ''
        >>> name_problem("../../tmp/x")
        "'../../tmp/x' is not a plain name: use letters, digits, '.', '_', '+', '-' (it becomes a file name)"

    """
    if isinstance(name, str) and _NAME.fullmatch(name):
        return ""
    return f"{name!r} is not a plain name: use letters, digits, '.', '_', '+', '-' (it becomes a file name)"


def check_name(name, what: str) -> str:
    r"""Return ``name`` if it is safe as one path component, else raise.

    Args:
        name: model, dataset, split, version or condition name
        what: what the name is, for the message (e.g. ``"split key"``)

    Raises:
        InvalidNameError: naming ``what`` and the allowed characters

    Examples:
        >>> check_name("msppodcast", "dataset")
        'msppodcast'

    """
    problem = name_problem(name)
    if problem:
        raise InvalidNameError(f"{what} {problem}")
    return name


def project_relative(path: str | os.PathLike, root: str | os.PathLike = PROJECT_ROOT) -> str:
    r"""``path`` relative to ``root`` (the project) when it lies inside, else absolute.

    Records that name a project file stay valid on another machine or checkout.

    Examples:
        >>> project_relative(PROJECT_ROOT / "weights" / "wav2small")
        'weights/wav2small'
        >>> project_relative("/srv/models/wav2small", root="/work/main")
        '/srv/models/wav2small'

    """
    absolute = Path(os.path.abspath(os.path.expanduser(path)))
    try:
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return str(absolute)
