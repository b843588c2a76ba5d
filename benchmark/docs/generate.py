"""Regenerate the docs: read the inputs, render every page, write what changed."""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from pathlib import Path

from benchmark.docs import cache
from benchmark.docs.inputs import load_inputs
from benchmark.docs.leaderboard import leaderboard_page
from benchmark.docs.model_page import model_page
from benchmark.docs.output import GENERATED, Output
from benchmark.paths import docs_root, results_root


@dataclasses.dataclass
class Summary:
    r"""What a regeneration did.

    Attributes:
        files: every generated file (unchanged ones included), sorted
        written: files whose bytes changed, relative to the docs folder
        drawn: figures drawn (the others were reused, see :mod:`benchmark.docs.cache`)
        removed: stale generated files that were removed
        seconds: wall time

    """

    files: list[Path]
    written: list[str]
    drawn: list[str]
    removed: list[str]
    seconds: float

    def line(self) -> str:
        r"""One line for the terminal."""
        return (
            f"docs: {len(self.files)} files, {len(self.written)} written, {len(self.removed)} removed; "
            f"{len(self.drawn)} figures drawn, {self.figures - len(self.drawn)} reused; {self.seconds:.1f} s"
        )

    @property
    def figures(self) -> int:
        return sum(p.suffix == ".png" for p in self.files)


def regenerate(
    results_dir: str | os.PathLike | None = None,
    docs_dir: str | os.PathLike | None = None,
    registry: typing.Any = None,
    *,
    reported: str | os.PathLike | None = None,
    resamples: int = 1000,
    seed: int = 0,
    top: int = 2,
    reuse: bool = True,
) -> Summary:
    r"""Regenerate the leaderboard docs from the result tables.

    Every page is rendered from the inputs and written only where its
    bytes changed; a figure is drawn only where the data it shows
    changed (:mod:`benchmark.docs.cache`), so a build after a run of
    one model draws only the figures that model appears in.

    Args:
        results_dir: result tables (default :func:`benchmark.paths.results_root`)
        docs_dir: the docs folder (default :func:`benchmark.paths.docs_root`); the pages
            go to its ``results/`` folder (:data:`benchmark.docs.output.GENERATED`)
        registry: :class:`benchmark.registry.Registry`, path to a
            ``models.yaml``, or ``None`` for the project's
        reported: published numbers (default ``benchmark/reported.yaml``)
        resamples: bootstrap resamples of the significance tests
        seed: bootstrap seed
        top: significance is tested between all pairs of the ``top``
            models per split and dimension
        reuse: reuse figures and bootstraps of the last build; ``False``
            computes everything (and still records it for the next build)

    """
    start = time.perf_counter()
    results_dir = Path(results_dir) if results_dir is not None else results_root()
    docs_dir = Path(docs_dir) if docs_dir is not None else docs_root()
    inputs = load_inputs(results_dir, registry, Path(reported) if reported is not None else None)
    manifest = cache.Manifest(cache.manifest_path(docs_dir / GENERATED))
    if not reuse:
        manifest.forget()
    out = Output(docs_dir, manifest)
    pages = {"leaderboard.md": leaderboard_page(inputs, out, resamples=resamples, seed=seed, top=top)}
    for model in sorted(inputs.current):
        pages[f"models/{model}.md"] = model_page(inputs, model, out)
    for rel, text in pages.items():
        out.text(rel, text)
    files = out.write()
    return Summary(files, out.written, out.drawn, out.removed, time.perf_counter() - start)


def build(
    results_dir: str | os.PathLike | None = None,
    docs_dir: str | os.PathLike | None = None,
    registry: typing.Any = None,
    *,
    reported: str | os.PathLike | None = None,
    resamples: int = 1000,
    seed: int = 0,
    top: int = 2,
) -> list[Path]:
    r"""Regenerate the docs (:func:`regenerate`, same arguments).

    Returns:
        paths of all generated files (unchanged ones included), sorted

    """
    return regenerate(results_dir, docs_dir, registry, reported=reported, resamples=resamples, seed=seed, top=top).files
