"""A run planned as independent cells: one per model × dataset × split × condition.

The plan lists what every analysis needs (model × split × condition →
files), so the grid is walked once: cells are *predicted* by an executor
(:mod:`benchmark.executors`: in this process, or on Ray actors that hold
a loaded model) into the prediction cache, and the analyses then *score*
the stored predictions in the driver (:func:`benchmark.suite.score_model`),
with no model and no second load of a split.

Everything a worker needs to rebuild a cell's inputs on its own node
travels in a :class:`RunSpec`. A condition's cell lists the original
files; the worker perturbs each file in memory as it predicts it
(:func:`signal_source`), so no perturbed copy of a split is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing

import pandas as pd

from benchmark import prediction_cache


class CellFailed(RuntimeError):
    r"""A cell could not be predicted (its error is the message)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    r"""One unit of prediction work.

    Attributes:
        model: ``models.yaml`` name
        dataset: ``datasets.yaml`` name
        split: split name
        condition: the robustness condition as sorted JSON (``''``: clean audio)
        n_files: files the driver planned for the cell
        digest: hash of those files' paths relative to the database root,
            so a worker that sees other data fails instead of mixing them up

    Examples:
        >>> cell = Cell("constant", "iemocap", "test", "")
        >>> cell.condition_dict is None, cell.key
        (True, ('iemocap', 'test', 'clean'))

    """

    model: str
    dataset: str
    split: str
    condition: str = ""
    n_files: int = 0
    digest: str = ""

    @property
    def condition_dict(self) -> dict | None:
        return json.loads(self.condition) if self.condition else None

    @property
    def key(self) -> tuple[str, str, str]:
        r"""``(dataset, split, condition key)``: the cell of a model, as the suite asks for it."""
        return self.dataset, self.split, prediction_cache.condition_key(self.condition_dict)

    def __str__(self) -> str:
        return f"{self.model} · {self.dataset}/{self.split} · {self.key[2]}"


@dataclasses.dataclass
class RunSpec:
    r"""What every worker needs to rebuild a cell: registries, data source, seed, options."""

    registry: typing.Any
    dataset_registry: dict
    data: str = "demo"
    repositories: list | None = None
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    num_workers: int = 1
    batch_size: int = 1
    env: dict = dataclasses.field(default_factory=dict)
    signal_cache_mb: float = 0.0
    """Megabytes of perturbed signals kept on disk for the next model (0: none, perturb for every model)."""


@dataclasses.dataclass
class Outcome:
    r"""What the predict phase did for one model (handed to the suite).

    Attributes:
        computed: ``(dataset, split)`` → files run through the model
        seconds: ``(dataset, split)`` → seconds spent predicting its cells
        failed: :attr:`Cell.key` → error of a cell that could not be predicted
        artifact_hash: SHA-256 of the model's artefact, as the worker that loaded it saw it
        sampling_rate: the model's rate
        batch_size: files per batch of its prediction cache (1: a model that does not batch)

    """

    computed: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)
    failed: dict = dataclasses.field(default_factory=dict)
    artifact_hash: str = ""
    sampling_rate: int = 16000
    batch_size: int = 1

    def loaded(self, artifact_hash: str, sampling_rate: int, batch_size: int) -> None:
        r"""Record what the worker that loaded the model reported."""
        self.artifact_hash, self.sampling_rate, self.batch_size = artifact_hash, int(sampling_rate), int(batch_size)

    def add(self, cell: Cell, computed: int, seconds: float, error: str | None = None) -> None:
        split = (cell.dataset, cell.split)
        self.computed[split] = self.computed.get(split, 0) + int(computed)
        self.seconds[split] = self.seconds.get(split, 0.0) + float(seconds)
        if error:
            self.failed[cell.key] = error


def files_digest(originals: pd.Index, root: str, fingerprint: str = "") -> str:
    r"""Hash of the split's content fingerprint and its files relative to the database root.

    Machine independent: two nodes agree when they load the same data.

    Examples:
        >>> files_digest(pd.Index(["/a/x.wav", "/a/y.wav"]), "/a") == files_digest(pd.Index(["/b/x.wav", "/b/y.wav"]), "/b")
        True

    """
    names = "\n".join([fingerprint, *(os.path.relpath(str(f), root) for f in originals)])
    return hashlib.sha256(names.encode()).hexdigest()[:16]


def conditions(spec: RunSpec) -> list[dict]:
    r"""The robustness conditions a run uses (as :mod:`benchmark.analyses.robustness` selects them)."""
    from benchmark.analyses import perturbations, robustness

    options = spec.options or {}
    chosen = robustness.select_conditions(
        perturbations.load_conditions(options.get("conditions_file")), options.get("conditions")
    )
    return [perturbations.check_condition(c) for c in chosen]


def cell_inputs(condition: dict | None, evalset, spec: RunSpec) -> tuple[pd.Index, pd.Index]:
    r"""Original files of a cell and the files its model is run on.

    Clean cells read the split's files. A condition's cells run on the
    robustness subset (:func:`benchmark.analyses.robustness.condition_files`),
    whose signals :func:`signal_source` perturbs in memory.

    Returns:
        original files, files to predict (same length and order)

    """
    if not condition:
        return evalset.files, pd.Index(evalset.files, name="file")
    from benchmark.analyses import robustness

    options = {"data": spec.data, **(spec.options or {})}
    if condition["type"] == "babble" and robustness.babble_files(options) is None:
        # babble on real data without --babble: nothing to predict (the analysis says why)
        return pd.Index([], name="file"), pd.Index([], name="file")
    files = robustness.condition_files(evalset, options, spec.seed)
    return pd.Index(files, name="file"), pd.Index(files, name="file")


def cache_condition(condition: dict | None, spec: RunSpec) -> dict | None:
    r"""The condition as the prediction cache is keyed by it: with the hash of everything that makes its audio.

    A condition's cell predicts the original files' names, so the cache key
    must change with the seed and the babble talkers (:func:`~benchmark.analyses.perturbations.condition_hash`),
    not only with the condition's definition.

    Examples:
        >>> cache_condition(None, RunSpec(None, {})) is None
        True

    """
    if not condition:
        return None
    from benchmark.analyses import perturbations, robustness

    options = {"data": spec.data, **(spec.options or {})}
    babble = robustness.babble_files(options) if condition["type"] == "babble" else None
    digest = perturbations.condition_hash(condition, seed=spec.seed, babble_files=babble)
    return {**condition, "signal_sha256": digest}


def signal_cache(spec: RunSpec):
    r"""The run's store of perturbed signals, or ``None`` (:attr:`RunSpec.signal_cache_mb` 0)."""
    if not spec.signal_cache_mb or spec.signal_cache_mb <= 0:
        return None
    from benchmark.analyses.perturbations.memory import SignalCache
    from benchmark.paths import cache_dir

    return SignalCache(cache_dir("signals"), spec.signal_cache_mb)


def signal_source(condition: dict | None, evalset, spec: RunSpec, cache=None):
    r"""What gives a cell's signals: ``None`` for clean audio (the files), else a
    :class:`~benchmark.analyses.perturbations.memory.Perturber` of the condition.

    Raises:
        benchmark.analyses.perturbations.ConditionError: the condition cannot be applied
    """
    if not condition:
        return None
    from benchmark.analyses import robustness
    from benchmark.analyses.perturbations.memory import Perturber

    options = {"data": spec.data, **(spec.options or {})}
    return Perturber(
        condition,
        root_key=f"{evalset.audb_name}-{evalset.version}",
        seed=spec.seed,
        babble_files=robustness.babble_files(options) if condition["type"] == "babble" else None,
        root=evalset.root,
        cache=cache,
    )


def load_evalset(spec: RunSpec, dataset: str, split: str, loaded: dict | None = None):
    r"""Load a split once per process (``loaded`` memoises)."""
    from benchmark.data import datasets as dsets

    loaded = {} if loaded is None else loaded
    if (dataset, split) not in loaded:
        loaded[(dataset, split)] = dsets.load_split(
            spec.dataset_registry[dataset], split, data=spec.data, repositories=spec.repositories
        )
    return loaded[(dataset, split)]


def plan(
    models: typing.Sequence[str],
    spec: RunSpec,
    *,
    datasets: typing.Sequence[str] | None = None,
    splits: typing.Sequence[str] | None = None,
    tests: typing.Sequence[str] = (),
    log: typing.Callable[[str], None] = print,
) -> tuple[list[Cell], dict]:
    r"""Cells of a run, model by model, and their inputs; each split is loaded once.

    Datasets whose labels the model does not predict have no cells;
    robustness conditions add a cell each. A condition that cannot be
    planned (e.g. an unknown name) adds none: scoring then reports it as
    that family's failure.

    Returns:
        the cells, and ``cell → (evalset, originals, files)``

    """
    from benchmark.data import datasets as dsets

    names = list(datasets) if datasets else list(spec.dataset_registry)
    for name in names:
        if name not in spec.dataset_registry:
            raise dsets.DatasetConfigError(
                f"Unknown dataset '{name}'. Registered: {', '.join(spec.dataset_registry)}. Add it to datasets.yaml."
            )
    conds: list[dict] = []
    if "robustness" in tests:
        try:
            conds = conditions(spec)
        except Exception as ex:  # the suite reports it where it always did: as robustness' failure
            log(f"plan: no robustness cells ({type(ex).__name__}: {ex})")
    loaded: dict = {}
    inputs: dict = {}  # (dataset, split, condition JSON) → (evalset, originals, files)
    cells, where = [], {}
    for model in models:
        entry = spec.registry[model]
        for name in names:
            dentry = spec.dataset_registry[name]
            if not [d for d in dentry.label_dimensions if d in entry.outputs]:
                continue
            for split in splits or list(dentry.splits):
                if split not in dentry.splits:
                    continue
                try:
                    evalset = load_evalset(spec, name, split, loaded)
                except Exception as ex:  # reported by the suite, which tries it again and records the failure
                    log(f"plan: no cells for {name}/{split}: cannot load it ({type(ex).__name__})")
                    continue
                for condition in [None, *conds]:
                    text = json.dumps(condition, sort_keys=True) if condition else ""
                    if (name, split, text) not in inputs:
                        try:
                            originals, files = cell_inputs(condition, evalset, spec)
                        except Exception as ex:
                            log(
                                f"plan: no cell for {name}/{split} · {prediction_cache.condition_key(condition)} "
                                f"({type(ex).__name__}: {ex})"
                            )
                            inputs[(name, split, text)] = None
                            continue
                        inputs[(name, split, text)] = (evalset, originals, files)
                    if inputs[(name, split, text)] is None:
                        continue
                    evalset_, originals, files = inputs[(name, split, text)]
                    cell = Cell(
                        model,
                        name,
                        split,
                        text,
                        len(originals),
                        files_digest(originals, evalset.root, evalset.fingerprint),
                    )
                    cells.append(cell)
                    where[cell] = inputs[(name, split, text)]
    return cells, where
