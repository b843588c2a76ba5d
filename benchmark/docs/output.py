"""Generated files, collected in memory and written where their bytes changed."""

from __future__ import annotations

import typing
from pathlib import Path

from benchmark.atomic import atomic_write
from benchmark.docs import cache
from benchmark.docs.formatting import MARKER

GENERATED = "results"
r"""The folder of the docs that a build owns: ``leaderboard.md``, ``models/`` and ``figures/``.

Everything else in the docs folder (the guides, ``research/``) is
hand-written: a build reads none of it and writes none of it.
"""
GUIDES = ".."
r"""The hand-written guides, as a link from a page at the top of the generated folder."""
FIGURES = "figures"
LEGACY_HTML = "html"


class Output:
    r"""Files to write, relative to the generated folder, in memory until :meth:`write`.

    Args:
        docs_dir: the docs folder; the files go to its :data:`GENERATED` folder
        manifest: what earlier builds made (:mod:`benchmark.docs.cache`);
            ``None`` computes everything

    Attributes:
        root: the generated folder, ``docs_dir / GENERATED``
        files: the bytes of every file, by path relative to :attr:`root`
        drawn: figures drawn by this build (the others were reused), relative to the docs folder
        written: files whose bytes changed, written by :meth:`write`, relative to the docs folder
        removed: stale generated files removed by :meth:`write`, relative to the docs folder

    """

    def __init__(self, docs_dir: Path, manifest: cache.Manifest | None = None) -> None:
        self.docs_dir = docs_dir
        self.root = docs_dir / GENERATED
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
        data = self.manifest.figure(rel, key, self.root / rel)
        if data is None:
            # imported here: a build that reuses every figure never loads matplotlib
            from benchmark.docs import plots

            data = getattr(plots, plot)(*args)
            self.drawn.append(f"{GENERATED}/{rel}")
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
            path = self.root / rel
            if path.exists() and path.read_bytes() == data:
                continue
            atomic_write(path, data)
            self.written.append(f"{GENERATED}/{rel}")
        self._remove_stale(GENERATED, (("models", "*.md"), (FIGURES, "*.png")))
        # Where earlier versions wrote pages: the docs folder itself (before the generated folder) and
        # html/ (their HTML converter; MkDocs builds the site now). Their figures are left alone there.
        self._remove_stale(".", (("models", "*.md"), (LEGACY_HTML, "*.html")))
        if self.manifest.path is not None:
            atomic_write(self.manifest.path, self.manifest.text().encode())
        return [self.root / rel for rel in sorted(self.files)]

    def _remove_stale(self, folder: str, owned: tuple[tuple[str, str], ...]) -> None:
        r"""Remove stale generated files from ``docs_dir / folder``: its ``leaderboard.md`` and the ``owned`` files.

        Args:
            folder: relative to the docs folder
            owned: ``(subfolder, pattern)`` of the files a build writes there;
                a PNG is removed if this build did not make it, a text
                file only if it also carries :data:`MARKER`

        """
        base = self.docs_dir / folder
        candidates = [base / "leaderboard.md"]
        candidates += [p for sub, pattern in owned if (base / sub).exists() for p in (base / sub).rglob(pattern)]
        keep = set(self.files) if base == self.root else set()
        for path in candidates:
            if path.relative_to(base).as_posix() in keep or not path.exists():
                continue
            if path.suffix == ".png" or MARKER in path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
                self.removed.append(path.relative_to(self.docs_dir).as_posix())
        for sub, _ in owned:
            if sub == "models" or not (base / sub).exists():
                continue
            for empty in sorted([base / sub, *(base / sub).rglob("*")], reverse=True):
                if empty.is_dir() and not any(empty.iterdir()):
                    empty.rmdir()
