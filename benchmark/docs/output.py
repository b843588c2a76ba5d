"""Generated files, collected in memory and written where their bytes changed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmark.docs.formatting import MARKER

FIGURES = "figures"
HTML = "html"


class Output:
    r"""Files to write, relative to the docs folder, in memory until :meth:`write`."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def text(self, rel: str, text: str) -> None:
        self.files[rel] = text.encode("utf-8")

    def png(self, rel: str, data: bytes) -> None:
        self.files[rel] = data

    def write(self, docs_dir: Path) -> list[Path]:
        r"""Write files whose bytes changed (atomically) and remove stale generated files."""
        for rel, data in sorted(self.files.items()):
            path = docs_dir / rel
            if path.exists() and path.read_bytes() == data:
                continue
            _atomic_write_bytes(path, data)
        self._remove_stale(docs_dir)
        return [docs_dir / rel for rel in sorted(self.files)]

    def _remove_stale(self, docs_dir: Path) -> None:
        # Only what this module generates: figures and text files with the marker.
        # (docs/html/_tmp belongs to the browser check.)
        candidates = list((docs_dir / FIGURES).rglob("*.png")) if (docs_dir / FIGURES).exists() else []
        for folder, pattern in (("models", "*.md"), (HTML, "*.html")):
            if (docs_dir / folder).exists():
                candidates += [p for p in (docs_dir / folder).rglob(pattern) if "_tmp" not in p.relative_to(docs_dir).parts]
        candidates += [docs_dir / "leaderboard.md"]
        for path in candidates:
            rel = path.relative_to(docs_dir).as_posix()
            if rel in self.files or not path.exists():
                continue
            if path.suffix == ".png" or MARKER in path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
        for folder in sorted((docs_dir / FIGURES).rglob("*"), reverse=True) if (docs_dir / FIGURES).exists() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        # mkstemp creates 0600; docs are for everyone who can read the checkout.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
