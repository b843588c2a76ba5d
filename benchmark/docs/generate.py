"""Regenerate the docs: read the inputs, render every page, write what changed."""

from __future__ import annotations

import argparse
import os
import typing
from pathlib import Path

from benchmark.docs.html import HTML, html_page, html_path
from benchmark.docs.inputs import load_inputs
from benchmark.docs.leaderboard import leaderboard_page
from benchmark.docs.model_page import model_page
from benchmark.docs.output import Output
from benchmark.paths import docs_root, results_root


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
    r"""Regenerate the leaderboard docs from the result tables.

    Args:
        results_dir: result tables (default :func:`benchmark.paths.results_root`)
        docs_dir: output folder (default :func:`benchmark.paths.docs_root`)
        registry: :class:`benchmark.registry.Registry`, path to a
            ``models.yaml``, or ``None`` for the project's
        reported: published numbers (default ``benchmark/reported.yaml``)
        resamples: bootstrap resamples of the significance tests
        seed: bootstrap seed
        top: significance is tested between all pairs of the ``top``
            models per split and dimension

    Returns:
        paths of all generated files (unchanged ones included), sorted

    """
    results_dir = Path(results_dir) if results_dir is not None else results_root()
    docs_dir = Path(docs_dir) if docs_dir is not None else docs_root()
    inputs = load_inputs(results_dir, registry, Path(reported) if reported is not None else None)
    out = Output()
    pages = {"leaderboard.md": leaderboard_page(inputs, out, resamples=resamples, seed=seed, top=top)}
    for model in sorted(inputs.current):
        pages[f"models/{model}.md"] = model_page(inputs, model, out)
    for rel, text in pages.items():
        out.text(rel, text)
    # Hand-written pages get an HTML build too, so that links from the leaderboard work there.
    html_sources = dict(pages)
    if (docs_dir / "adding-a-model.md").exists():
        html_sources["adding-a-model.md"] = (docs_dir / "adding-a-model.md").read_text(encoding="utf-8")
    for rel, text in html_sources.items():
        out.text(f"{HTML}/{html_path(rel)}", html_page(text, rel))
    return out.write(docs_dir)


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""``python -m benchmark.docs [--results DIR] [--docs DIR] [--models FILE]``."""
    parser = argparse.ArgumentParser(description="Regenerate docs/ from results/ (no model runs).")
    parser.add_argument("--results", default=None, help="results folder (default: results/)")
    parser.add_argument("--docs", default=None, help="output folder (default: docs/)")
    parser.add_argument("--models", default=None, help="models.yaml (default: the project's)")
    args = parser.parse_args(argv)
    paths = build(args.results, args.docs, args.models)
    print(f"Wrote {len(paths)} files under {Path(args.docs) if args.docs else docs_root()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
