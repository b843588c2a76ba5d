"""What an earlier docs build made, reused while its inputs are unchanged.

Drawing is most of a docs build: about 0.2 s a figure, and the
committed docs hold some 300 figures; the significance bootstraps come
next. Each figure and each bootstrap is keyed by a digest of everything
that determines it: the data handed to it, the source of the code that
computes it (:mod:`benchmark.docs.plots`, :mod:`benchmark.metrics`) and
the versions of the libraries it runs on. A manifest, one per docs
folder, kept with the generated pages (:func:`manifest_path`), holds for each figure the
key it was drawn from and the SHA-256 of the bytes written, and for
each bootstrap its key and result.

A figure is reused only if both match: its key, and the file on disk.
A figure that was edited, deleted or checked out from another commit is
drawn again, so a reused figure is always the one a full build would
draw. Pages are always rendered (that is cheap) and written only where
their bytes changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import typing
from pathlib import Path

import numpy as np
import pandas as pd

LIBRARIES = ("matplotlib", "pillow", "numpy", "pandas", "scipy")
r"""Distributions whose versions are part of every key (drawing, fonts, PNG encoding, numerics)."""

_PACKAGE = Path(__file__).resolve().parent.parent


MANIFEST = ".manifest.json"
r"""The manifest's file name in the generated folder (a dot file: MkDocs leaves it out of the site)."""


def manifest_path(generated: Path) -> Path:
    r"""Where the manifest of the generated folder ``generated`` (``docs/results``) is kept.

    It is kept, and committed, with the pages it describes: a fresh
    clone then reuses the committed figures and bootstraps whose inputs
    did not change, instead of drawing some 300 figures again.

    Examples:
        >>> manifest_path(Path("docs/results")).as_posix()
        'docs/results/.manifest.json'

    """
    return Path(generated) / MANIFEST


def code_version(*modules: str) -> str:
    r"""Digest of the source of ``modules`` (paths below ``benchmark/``) and of :data:`LIBRARIES`' versions.

    Examples:
        >>> code_version("docs/plots.py") == code_version("docs/plots.py") != code_version("metrics.py")
        True

    """
    h = hashlib.sha256()
    for module in modules:
        h.update(module.encode() + b"\0" + (_PACKAGE / module).read_bytes() + b"\0")
    h.update(json.dumps({name: _version(name) for name in LIBRARIES}, sort_keys=True).encode())
    return h.hexdigest()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def digest(*parts: typing.Any) -> str:
    r"""SHA-256 of data: frames, series, sequences, strings and numbers.

    Frames count with their column names, dtypes, index and every value
    (floats at full precision), in row order.

    Examples:
        >>> a = pd.DataFrame({"x": [0.1, 0.2]})
        >>> digest(a, "t") == digest(a.copy(), "t"), digest(a, "t") == digest(a.assign(x=[0.1, 0.2000001]), "t")
        (True, False)

    """
    h = hashlib.sha256()
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def _feed(h: typing.Any, obj: typing.Any) -> None:
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if isinstance(obj, pd.DataFrame):
        h.update(f"frame{obj.shape}(".encode())
        _feed_column(h, "index", obj.index.to_series())
        for name, column in obj.items():
            _feed_column(h, str(name), column)
        h.update(b")")
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq{len(obj)}(".encode())
        for item in obj:
            _feed(h, item)
        h.update(b")")
    elif obj is None or isinstance(obj, (str, int, float, bool)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"cannot key on a {type(obj).__name__}; use frames, sequences, str or numbers")


def _feed_column(h: typing.Any, name: str, column: pd.Series) -> None:
    h.update(f"column:{name!r}:{column.dtype}:".encode())
    values = column.to_numpy()
    if values.dtype.kind in "biuf":
        h.update(np.ascontiguousarray(values).tobytes())  # every bit of every number
    else:
        # repr keeps each value's type and full precision; the mask tells missing values from their spelling
        h.update(column.isna().to_numpy(bool).tobytes())
        h.update("\x1f".join(map(repr, values)).encode())
    h.update(b";")


class Manifest:
    r"""Figures and results of one docs folder, from the last build and from this one.

    Args:
        path: the manifest file (``None``: remember nothing, compute everything)

    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.old: dict[str, dict] = {"figures": {}, "results": {}}
        self.new: dict[str, dict] = {"figures": {}, "results": {}}
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.old = {part: dict(data[part]) for part in self.old}
            except (OSError, ValueError, TypeError, KeyError):
                pass  # a broken manifest only costs a full build

    def forget(self) -> None:
        r"""Reuse nothing from the last build (this build is still recorded)."""
        self.old = {"figures": {}, "results": {}}

    def figure(self, rel: str, key: str, file: Path) -> bytes | None:
        r"""The bytes of ``file`` if the last build drew them from ``key``, else ``None``."""
        entry = self.old["figures"].get(rel)
        if not isinstance(entry, dict) or entry.get("key") != key or not file.is_file():
            return None
        data = file.read_bytes()
        return data if hashlib.sha256(data).hexdigest() == entry.get("sha256") else None

    def record_figure(self, rel: str, key: str, data: bytes) -> None:
        self.new["figures"][rel] = {"key": key, "sha256": hashlib.sha256(data).hexdigest()}

    def result(self, key: str, compute: typing.Callable[[], dict]) -> dict:
        r"""``compute()``, or what it returned for ``key`` in the last build (a JSON object)."""
        if key in self.old["results"]:
            value = self.old["results"][key]
        else:
            # through JSON, so that a computed and a reused result are the same objects
            value = json.loads(json.dumps(compute()))
        self.new["results"][key] = value
        return value

    def text(self) -> str:
        r"""The manifest of this build: only what it used."""
        return json.dumps({part: dict(sorted(entries.items())) for part, entries in self.new.items()}, indent=0) + "\n"
