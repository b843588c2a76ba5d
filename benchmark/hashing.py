"""Content hashes used for provenance and cache keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    r"""SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: str | os.PathLike) -> str:
    r"""SHA-256 over relative paths and contents of every file below ``root``.

    Stable across machines: files are visited in sorted order and
    only their relative POSIX paths and bytes enter the digest.
    """
    root = Path(root)
    if root.is_file():
        return sha256_file(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    r"""SHA-256 hex digest of a UTF-8 string.

    Examples:
        >>> sha256_text("abc")[:12]
        'ba7816bf8f01'

    """
    return hashlib.sha256(text.encode()).hexdigest()
