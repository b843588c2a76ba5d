"""Run the benchmark: one pass over models × dataset splits × test families.

settings checked → plan (:mod:`benchmark.plan`: each split loaded once,
the cells every analysis needs) → predict (:mod:`benchmark.executors`:
each model loaded once) → score (the analyses, from the stored
predictions; no model) → results. Each family's rows are written as soon
as they are computed, so a failure later on never loses finished
results; the failure is reported and scoring goes on with the next family.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import traceback
import typing
from pathlib import Path

import pandas as pd

from benchmark import analyses, prediction_cache, results, runner
from benchmark.data import datasets as dsets
from benchmark.plan import CellFailed, Outcome, RunSpec, cache_condition, load_evalset, plan
from benchmark.registry import Registry
from benchmark.timing import Timing


@dataclasses.dataclass
class SuiteReport:
    r"""What a suite run did: written tables, skips and failures."""

    model: str
    model_sha256: str = ""
    tables: dict = dataclasses.field(default_factory=dict)  # table → list of row frames
    skipped_files: list = dataclasses.field(default_factory=list)
    skipped_sets: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)
    wall_seconds: float = 0.0
    out_of_range: dict = dataclasses.field(default_factory=dict)  # (dataset, split, condition) → predictions
    results_dir: Path | None = None  # where its tables are written (None: benchmark.paths.results_root())

    @property
    def ok(self) -> bool:
        return not self.failures

    def frame(self, table: str) -> pd.DataFrame:
        frames = self.tables.get(table, [])
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run_suite(
    model_name: str,
    *,
    datasets: typing.Sequence[str] | None = None,
    splits: typing.Sequence[str] | None = None,
    tests: typing.Sequence[str] = analyses.FAMILIES,
    data: str = "demo",
    repositories: typing.Sequence | None = None,
    registry: Registry | None = None,
    dataset_registry: dict | None = None,
    seed: int = 0,
    num_workers: int = 1,
    options: dict | None = None,
    progress: bool = True,
    log: typing.Callable[[str], None] = print,
    predicted=None,
) -> SuiteReport:
    r"""Benchmark ``model_name`` and write its result tables (one model of :func:`run_models`, in this process).

    Args:
        model_name: a ``models.yaml`` entry
        datasets: dataset registry names (default: all)
        splits: split names to run (default: every evaluation split)
        tests: analysis families (``correctness``, ``robustness``, ``fairness``)
        data: ``'demo'`` (embedded replicas) or ``'real'`` (audb repositories)
        repositories: audb repositories for ``data='real'``
        registry: model registry (default: ``models.yaml``)
        dataset_registry: dataset registry (default: ``datasets.yaml``)
        seed: seed of bootstraps, subsets and perturbations
        num_workers: threads for audio reading and inference
        options: per-family options (``bootstrap``, ``conditions``, ``max_files`` ...)
        progress: show progress bars
        log: where progress messages go
        predicted: the :class:`benchmark.plan.Outcome` of this model's
            predict phase, run elsewhere (:func:`benchmark.executors.predict_cells`):
            only scoring is left; its failed cells are reported, not recomputed

    """
    registry = registry if registry is not None else Registry.from_file()
    dataset_registry = dataset_registry if dataset_registry is not None else dsets.load_registry()
    options = dict(options or {})
    spec = RunSpec(
        registry,
        dataset_registry,
        data=data,
        repositories=list(repositories) if repositories else None,
        seed=seed,
        options=options,
        num_workers=num_workers,
        batch_size=int(options.get("batch_size", 1)),
    )
    reports = run_models(
        [model_name],
        spec,
        datasets=datasets,
        splits=splits,
        tests=tests,
        progress=progress,
        log=log,
        predicted=None if predicted is None else {model_name: predicted},
    )
    return reports[model_name]


def run_models(
    models: typing.Sequence[str],
    spec: RunSpec,
    *,
    datasets: typing.Sequence[str] | None = None,
    splits: typing.Sequence[str] | None = None,
    tests: typing.Sequence[str] = analyses.FAMILIES,
    executor: str = "local",
    scale: dict | None = None,
    progress: bool = True,
    log: typing.Callable[[str], None] = print,
    timing: Timing | None = None,
    predicted: dict | None = None,
    results_dir: Path | None = None,
) -> dict[str, SuiteReport]:
    r"""One pass over the grid: check the settings, plan, predict once, score from the stored predictions.

    Every setting is checked before any prediction: unknown families,
    datasets, splits or models, the executor's options, and run settings
    that conflict with those the results folder was made with.

    Args:
        models: ``models.yaml`` names
        spec: registries, data source, seed, options of the run
        datasets: dataset names (default: all)
        splits: split names (default: every evaluation split)
        tests: analysis families
        executor: ``'local'`` or ``'ray'`` (:mod:`benchmark.executors`)
        scale: the executor's ``address``, ``replicas``, ``gpus_per_replica``, ``processes``
        progress: show progress bars
        log: where messages go
        timing: adds the ``data``, ``predict`` and ``score`` phases
        predicted: model → :class:`benchmark.plan.Outcome` of a predict
            phase run elsewhere (the ``predict`` phase is then skipped)
        results_dir: the results folder (default :func:`benchmark.paths.results_root`)

    Returns:
        model name → what its scoring wrote

    Raises:
        benchmark.results.SettingsConflictError: the results folder holds other settings

    """
    from benchmark.executors import check_executor, execute

    unknown = [t for t in tests if t not in analyses.FAMILIES]
    if unknown:
        raise ValueError(f"Unknown test family {unknown}; choose from {', '.join(analyses.FAMILIES)}.")
    names = list(datasets) if datasets else list(spec.dataset_registry)
    for name in names:
        if name not in spec.dataset_registry:
            raise dsets.DatasetConfigError(
                f"Unknown dataset '{name}'. Registered: {', '.join(spec.dataset_registry)}. Add it to datasets.yaml."
            )
    selected = dsets.check_splits(splits, [spec.dataset_registry[n] for n in names])
    for model in models:
        spec.registry[model]  # an unknown name fails before any work starts
    scale = dict(scale or {})
    timeout = scale.pop("address_timeout", None)
    check_executor(
        executor, int(scale.get("replicas", 1)), scale.get("address"), timeout or 30.0, int(scale.get("processes", 1))
    )
    options = {"data": spec.data, **(spec.options or {})}  # the analyses pick sources by it (babble talkers)
    results.claim_settings(results.run_settings(spec.seed, options, tests), results_dir)
    timing = timing if timing is not None else Timing()
    with timing.phase("data"):
        cells, where = plan(models, spec, datasets=names, splits=splits, tests=tests, log=log)
    if predicted is None:
        with timing.phase("predict"):
            predicted = execute(cells, where, spec, executor=executor, progress=progress, log=log, **scale)
    grid = Grid(names, selected, cells, where)
    with timing.phase("score"):
        return {
            model: score_model(
                model, grid, predicted.get(model) or Outcome(), spec, tests, options, log, results_dir=results_dir
            )
            for model in models
        }


@dataclasses.dataclass
class Grid:
    r"""What the plan holds for scoring: datasets, their splits, the cells and their inputs."""

    names: list
    selected: dict
    cells: list
    where: dict

    def evalsets(self, model: str) -> dict:
        r"""``(dataset, split)`` → the loaded split, for the cells of ``model``."""
        return {(c.dataset, c.split): self.where[c][0] for c in self.cells if c.model == model}


@dataclasses.dataclass(frozen=True)
class StoredModel:
    r"""A model as scoring knows it: its predictions are stored, it is not loaded."""

    name: str
    artifact_hash: str
    sampling_rate: int
    batch_size: int = 1


def score_model(
    model_name: str,
    grid: Grid,
    outcome: Outcome,
    spec: RunSpec,
    tests: typing.Sequence[str],
    options: dict,
    log: typing.Callable[[str], None] = print,
    *,
    results_dir: Path | None = None,
) -> SuiteReport:
    r"""Score one model's stored predictions on every split of ``grid`` and write its tables into ``results_dir``."""
    started = time.perf_counter()
    entry = spec.registry[model_name]
    model = StoredModel(entry.name, outcome.artifact_hash, outcome.sampling_rate, outcome.batch_size)
    report = SuiteReport(model=entry.name, model_sha256=model.artifact_hash, results_dir=results_dir)
    evalsets = grid.evalsets(model_name)
    for name in grid.names:
        dentry = spec.dataset_registry[name]
        shared = [d for d in dentry.label_dimensions if d in entry.outputs]
        if not shared:
            report.skipped_sets.append((name, "*", f"model predicts none of {list(dentry.label_dimensions)}"))
            log(f"skip {name}: '{entry.name}' predicts none of its labels ({', '.join(dentry.label_dimensions)})")
            continue
        for split in grid.selected[name]:
            t0 = time.perf_counter()
            evalset = evalsets.get((name, split))
            if evalset is None:  # the plan could not load it: load it again for the reason, and go on
                try:
                    evalset = load_evalset(spec, name, split)
                except Exception as ex:  # one dataset that cannot load must not stop the others
                    report.failures.append((name, split, "load", f"cannot load the dataset: {ex}"))
                    log(f"skip {name}/{split}: cannot load it ({type(ex).__name__}: {ex})")
                    continue
            applied = _applicable(tests, evalset, entry, report, log)
            counts = _score_split(model, entry, evalset, applied, spec, options, report, log, outcome)
            # The first run of a key is kept: its wall time is the one that computed the predictions.
            _write(
                report,
                "runs",
                pd.DataFrame(
                    [
                        {
                            "model": entry.name,
                            "model_sha256": model.artifact_hash,
                            **evalset.provenance(),
                            "tests": run_label(applied, options),
                            "n_files": len(evalset.files),
                            "predictions": counts["predictions"],
                            "computed": counts["computed"],
                            "wall_seconds": round(time.perf_counter() - t0 + counts["predict_seconds"], 1),
                        }
                    ]
                ),
                keep_existing=True,
            )
    report.wall_seconds = time.perf_counter() - started + sum(outcome.seconds.values())
    return report


def _applicable(tests, evalset, entry, report: SuiteReport, log) -> list[str]:
    r"""The families of ``tests`` that apply to ``evalset``; the others are recorded as skipped with their reason."""
    applied = []
    for family in tests:
        reason = analyses.not_applicable(family, evalset, entry.dimensions)
        if reason:
            report.skipped_sets.append((evalset.audb_name, evalset.split, f"{family}: {reason}"))
            log(f"{family} skipped on {evalset.dataset} ({evalset.audb_name}/{evalset.split}): {reason}")
        else:
            applied.append(family)
    return applied


def run_label(tests: typing.Sequence[str], options: dict) -> str:
    r"""The ``tests`` cell of a ``runs`` row: the families, and a robustness condition selection if any.

    Examples:
        >>> run_label(["correctness", "robustness"], {"conditions": ["gain", {"name": "x"}]})
        'correctness robustness[gain,x]'
        >>> run_label(["correctness", "robustness"], {})
        'correctness robustness'

    """
    selection = options.get("conditions")
    if isinstance(selection, str):
        selection = [s.strip() for s in selection.split(",") if s.strip()]
    names = ",".join(c["name"] if isinstance(c, dict) else str(c) for c in selection or [])
    return " ".join(f"{t}[{names}]" if t == "robustness" and names else t for t in tests)


def _score_split(model, entry, evalset, tests, spec: RunSpec, options, report, log, outcome: Outcome) -> dict:
    r"""Score ``model``'s stored predictions on ``evalset`` with the families ``tests``."""
    counts = {
        "predictions": 0,
        "computed": outcome.computed.get((evalset.dataset, evalset.split), 0),
        "predict_seconds": outcome.seconds.get((evalset.dataset, evalset.split), 0.0),
    }

    def predict(files=None, condition=None):
        key = prediction_cache.condition_key(condition)
        failed = outcome.failed.get((evalset.dataset, evalset.split, key))
        if failed:
            raise CellFailed(f"cell {key} failed: {failed}")
        pred, skips = stored_predictions(model, evalset, files, cache_condition(condition, spec))
        counts["predictions"] += len(pred) + len(skips)
        _record_skips(report, model, entry, evalset, condition, skips)
        _forget_skips(model, evalset, condition, pred, report.results_dir)
        _check_range(report, entry, evalset, condition, pred, log)
        return pred

    try:
        clean = predict()
    except CellFailed as ex:
        report.failures.append((evalset.audb_name, evalset.split, "all", str(ex)))
        log(f"{evalset.audb_name}/{evalset.split}: {ex}")
        return counts
    if not len(clean):
        report.failures.append((evalset.audb_name, evalset.split, "all", "no file could be scored (see skips.csv)"))
        log(f"{evalset.audb_name}/{evalset.split}: no file could be scored")
        return counts
    results.write_predictions(entry.name, model.artifact_hash, evalset, clean, report.results_dir)
    long = runner.segmented_files(clean.index, model.sampling_rate)
    if len(long):  # what was done to files longer than the model sees at once, in the results
        long["file"] = [_relative(f, evalset.root) for f in long["file"]]
        _write(
            report,
            "segmented",
            pd.DataFrame(
                {
                    "model": entry.name,
                    "model_sha256": model.artifact_hash,
                    **evalset.provenance(),
                    **long.to_dict("list"),
                }
            ),
        )
        log(
            f"{evalset.audb_name}/{evalset.split}: {len(long)} file(s) over {runner.MAX_SIGNAL_SECONDS:.0f} s "
            "predicted window by window (results/segmented.csv)"
        )
    context = analyses.Context(
        model,
        entry,
        evalset,
        predict,
        clean,
        seed=spec.seed,
        options=options,
        record_skips=lambda skips, condition: _record_skips(report, model, entry, evalset, condition, skips),
    )
    for family in tests:
        try:
            module = importlib.import_module(f"benchmark.analyses.{family}")
            tables = module.run(context)
        except Exception as ex:  # one failing family must not lose the others' results
            report.failures.append((evalset.audb_name, evalset.split, family, f"{type(ex).__name__}: {ex}"))
            log(f"FAILED {family} on {evalset.audb_name}/{evalset.split}: {type(ex).__name__}: {ex}")
            log(traceback.format_exc(limit=3))
            continue
        for table, rows in tables.items():
            if rows is not None and len(rows):
                _write(report, table, rows)
            if rows is not None and rows.attrs.get("reason"):
                reason = rows.attrs["reason"]
                report.skipped_sets.append((evalset.audb_name, evalset.split, f"{family}/{table}: {reason}"))
                what = "some" if len(rows) else "no"
                log(f"{family} on {evalset.audb_name}/{evalset.split}: {what} '{table}' rows left out: {reason}")
    return counts


def stored_predictions(model, evalset, files=None, condition: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Predictions and skips of ``files`` (default: the split's) from the cell's prediction cache.

    Ordered as ``files``, exactly as :func:`benchmark.runner.predict` returns them.

    Raises:
        CellFailed: the cache lacks some of the files (the plan did not list them)

    """
    from benchmark.executors.driver import cache_of

    files = pd.Index(evalset.files if files is None else files, name="file").astype("string")
    pred, skips = cache_of(model.name, model.artifact_hash, evalset, condition, model.batch_size).load()
    missing = files[~files.isin(pred.index.union(skips.index))]
    if len(missing):
        raise CellFailed(
            f"cell {prediction_cache.condition_key(condition)} holds no prediction for {len(missing)} of its "
            f"{len(files)} files (e.g. {missing[0]}): the plan did not list them"
        )
    return pred.reindex(files[files.isin(pred.index)]), skips.reindex(files[files.isin(skips.index)])


def _record_skips(report, model, entry, evalset, condition, skips: pd.DataFrame) -> None:
    if not len(skips):
        return
    rows = pd.DataFrame(
        {
            "model": entry.name,
            "model_sha256": model.artifact_hash,
            **evalset.provenance(),
            "condition": prediction_cache.condition_key(condition),
            "file": [_relative(f, evalset.root) for f in skips.index],
            "reason": skips["reason"].astype(str).values,
        }
    )
    report.skipped_files.extend(rows[["dataset", "split", "condition", "file", "reason"]].itertuples(index=False))
    _write(report, "skips", rows)


def _forget_skips(model, evalset, condition, pred: pd.DataFrame, results_dir: Path | None) -> None:
    r"""Drop the ``skips`` rows of files that are predicted now (a file that came back, or was repaired)."""
    old = results.read_table("skips", results_dir)
    if not len(old) or not len(pred):
        return
    mine = old[
        (old["model_sha256"] == model.artifact_hash)
        & (old["dataset"] == evalset.audb_name)
        & (old["dataset_version"].astype(str) == str(evalset.version))
        & (old["data_fingerprint"].astype(str) == evalset.fingerprint[:12])
        & (old["split"] == evalset.split)
        & (old["condition"] == prediction_cache.condition_key(condition))
    ]
    done = mine[mine["file"].isin({_relative(f, evalset.root) for f in pred.index})]
    if len(done):
        results.drop_rows("skips", done, results_dir)


def _check_range(report: SuiteReport, entry, evalset, condition, pred: pd.DataFrame, log) -> None:
    r"""Count and warn about predictions far off the 0..1 scale (:data:`benchmark.runner.PLAUSIBLE`); still scored."""
    far = runner.far_outside(pred)
    count = int(far.to_numpy().sum())
    if not count:
        return
    key = prediction_cache.condition_key(condition)
    report.out_of_range[(evalset.audb_name, evalset.split, key)] = count
    file, dim = far.stack().loc[lambda hits: hits].index[0]
    low, high = runner.PLAUSIBLE
    log(
        f"warning: {entry.name} on {evalset.audb_name}/{evalset.split} · {key}: {count} prediction(s) far outside "
        f"0..1 (below {low:g} or above {high:g}), e.g. {dim} {float(pred.loc[file, dim]):.6g} for "
        f"{_relative(file, evalset.root)}. The benchmark scores every model on 0..1: check the model's output "
        "scale (its transform, or the output mapped in models.yaml)."
    )


def _relative(path: str, root: str) -> str:
    import os

    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _write(report: SuiteReport, table: str, rows: pd.DataFrame, keep_existing: bool = False) -> None:
    if keep_existing:
        old = results.read_table(table, report.results_dir)
        if len(old):
            keys = list(results.KEYS[table])
            old_keys = old[keys].astype(str).apply(tuple, axis=1)
            new_keys = rows[keys].astype(str).apply(tuple, axis=1)
            rows = rows[~new_keys.isin(set(old_keys))]
            if not len(rows):
                return
    results.write_rows(table, rows, report.results_dir)
    report.tables.setdefault(table, []).append(rows)
