"""Generated files, collected in memory and written where their bytes changed."""

from __future__ import annotations

import typing
from pathlib import Path

from benchmark.atomic import atomic_write
from benchmark.docs import cache
from benchmark.docs.formatting import MARKER

FIGURES = "figures"
LEGACY_HTML = "html"


class Output:
    r"""Files to write, relative to the docs folder, in memory until :meth:`write`.

    Args:
        docs_dir: the docs folder
        manifest: what earlier builds made (:mod:`benchmark.docs.cache`);
            ``None`` computes everything

    Attributes:
        drawn: figures drawn by this build (the others were reused)
        written: files whose bytes changed, written by :meth:`write`
        removed: stale generated files removed by :meth:`write`

    """

    def __init__(self, docs_dir: Path, manifest: cache.Manifest | None = None) -> None:
        self.docs_dir = docs_dir
        self.manifest = manifest if manifest is not None else cache.Manifest(None)
        self.files: dict[str, bytes] = {}
        self.drawn: list[str] = []
        self.written: list[str] = []
        self.removed: list[str] = []
        self._plots = cache.code_version("docs/plots.py")

    def text(self, rel: str, text: str) -> None:
        self.files[rel] = text.encode("utf-8")

    def figure(self, rel: str, plot: str, *args: typing.Any) -> None:
        r"""The PNG that ``benchmark.docs.plots.<plot>(*args)`` draws, reused where its key is unchanged."""
        key = cache.digest(self._plots, plot, args)
        data = self.manifest.figure(rel, key, self.docs_dir / rel)
        if data is None:
            # imported here: a build that reuses every figure never loads matplotlib
            from benchmark.docs import plots

            data = getattr(plots, plot)(*args)
            self.drawn.append(rel)
        self.manifest.record_figure(rel, key, data)
        self.files[rel] = data

    def result(self, code: str, parts: tuple, compute: typing.Callable[[], dict]) -> dict:
        r"""``compute()``, reused from an earlier build while ``parts`` and the module ``code`` are unchanged.

        Args:
            code: the module that computes it, relative to ``benchmark/``
                (its source is part of the key)
            parts: everything else ``compute`` depends on
            compute: returns a JSON object

        """
        return self.manifest.result(cache.digest(cache.code_version(code), parts), compute)

    def write(self) -> list[Path]:
        r"""Write files whose bytes changed (atomically), remove stale generated files, save the manifest."""
        for rel, data in sorted(self.files.items()):
            path = self.docs_dir / rel
            if path.exists() and path.read_bytes() == data:
                continue
            atomic_write(path, data)
            self.written.append(rel)
        self._remove_stale(self.docs_dir)
        if self.manifest.path is not None:
            atomic_write(self.manifest.path, self.manifest.text().encode())
        return [self.docs_dir / rel for rel in sorted(self.files)]

    def _remove_stale(self, docs_dir: Path) -> None:
        # Only what this package generates: figures and text files with the marker
        # (html/ holds the pages of the hand-written converter of earlier versions; the site is built by MkDocs).
        candidates = list((docs_dir / FIGURES).rglob("*.png")) if (docs_dir / FIGURES).exists() else []
        for folder, pattern in (("models", "*.md"), (LEGACY_HTML, "*.html")):
            if (docs_dir / folder).exists():
                candidates += list((docs_dir / folder).rglob(pattern))
        candidates += [docs_dir / "leaderboard.md"]
        for path in candidates:
            rel = path.relative_to(docs_dir).as_posix()
            if rel in self.files or not path.exists():
                continue
            if path.suffix == ".png" or MARKER in path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
                self.removed.append(rel)
        for root in (docs_dir / FIGURES, docs_dir / LEGACY_HTML):
            for folder in sorted([root, *root.rglob("*")], reverse=True) if root.exists() else []:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
