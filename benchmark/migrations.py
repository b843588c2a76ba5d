"""One-off migrations of committed data when an identity rule changes.

:func:`migrate_hashes` moves artefact hashes from the whole-folder rule
(:func:`benchmark.hashing.sha256_tree`, which took ``provenance.json``
in) to the rule of :func:`benchmark.hashing.artifact_sha256` (the bytes
that predict). Command line: ``python -m benchmark migrate-hashes``.

Only artefacts still on disk can be re-hashed: a ``models.yaml`` entry
whose pinned ``source.sha256`` is the old hash of the folder it names.
Older hashes in the result tables (networks whose weights have since
been replaced) stay as they are; each of them is one network.

The migration is idempotent: once ``models.yaml`` pins the new hashes,
it finds nothing to map and changes nothing. ``models.yaml`` is written
last, so an interrupted run is finished by running it again.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import typing
from pathlib import Path

import yaml

from benchmark.hashing import RECORD_NAMES, artifact_sha256, sha256_tree
from benchmark.results import KEYS, atomic_write_text

TEXT_SUFFIXES = (".csv", ".json", ".yaml", ".yml")
"""Files under ``results/`` in which hashes are replaced."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass
class HashMigration:
    r"""What :func:`migrate_hashes` found and did.

    Attributes:
        mapping: old artefact hash → new one
        names: old hash → model name
        changed: files rewritten (or to rewrite, on a dry run)
        renamed: ``(old, new)`` paths of folders renamed
        problems: entries or files left alone, and why
        blocked: a problem stopped ``models.yaml`` from being updated;
            fix it and run again

    """

    mapping: dict[str, str] = dataclasses.field(default_factory=dict)
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    changed: list[Path] = dataclasses.field(default_factory=list)
    renamed: list[tuple[Path, Path]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    blocked: bool = False


def _entries(models_path: Path) -> list[dict]:
    data = yaml.safe_load(models_path.read_text()) or {}
    return [e for e in data.get("models") or [] if isinstance(e, dict)]


def hash_mapping(models_path: str | os.PathLike) -> HashMigration:
    r"""Old → new artefact hash of every local model pinned by its whole-folder hash.

    Read from the YAML alone (the registry's own validation would reject
    the old hashes). An entry already pinned by its new hash is skipped;
    one whose pin is neither hash of its files is reported, not mapped:
    its artefact changed after it was pinned.
    """
    models_path = Path(models_path)
    out = HashMigration()
    for entry in _entries(models_path):
        source, kind, name = entry.get("source") or {}, entry.get("kind"), entry.get("name")
        if not isinstance(source, dict) or "path" not in source or not _SHA256.match(str(source.get("sha256", ""))):
            continue
        path = Path(os.path.expanduser(str(source["path"])))
        path = path if path.is_absolute() else models_path.parent / path
        if not path.exists():
            out.problems.append(f"{name}: {path} does not exist; its hash stays as pinned.")
            continue
        pinned, new = source["sha256"], artifact_sha256(path, kind)
        if pinned == new:
            continue
        if sha256_tree(path) == pinned:
            out.mapping[pinned] = new
            out.names[pinned] = name
        else:
            out.problems.append(
                f"{name}: models.yaml pins {pinned[:12]}, which is neither the old nor the new hash of {path} "
                "(the artefact changed since it was pinned); not migrated."
            )
    return out


def replace_hashes(text: str, mapping: dict[str, str]) -> str:
    r"""``text`` with every old hash of ``mapping`` replaced by its new one.

    Examples:
        >>> replace_hashes("m,aaa,1\\nm,bbb,2", {"aaa": "ccc"})
        'm,ccc,1\\nm,bbb,2'

    """
    if not mapping:
        return text
    pattern = re.compile("|".join(re.escape(old) for old in sorted(mapping, key=len, reverse=True)))
    return pattern.sub(lambda m: mapping[m.group(0)], text)


def _duplicate_keys(name: str, text: str) -> list[str]:
    r"""Keys of result table ``name`` that occur twice in ``text`` (CSV)."""
    import io

    import pandas as pd

    from benchmark.results import KEYS

    if name not in KEYS:
        return []
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    keys = [k for k in KEYS[name] if k in df.columns]
    if not len(df) or not keys:
        return []
    dup = df[df.duplicated(keys, keep=False)]
    return sorted({f"{r['model']} {r['model_sha256'][:12]}" for _, r in dup.iterrows()})


def _record_files(models_path: Path) -> list[Path]:
    r"""Provenance records inside the folders of local models (they may name other models' hashes)."""
    folders = set()
    for entry in _entries(models_path):
        source = entry.get("source") or {}
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            path = Path(os.path.expanduser(source["path"]))
            path = path if path.is_absolute() else models_path.parent / path
            folder = path if path.is_dir() else path.parent
            if folder.is_dir():
                folders.add(folder)
    return sorted({p for folder in folders for name in RECORD_NAMES for p in folder.rglob(name) if p.is_file()})


def _rename(old: Path, new: Path, out: HashMigration, dry_run: bool) -> None:
    r"""Move folder ``old`` to ``new``; merge into an existing ``new`` where files agree."""
    if not new.exists():
        out.renamed.append((old, new))
        if not dry_run:
            old.rename(new)
        return
    clashes = [
        p.relative_to(old)
        for p in old.rglob("*")
        if p.is_file()
        and (new / p.relative_to(old)).exists()
        and (new / p.relative_to(old)).read_bytes() != p.read_bytes()
    ]
    if clashes:
        out.problems.append(f"{old} and {new} both exist and differ in {clashes[0]}; merge them by hand.")
        out.blocked = True
        return
    out.renamed.append((old, new))
    if not dry_run:
        for p in sorted(old.rglob("*")):
            target = new / p.relative_to(old)
            if p.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                p.rename(target)
        shutil.rmtree(old)


def migrate_hashes(
    models_path: str | os.PathLike,
    results_dir: str | os.PathLike,
    *,
    cache: str | os.PathLike | None = None,
    dry_run: bool = False,
) -> HashMigration:
    r"""Move committed records from whole-folder hashes to artefact hashes, once.

    For each mapping of :func:`hash_mapping`: the hash is replaced in the
    result tables and records under ``results_dir`` (CSV, JSON, YAML:
    ``model_sha256`` columns, ``targets.json``, distillation provenance),
    in the provenance records of the model folders, and in
    ``models.yaml`` (``source.sha256``, ``distilled.teacher_sha256``);
    the stored predictions ``results_dir/predictions/{model}__{hash[:12]}``
    and the prediction cache ``cache/predictions/{model}/{hash[:16]}`` are
    renamed. A table that would then hold one key twice (the model was
    already benchmarked under its new hash) is left alone and reported.

    Args:
        models_path: the model registry
        results_dir: the result tables
        cache: the cache root (``None``: leave the cache alone)
        dry_run: report what would change, write nothing

    Returns:
        what was found and done

    """
    models_path, results_dir = Path(models_path), Path(results_dir)
    out = hash_mapping(models_path)
    if not out.mapping:
        return out
    texts = sorted(p for p in results_dir.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    for path in [*texts, *_record_files(models_path)]:
        old = path.read_text()
        new = replace_hashes(old, out.mapping)
        if new == old:
            continue
        dups = _duplicate_keys(path.stem, new) if path.parent == results_dir and path.suffix == ".csv" else []
        if dups:
            out.problems.append(
                f"{path}: rows of {', '.join(dups)} exist under the old and the new hash; delete the rows "
                "with the new hash and run the migration again. Not changed."
            )
            out.blocked = True
            continue
        if path.parent == results_dir and path.suffix == ".csv" and path.stem in KEYS:
            new = sorted_table(path.stem, new)  # a new hash sorts elsewhere: the file a run would write
        out.changed.append(path)
        if not dry_run:
            atomic_write_text(path, new)
    for old_hash, new_hash in out.mapping.items():
        name = out.names[old_hash]
        folders = [(results_dir / "predictions", f"{name}__{old_hash[:12]}", f"{name}__{new_hash[:12]}")]
        if cache is not None:
            folders.append((Path(cache) / "predictions" / name, old_hash[:16], new_hash[:16]))
        for parent, old_name, new_name in folders:
            if (parent / old_name).is_dir():
                _rename(parent / old_name, parent / new_name, out, dry_run)
    if not out.blocked:
        out.changed.append(models_path)
        if not dry_run:  # last: a rerun after an interruption still finds the mapping
            atomic_write_text(models_path, replace_hashes(models_path.read_text(), out.mapping))
    return out


def sorted_table(name: str, text: str) -> str:
    r"""The CSV ``text`` of result table ``name`` with its rows sorted by the table's key, as runs write it.

    Examples:
        >>> text = "model,model_sha256,parameters\nb,1,2\na,2,3\n"
        >>> sorted_table("efficiency", text)
        'model,model_sha256,parameters\na,2,3\nb,1,2\n'

    """
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df = df.sort_values(list(KEYS[name]), kind="stable").reset_index(drop=True)
    return df.to_csv(index=False, lineterminator="\n")


def sort_tables(results_dir: str | os.PathLike) -> list[Path]:
    r"""Sort every result table under ``results_dir`` by its key (tables re-keyed before 0.12.0 were not); changed files."""
    changed = []
    for name in KEYS:
        path = Path(results_dir) / f"{name}.csv"
        if path.exists():
            text = path.read_text()
            new = sorted_table(name, text)
            if new != text:
                atomic_write_text(path, new)
                changed.append(path)
    return changed


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Command line: ``python -m benchmark migrate-hashes [--dry-run]``."""
    import argparse

    from benchmark.paths import PROJECT_ROOT, cache_root, results_root

    parser = argparse.ArgumentParser(
        prog="python -m benchmark migrate-hashes",
        description="Re-key committed results from whole-folder hashes to artefact hashes (the bytes that "
        "predict). Idempotent: a second run changes nothing.",
    )
    parser.add_argument(
        "--models", default=str(PROJECT_ROOT / "models.yaml"), help="model registry (default: models.yaml)"
    )
    parser.add_argument("--results", default=None, help="result tables (default: results/ or $SER_BENCHMARK_RESULTS)")
    parser.add_argument("--no-cache", action="store_true", help="leave the prediction cache alone")
    parser.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    args = parser.parse_args(argv)
    out = migrate_hashes(
        args.models, args.results or results_root(), cache=None if args.no_cache else cache_root(), dry_run=args.dry_run
    )
    for old, new in out.mapping.items():
        print(f"{out.names[old]}: {old[:12]} -> {new[:12]}")
    verb = "would change" if args.dry_run else "changed"
    for path in out.changed:
        print(f"{verb}: {path}")
    for old, new in out.renamed:
        print(f"{'would rename' if args.dry_run else 'renamed'}: {old} -> {new.name}")
    for problem in out.problems:
        print(f"problem: {problem}")
    if not out.mapping:
        print("nothing to migrate: every local model is pinned by its artefact hash")
    return 1 if out.blocked else 0


def relative_record_paths(path: str | os.PathLike, project: str, cache: str) -> bool:
    r"""Rewrite a distillation record's machine paths once: the model folders relative to the project,
    the cache entries relative to the cache root (as records are written now). ``True`` if it changed.

    Args:
        path: a ``results/distill/<student>/provenance.json``
        project: the project folder the record was written in (e.g. ``/work/main``)
        cache: the cache root it was written with (e.g. ``/root/.cache/ser-benchmark``)

    """
    import json

    path = Path(path)
    record = json.loads(path.read_text())
    student, cached = record.get("student", {}), record.get("cache", {})
    before = json.dumps(record)
    for key in ("path", "int8_path"):
        if isinstance(student.get(key), str) and student[key].startswith(project.rstrip("/") + "/"):
            student[key] = student[key][len(project.rstrip("/")) + 1 :]
    for key, value in list(cached.items()):
        if isinstance(value, str) and value.startswith(cache.rstrip("/") + "/"):
            cached[key] = value[len(cache.rstrip("/")) + 1 :]
    if json.dumps(record) == before:
        return False
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
    return True
