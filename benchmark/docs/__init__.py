"""Leaderboard docs generated from the versioned results.

:func:`build` turns ``results/`` (plus ``models.yaml`` for metadata and
``benchmark/reported.yaml`` for published numbers) into Markdown pages
that read well on a code host, all in ``docs/results/`` (the rest of
``docs/`` is hand-written); MkDocs (``mkdocs.yml``, ``nox -s docs``)
builds the HTML site from them and from the hand-written pages:

* ``docs/results/leaderboard.md``: CCC with 95% CI per dataset and
  dimension, paired-bootstrap significance between the top models,
  robustness, fairness and efficiency summaries, published numbers
  (separately);
* ``docs/results/models/<model>.md``: provenance, artefact history and
  the per-model plots;
* ``docs/results/figures/``: the PNG plots (owned by this package: PNGs
  there that a build does not produce are deleted).

Generated text files carry :data:`MARKER`; a build deletes generated
files it no longer produces (e.g. the page of a model whose results
were removed) and leaves files without the marker alone.

No model is run. The output depends only on the input files: no
clock, no machine paths, fixed bootstrap seed, PNGs without metadata,
so regenerating unchanged results leaves ``git status`` clean.

Every number shown is a cell of a ``results/`` row (tables show the
artefact's ``model_sha256[:8]`` and name their source file) except the
significance tests, which are recomputed from the stored per-file
predictions in ``results/predictions/``.

A build draws only the figures whose data changed (:mod:`.cache`).

Modules, in the order of a build: :mod:`.inputs` (tables through
:mod:`benchmark.results`, metadata through :mod:`benchmark.registry`),
:mod:`.leaderboard` and :mod:`.model_page` (one per page kind, with
:mod:`.summary`, :mod:`.real_speech`, :mod:`.consistency`,
:mod:`.published` and :mod:`.ranks` for sections of the leaderboard and
:mod:`.distillation` and :mod:`.model_report` for sections of a model
page), :mod:`.formatting`, :mod:`.plots`, :mod:`.cache` and
:mod:`.output`; :mod:`.generate` runs them.
"""

from benchmark.docs.formatting import DEMO_NOTE, MARKER
from benchmark.docs.generate import build

__all__ = ["DEMO_NOTE", "MARKER", "build"]
