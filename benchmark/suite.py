"""Run the benchmark for one model: every selected dataset split × test family.

registry → data → runner → analyses → results → docs. Each family's
rows are written as soon as they are computed, so a failure later on
never loses finished results; the failure is reported and the suite
goes on with the next family.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import traceback
import typing

import pandas as pd

from benchmark import analyses, results, runner
from benchmark.data import datasets as dsets
from benchmark.plan import CellFailed
from benchmark.registry import Registry, load_model


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
    r"""Benchmark ``model_name`` and write its result tables.

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
            predict phase (:func:`benchmark.executors.predict_cells`): its
            counts go into ``runs``, its failed cells are reported, not recomputed

    """
    unknown = [t for t in tests if t not in analyses.FAMILIES]
    if unknown:
        raise ValueError(f"Unknown test family {unknown}; choose from {', '.join(analyses.FAMILIES)}.")
    registry = registry if registry is not None else Registry.from_file()
    entry = registry[model_name]
    dataset_registry = dataset_registry if dataset_registry is not None else dsets.load_registry()
    names = list(datasets) if datasets else list(dataset_registry)
    for name in names:
        if name not in dataset_registry:
            raise dsets.DatasetConfigError(
                f"Unknown dataset '{name}'. Registered: {', '.join(dataset_registry)}. Add it to datasets.yaml."
            )
    selected = check_splits(splits, [dataset_registry[n] for n in names])
    options = {"data": data, **(options or {})}  # the analyses pick sources by it (babble talkers)
    results.claim_settings(results.run_settings(seed, options or {}, tests))
    started = time.perf_counter()
    model = load_model(entry, registry)
    report = SuiteReport(model=entry.name, model_sha256=model.artifact_hash)
    for name in names:
        dentry = dataset_registry[name]
        shared = [d for d in dentry.label_dimensions if d in entry.outputs]
        if not shared:
            report.skipped_sets.append((name, "*", f"model predicts none of {list(dentry.label_dimensions)}"))
            log(f"skip {name}: '{entry.name}' predicts none of its labels ({', '.join(dentry.label_dimensions)})")
            continue
        for split in selected[name]:
            t0 = time.perf_counter()
            try:
                evalset = dsets.load_split(dentry, split, data=data, repositories=repositories)
            except Exception as ex:  # one dataset that cannot load must not stop the others
                report.failures.append((name, split, "load", f"cannot load the dataset: {ex}"))
                log(f"skip {name}/{split}: cannot load it ({type(ex).__name__}: {ex})")
                continue
            applied = _applicable(tests, evalset, entry, report, log)
            counts = _run_split(
                model, entry, evalset, applied, seed, num_workers, options or {}, progress, report, log, predicted
            )
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
                            "tests": run_label(applied, options or {}),
                            "n_files": len(evalset.files),
                            "predictions": counts["predictions"],
                            "computed": counts["computed"],
                            "wall_seconds": round(time.perf_counter() - t0 + counts["predict_seconds"], 1),
                        }
                    ]
                ),
                keep_existing=True,
            )
    report.wall_seconds = time.perf_counter() - started
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


def check_splits(splits: typing.Sequence[str] | None, entries: typing.Sequence) -> dict[str, list[str]]:
    r"""Splits to run per dataset; every requested split must exist in at least one of them.

    A split that only some datasets have runs on those (``--split test-1``
    picks MSP-Podcast's first test set); a split none has is an error.

    Raises:
        benchmark.data.datasets.DatasetConfigError: listing the valid splits

    """
    chosen = {e.name: [s for s in (splits or e.splits) if s in e.splits] for e in entries}
    unknown = [s for s in (splits or []) if not any(s in e.splits for e in entries)]
    if unknown:
        valid = "; ".join(f"{e.name}: {', '.join(e.splits)}" for e in entries)
        raise dsets.DatasetConfigError(f"Unknown split(s) {', '.join(map(repr, unknown))}. Splits: {valid}.")
    return chosen


def _run_split(model, entry, evalset, tests, seed, num_workers, options, progress, report, log, predicted=None) -> dict:
    counts = {"predictions": 0, "computed": 0, "predict_seconds": 0.0}
    if predicted is not None:  # the predict phase ran the cells: its work is this split's
        counts["computed"] += predicted.computed.get((evalset.dataset, evalset.split), 0)
        counts["predict_seconds"] += predicted.seconds.get((evalset.dataset, evalset.split), 0.0)

    def predict(files=None, condition=None):
        failed = (
            predicted.failed.get((evalset.dataset, evalset.split, runner.condition_key(condition)))
            if predicted
            else None
        )
        if failed:
            raise CellFailed(f"cell {runner.condition_key(condition)} failed: {failed}")
        pred, skips = runner.predict(
            model,
            evalset,
            files,
            condition=condition,
            num_workers=num_workers,
            progress=progress,
            batch_size=int(options.get("batch_size", 1)),  # the predict phase's cache (a batched run has its own)
        )
        counts["predictions"] += len(pred) + len(skips)
        counts["computed"] += pred.attrs.get("computed", 0)
        _record_skips(report, model, entry, evalset, condition, skips)
        _forget_skips(model, evalset, condition, pred)
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
    results.write_predictions(entry.name, model.artifact_hash, evalset, clean)
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
        seed=seed,
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


def _record_skips(report, model, entry, evalset, condition, skips: pd.DataFrame) -> None:
    if not len(skips):
        return
    rows = pd.DataFrame(
        {
            "model": entry.name,
            "model_sha256": model.artifact_hash,
            **evalset.provenance(),
            "condition": runner.condition_key(condition),
            "file": [_relative(f, evalset.root) for f in skips.index],
            "reason": skips["reason"].astype(str).values,
        }
    )
    report.skipped_files.extend(rows[["dataset", "split", "condition", "file", "reason"]].itertuples(index=False))
    _write(report, "skips", rows)


def _forget_skips(model, evalset, condition, pred: pd.DataFrame) -> None:
    r"""Drop the ``skips`` rows of files that are predicted now (a file that came back, or was repaired)."""
    old = results.read_table("skips")
    if not len(old) or not len(pred):
        return
    mine = old[
        (old["model_sha256"] == model.artifact_hash)
        & (old["dataset"] == evalset.audb_name)
        & (old["dataset_version"].astype(str) == str(evalset.version))
        & (old["data_fingerprint"].astype(str) == evalset.fingerprint[:12])
        & (old["split"] == evalset.split)
        & (old["condition"] == runner.condition_key(condition))
    ]
    done = mine[mine["file"].isin({_relative(f, evalset.root) for f in pred.index})]
    if len(done):
        results.drop_rows("skips", done)


def _check_range(report: SuiteReport, entry, evalset, condition, pred: pd.DataFrame, log) -> None:
    r"""Count and warn about predictions far off the 0..1 scale (:data:`benchmark.runner.PLAUSIBLE`); still scored."""
    far = runner.far_outside(pred)
    count = int(far.to_numpy().sum())
    if not count:
        return
    key = runner.condition_key(condition)
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
        old = results.read_table(table)
        if len(old):
            keys = list(results.KEYS[table])
            old_keys = old[keys].astype(str).apply(tuple, axis=1)
            new_keys = rows[keys].astype(str).apply(tuple, axis=1)
            rows = rows[~new_keys.isin(set(old_keys))]
            if not len(rows):
                return
    results.write_rows(table, rows)
    report.tables.setdefault(table, []).append(rows)
