"""A run planned as independent cells: one per model × dataset × split × condition.

A cell is what the prediction cache is keyed by. Cells are *predicted*
by an executor (:mod:`benchmark.executors`: in this process, or on Ray
actors that hold a loaded model); the analyses then *score* the cached
predictions in the driver, so scoring never waits on a model.

Everything a worker needs to rebuild a cell's inputs on its own node
travels in a :class:`RunSpec`; perturbed audio is made by
:func:`cell_inputs` once per condition and split (cached on disk) and
reused by every model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing

import pandas as pd

from benchmark import runner


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
        return self.dataset, self.split, runner.condition_key(self.condition_dict)

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


@dataclasses.dataclass
class Outcome:
    r"""What the predict phase did for one model (handed to the suite).

    Attributes:
        computed: ``(dataset, split)`` → files run through the model
        seconds: ``(dataset, split)`` → seconds spent predicting its cells
        failed: :attr:`Cell.key` → error of a cell that could not be predicted

    """

    computed: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)
    failed: dict = dataclasses.field(default_factory=dict)

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
    r"""Original files of a cell and the files its model reads.

    Clean cells read the split's files. A condition's cells read the
    perturbed copies of the robustness subset, made here (cached on disk)
    exactly as :func:`benchmark.analyses.robustness.run` makes them.

    Returns:
        original files, files to predict (same length and order)

    """
    if not condition:
        return evalset.files, pd.Index(evalset.files, name="file")
    from benchmark.analyses import robustness

    options = {"data": spec.data, **(spec.options or {})}
    paths = robustness.perturbed_files(
        robustness.condition_files(evalset, options, spec.seed), condition, evalset, options, spec.seed
    )
    if paths is None:  # a condition without its sources (babble on real data without --babble): nothing to predict
        return pd.Index([], name="file"), pd.Index([], name="file")
    return pd.Index(paths.index, name="file"), pd.Index(paths.to_numpy(), name="file")


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
    r"""Cells of a run, model by model, and their inputs.

    Mirrors :func:`benchmark.suite.run_suite`: datasets whose labels the
    model does not predict have no cells; robustness conditions add a
    cell each. A condition that cannot be planned (e.g. an unknown name)
    adds none: the suite then reports it as that family's failure.

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
                                f"plan: no cell for {name}/{split} · {runner.condition_key(condition)} "
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
