"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer of results, docs, caches and downloads goes through here:
the bytes go to a temporary file in the target's folder (same file
system), which is renamed over the target when complete. An interrupted
write leaves the old file (or none) and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import typing
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> typing.Iterator[Path]:
    r"""A temporary path next to ``path`` that replaces it when the block ends without an error.

    Use it for writers that want a file name (``np.save``, a figure, a
    streamed download). The file gets the permissions of a normal new
    file (``mkstemp`` alone would make it private to its owner).

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('done', ['x.txt'])

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # results, docs and caches are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    r"""Write ``data`` (text as UTF-8 with ``\n`` line ends kept, or bytes) to ``path`` atomically.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a" / "b.bin"
        >>> atomic_write(target, b"\x00\x01")
        >>> target.read_bytes()
        b'\x00\x01'

    """
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with open(tmp, "w", newline="") as fp:
                fp.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    r"""Write ``text`` to ``path`` atomically (:func:`atomic_write` for text)."""
    atomic_write(path, text)
