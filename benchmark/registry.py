"""The model registry: ``models.yaml``.

Each entry is both the model's metadata and the recipe to load it
(as in MTEB's model metadata or lm-evaluation-harness's YAML tasks).
Loading validates the whole file and reports every problem at once,
each naming the entry, the field and the fix.

Example entry::

    - name: wav2small
      kind: audonnx
      role: student
      source: {path: weights/wav2small, sha256: 3f5a...}
      sampling_rate: 16000
      outputs: {arousal: arousal, dominance: dominance, valence: valence}
      description: Wav2Small distilled from the offline teacher.
      citation: Kounades-Bastian et al., arXiv 2408.13920

"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from pathlib import Path

from benchmark import DIMENSIONS, yaml_lists
from benchmark.hashing import artifact_sha256, sha256_tree
from benchmark.paths import PROJECT_ROOT, name_problem

KINDS = {
    # kind → (module implementing ``load(entry, registry)``, allowed source keys)
    "random": ("benchmark.models.baselines", set()),
    "constant": ("benchmark.models.baselines", set()),
    "audonnx": ("benchmark.models.onnx", {"path", "url", "sha256", "md5"}),
    "w2v2-hf": ("benchmark.models.w2v2", {"path", "hub", "revision"}),
    "wavlm-hf": ("benchmark.models.wavlm", {"path", "hub", "revision"}),
    "wav2small-hf": ("benchmark.models.wav2small_hf", {"path", "hub", "revision"}),
    "ensemble": ("benchmark.models.ensemble", {"members"}),
    "egemaps": ("benchmark.models.egemaps", {"path", "sha256"}),
}
ROLES = ("teacher", "student", "baseline")
ARCHITECTURE_KINDS = ("w2v2-hf",)
"""Kinds whose ``config`` builds the architecture with random weights (see :mod:`benchmark.efficiency`)."""
REQUIRED = ("name", "kind", "role", "source", "sampling_rate", "outputs", "description")
OPTIONAL = ("params", "citation", "architecture", "config", "reported", "distilled")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class RegistryError(ValueError):
    r"""``models.yaml`` is invalid; the message lists every problem found."""


class UnknownModelError(KeyError):
    r"""A model name that ``models.yaml`` does not register; the message lists the registered ones."""


class OutputsError(RegistryError):
    r"""An entry's ``outputs`` name a label the loaded model does not have (found when it loads)."""


class ModelFileError(RegistryError):
    r"""An entry's model files are broken (truncated, another format, outputs unlike their labels)."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    r"""One validated ``models.yaml`` entry."""

    name: str
    kind: str
    role: str
    source: dict
    sampling_rate: int
    outputs: dict
    description: str
    params: dict = dataclasses.field(default_factory=dict)
    citation: str = ""
    architecture: str = ""
    config: dict = dataclasses.field(default_factory=dict)  # the architecture's settings, to time it without weights
    reported: dict = dataclasses.field(default_factory=dict)
    distilled: dict = dataclasses.field(default_factory=dict)
    root: Path = PROJECT_ROOT

    def resolve(self, path: str) -> Path:
        r"""Resolve a source path relative to the registry file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (self.root / p)

    @property
    def dimensions(self) -> tuple[str, ...]:
        r"""Dimensions this model predicts, in :data:`benchmark.DIMENSIONS` order."""
        return tuple(d for d in DIMENSIONS if d in self.outputs)

    def spec_hash_payload(self) -> str:
        r"""Canonical JSON of what defines a weight-free model."""
        return json.dumps(
            {"kind": self.kind, "params": self.params, "outputs": self.outputs},
            sort_keys=True,
        )


class Registry(typing.Mapping[str, ModelEntry]):
    r"""Validated, ordered collection of :class:`ModelEntry`.

    Examples:
        >>> reg = Registry.from_yaml_text('''
        ... models:
        ...   - name: const
        ...     kind: constant
        ...     role: baseline
        ...     source: {}
        ...     sampling_rate: 16000
        ...     outputs: {arousal: arousal, valence: valence}
        ...     description: always 0.5
        ... ''')
        >>> list(reg)
        ['const']
        >>> reg["const"].dimensions
        ('arousal', 'valence')

    """

    def __init__(self, entries: typing.Iterable[ModelEntry], path: Path | None = None):
        self._entries = {e.name: e for e in entries}
        self.path = path

    def __getitem__(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            where = self.path or "models.yaml"
            raise UnknownModelError(
                f"Unknown model '{name}'. Registered in {where}: {known}. "
                "Add an entry to models.yaml to benchmark a new model."
            ) from None

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_yaml_text(
        cls, text: str, root: Path = PROJECT_ROOT, path: Path | None = None, *, check_files: bool = True
    ) -> Registry:
        r"""Parse and validate registry text.

        Args:
            text: YAML with a top-level ``models`` list
            root: folder that relative source paths are relative to
            path: where the text comes from, for messages
            check_files: look for local weights and compare their
                ``sha256``; without, every other field is still
                validated (for readers of the metadata only, such as
                the docs, which need no weights)

        """
        raw_entries = parse_entries(text, path or "models.yaml")
        return cls.from_entries(raw_entries, root, path, check_files=check_files)

    @classmethod
    def from_entries(
        cls, raw_entries: list, root: Path = PROJECT_ROOT, path: Path | None = None, *, check_files: bool = True
    ) -> Registry:
        r"""Validate the entries of a registry as parsed (:func:`read_entries`); arguments as :meth:`from_yaml_text`."""
        where = str(path or "models.yaml")
        valid, errors = yaml_lists.check_entries(
            raw_entries,
            where,
            lambda raw: _validate_entry(raw, root, check_files),
            duplicate=lambda first: (
                f"field 'name': duplicate name (also entry #{first + 1}); give each model a unique name"
            ),
        )
        entries = [_make_entry(raw, root) for raw in valid]
        names = {yaml_lists.entry_name(raw) for raw in raw_entries} - {None}
        for e in entries:
            if e.kind == "ensemble":
                for m in e.source["members"]:
                    if m not in names:
                        errors.append(
                            f"{where}: entry '{e.name}': field 'source.members': unknown member "
                            f"'{m}'; register it first or fix the name"
                        )
                    elif m == e.name:
                        errors.append(f"{where}: entry '{e.name}': an ensemble cannot contain itself")
        if errors:
            raise RegistryError(yaml_lists.problem_list("Invalid model registry", errors))
        return cls(entries, path)

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None, *, check_files: bool = True) -> Registry:
        r"""Load and validate a registry file (default: the project's ``models.yaml``).

        ``check_files``: see :meth:`from_yaml_text`.
        """
        path = Path(path) if path else PROJECT_ROOT / "models.yaml"
        return cls.from_entries(read_entries(path), root=path.resolve().parent, path=path, check_files=check_files)


def read_entries(path: str | os.PathLike) -> list:
    r"""The entries of a ``models.yaml`` as written, not validated: its top-level ``models`` list.

    The one reader of the file; :class:`Registry` validates what it returns.

    Raises:
        RegistryError: the file is missing, is not valid YAML (the message
            names the file, line and column) or has no ``models`` list

    """
    path = Path(path)
    if not path.exists():
        raise RegistryError(f"Model registry {path} not found: pass --models PATH or create it.")
    return parse_entries(path.read_text(), path)


def parse_entries(text: str, where: str | os.PathLike = "models.yaml") -> list:
    r"""The top-level ``models`` list of registry text (``where``: its file, for messages).

    Examples:
        >>> parse_entries("models: [{name: a}]")
        [{'name': 'a'}]
        >>> parse_entries("entries: []", "my.yaml")
        Traceback (most recent call last):
        ...
        benchmark.registry.RegistryError: my.yaml: expected a top-level key 'models' holding a list of entries.

    """
    entries = yaml_lists.listed(yaml_lists.load_yaml(text, where, RegistryError), "models")
    if not isinstance(entries, list):
        raise RegistryError(f"{where}: expected a top-level key 'models' holding a list of entries.")
    return entries


def _validate_entry(raw: typing.Any, root: Path, check_files: bool = True) -> list[str]:
    if not isinstance(raw, dict):
        return ["must be a mapping of fields (name, kind, role, ...)"]
    problems = []
    for field in REQUIRED:
        if field not in raw:
            problems.append(f"field '{field}' is missing; add it (see the example in models.yaml)")
    unknown = set(raw) - set(REQUIRED) - set(OPTIONAL)
    for field in sorted(unknown):
        problems.append(f"field '{field}' is unknown; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    if problems:
        return problems
    if name_problem(raw["name"]):
        problems.append(f"field 'name': {name_problem(raw['name'])}")
    kind = raw["kind"]
    if kind not in KINDS:
        problems.append(f"field 'kind': unknown kind '{kind}'; use one of {', '.join(KINDS)}")
    if raw["role"] not in ROLES:
        problems.append(f"field 'role': unknown role '{raw['role']}'; use one of {', '.join(ROLES)}")
    if not isinstance(raw["sampling_rate"], int) or raw["sampling_rate"] <= 0:
        problems.append("field 'sampling_rate': must be a positive integer in Hz, e.g. 16000")
    outputs = raw["outputs"]
    if not isinstance(outputs, dict) or not outputs:
        problems.append(
            "field 'outputs': missing output mapping; map at least one of "
            f"{', '.join(DIMENSIONS)} to the model's output name, e.g. {{arousal: arousal}}"
        )
    else:
        for dim, out in outputs.items():
            if dim not in DIMENSIONS:
                problems.append(f"field 'outputs': unknown dimension '{dim}'; use {', '.join(DIMENSIONS)}")
            if not isinstance(out, str) or not out:
                problems.append(f"field 'outputs.{dim}': must name the model output (a string)")
    source = raw["source"]
    if not isinstance(source, dict):
        problems.append("field 'source': must be a mapping, e.g. {path: weights/x} or {url: ..., sha256: ...}")
    elif kind in KINDS:
        problems += _validate_source(kind, source, root, distilled=bool(raw.get("distilled")), check_files=check_files)
    params = raw.get("params", {})
    if not isinstance(params, dict):
        problems.append("field 'params': must be a mapping of keyword arguments")
    if "config" in raw and (kind not in ARCHITECTURE_KINDS or not isinstance(raw["config"], dict)):
        problems.append(
            f"field 'config': a mapping of the architecture's settings, for kinds {', '.join(ARCHITECTURE_KINDS)} "
            "(efficiency times the architecture with random weights when the weights are not available)"
        )
    return problems


def _validate_source(
    kind: str, source: dict, root: Path, distilled: bool = False, check_files: bool = True
) -> list[str]:
    allowed = KINDS[kind][1]
    problems = [
        f"field 'source.{k}': not used by kind '{kind}'; allowed: {', '.join(sorted(allowed)) or 'none'}"
        for k in sorted(set(source) - allowed)
    ]
    if "sha256" in source and not (
        isinstance(source["sha256"], str) and (_SHA256.match(source["sha256"]) or source["sha256"] == "unpinned")
    ):
        problems.append(
            "field 'source.sha256': must be 64 lowercase hex digits (sha256sum FILE), or 'unpinned' "
            "for a URL whose publisher gives no checksum"
        )
    if kind == "audonnx":
        if ("path" in source) == ("url" in source):
            problems.append("field 'source': give exactly one of 'path' (local model folder) or 'url' (+ 'sha256')")
        if "url" in source and "sha256" not in source:
            problems.append("field 'source.sha256': required with 'url'; downloads are verified (sha256sum FILE)")
    if "md5" in source and not (isinstance(source["md5"], str) and _MD5.match(source["md5"]) and "url" in source):
        problems.append("field 'source.md5': the publisher's md5 of the 'url' file, 32 lowercase hex digits")
    if "hub" in allowed:
        problems += _hub_problems(source)
    if kind == "egemaps":
        if {"dataset", "split"} & set(source):
            problems.append(
                "field 'source': loading a model never fits one; fit the eGeMAPS model with "
                "`python scripts/fit_teacher.py --dataset D --split S --out FOLDER` and give source {path, sha256}"
            )
        if "path" not in source:
            problems.append("field 'source.path': the fitted model.npz (scripts/fit_teacher.py writes it)")
        elif "sha256" not in source:
            problems.append(
                "field 'source.sha256': required with 'path'; a pinned teacher is verified (sha256sum FILE)"
            )
    if kind == "ensemble":
        members = source.get("members")
        if not isinstance(members, list) or len(members) < 2:
            problems.append("field 'source.members': list at least two registered model names")
    if "path" in source:
        problems += _path_problems(kind, source, root, distilled=distilled, check_files=check_files)
    return problems


def _hub_problems(source: dict) -> list[str]:
    r"""Problems of a ``{path}`` or ``{hub, revision}`` source (the torch checkpoints)."""
    problems = []
    if ("path" in source) == ("hub" in source):
        problems.append("field 'source': give exactly one of 'path' (local checkpoint) or 'hub' (+ 'revision')")
    if "hub" in source and "revision" not in source:
        problems.append("field 'source.revision': required with 'hub'; pin a commit for reproducibility")
    elif "hub" in source and not (_COMMIT.match(str(source["revision"])) or source["revision"] == "unpinned"):
        problems.append(
            f"field 'source.revision': '{source['revision']}' is not a full commit id; a branch, tag or "
            "short id can point to other weights tomorrow. Pin the 40-hex commit (the model's 'History' "
            "on the hub, or the snapshot folder `hf download REPO` prints), quoted if all digits, or write "
            "'unpinned' to follow the default branch (each load then warns with the commit it used)"
        )
    return problems


def _path_problems(kind: str, source: dict, root: Path, distilled: bool, check_files: bool) -> list[str]:
    r"""Problems of a ``source.path``: its type, and with ``check_files`` its file, its hash and its model files."""
    problems = []
    if not isinstance(source["path"], str):
        problems.append("field 'source.path': must be a string")
    elif check_files:
        p = Path(os.path.expanduser(source["path"]))
        p = p if p.is_absolute() else root / p
        if not p.exists() and distilled:
            pass  # produced by `nox -s distill`; load_model says how when it is missing
        elif not p.exists():
            problems.append(
                f"field 'source.path': missing file {p}; check the path "
                "(relative paths are relative to models.yaml) or create the artefact"
                + (" with `nox -s distill`" if "weights" in p.parts else "")
            )
        elif "sha256" in source and _SHA256.match(str(source["sha256"])):
            try:
                actual = artifact_sha256(p, kind)
            except FileNotFoundError as ex:
                actual = f"nothing ({ex})"
            if actual != source["sha256"] and p.is_dir() and sha256_tree(p) == source["sha256"]:
                problems.append(
                    f"field 'source.sha256': {source['sha256'][:12]} is the hash of the whole folder {p}, "
                    f"records included; its artefact hash (the files that predict) is {actual}. "
                    "Pin that artefact hash in models.yaml (results recorded under the folder hash are "
                    "re-keyed by `python -m benchmark migrate-hashes` of benchmark 0.13.0, the last release "
                    "that carried it)"
                )
            elif actual != source["sha256"]:
                problems.append(
                    f"field 'source.sha256': checksum mismatch for {p}: expected "
                    f"{source['sha256']}, got {actual}; the artefact changed — restore it "
                    "or update sha256 (a changed model is a new result)"
                )
        if kind == "audonnx" and p.exists():
            problems += [f"field 'source.path': {problem}" for problem in _model_file_problems(p)]
    return problems


def _model_file_problems(path: Path) -> list[str]:
    r"""Problems of the audonnx model files at a local ``source.path`` (an archive is checked when unpacked)."""
    from benchmark.models import onnx_files
    from benchmark.models.download import model_root

    if path.is_file() and path.suffix == ".zip":
        return []
    try:
        folder = path.parent if path.is_file() else model_root(path)
    except FileNotFoundError as ex:
        return [f"{ex} Point source.path at the folder of an exported audonnx model"]
    return onnx_files.problems(folder)


def _make_entry(raw: dict, root: Path) -> ModelEntry:
    kwargs = {k: raw[k] for k in REQUIRED + OPTIONAL if k in raw}
    for k in ("params", "config", "reported", "distilled"):
        kwargs[k] = dict(kwargs.get(k) or {})
    kwargs["source"] = dict(kwargs["source"])
    kwargs["outputs"] = dict(kwargs["outputs"])
    return ModelEntry(root=root, **kwargs)


def load_model(name_or_entry: str | ModelEntry, registry: Registry | None = None):
    r"""Turn a registry entry into a :class:`benchmark.models.base.Predictor`.

    Kind-specific code is imported lazily, so baselines never import torch.
    """
    import importlib

    registry = registry if registry is not None else Registry.from_file()
    entry = registry[name_or_entry] if isinstance(name_or_entry, str) else name_or_entry
    if "path" in entry.source and entry.distilled and not entry.resolve(entry.source["path"]).exists():
        from benchmark.models.download import WeightsUnavailableError

        # how to make the weights comes from the entry: its student and the teacher it records
        student = entry.architecture or entry.name.removesuffix("-int8")
        teacher = entry.distilled.get("teacher")
        command = f"nox -s distill -- --student {student}" + (f" --teacher {teacher}" if teacher else "")
        raise WeightsUnavailableError(
            f"weights not available: {entry.name} is made by distillation and "
            f"{entry.resolve(entry.source['path'])} does not exist yet; run "
            f"`{command}` (writes it and its -int8 variant)"
        )
    module = importlib.import_module(KINDS[entry.kind][0])
    model = module.load(entry, registry)
    model.dimensions = entry.dimensions  # which outputs must be finite; the rest are NaN by design
    return model
