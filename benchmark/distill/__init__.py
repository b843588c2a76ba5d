"""Distillation: train a small student on a teacher's A/D/V outputs alone (no human labels).

Stages, one module each, run in this order by :func:`~benchmark.distill.pipeline.distill`:

* :mod:`benchmark.distill.config`: :class:`DistillConfig`, made of parts
  (task, hyper-parameters, crops, finishing, validation, runtime); the
  command line (:mod:`benchmark.distill.cli`) is generated from its fields
* :mod:`benchmark.distill.registry_update`: the student's entry in
  ``models.yaml``, read for its recipe and rewritten when a run is recorded
* :mod:`benchmark.distill.runtime`: device, threads, processes (torchrun)
* :mod:`benchmark.distill.teacher` and :mod:`benchmark.distill.annotate`:
  training audio (:mod:`~benchmark.distill.audio`) → seeded, augmented crops
  (:mod:`~benchmark.distill.crops`) → teacher targets, cached on disk by
  teacher and audio content; held-out and gold validation sets
* :mod:`benchmark.distill.train`: the :class:`~benchmark.distill.train.Trainer`
  (step, validate, checkpoint), with :mod:`~benchmark.distill.validation`,
  :mod:`~benchmark.distill.candidate`, :mod:`~benchmark.distill.checkpoint`
  and :mod:`~benchmark.distill.history`
* :mod:`benchmark.distill.export`: ONNX export and scoring through the benchmark's loader
* :mod:`benchmark.distill.finish`: output-layer refit
  (:mod:`~benchmark.distill.refit`), export and the int8 guard
* :mod:`benchmark.distill.records`: provenance records, and the registry update
* :mod:`benchmark.distill.targets`: a distilled student against its teacher
  on the held-out test split, with bootstrap intervals, and the targets it meets
* :mod:`benchmark.distill.compare`: a re-distillation over a committed model
  goes to a candidate folder and is judged against it by behaviour; the
  command line says which one it keeps

A module imports only modules listed before it (the configuration reads
the crop recipe's defaults from :mod:`~benchmark.distill.crops`, a module
without imports from the stage but :mod:`~benchmark.distill.audio`), so
the stage has no import cycle. It has no package-level names: import from the module that defines a name, e.g.
``from benchmark.distill.pipeline import distill``.

See ``docs/distillation.md``.
"""
