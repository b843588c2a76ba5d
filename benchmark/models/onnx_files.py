"""Checks of an audonnx model folder's files, without running the model.

Used where a broken file must be named before it surfaces as a
traceback: when ``models.yaml`` is validated (``python -m benchmark
list``, every run) and when a model is loaded. A folder holds
``model.yaml`` (audonnx: the ONNX file's name, output labels, transform)
and the ONNX file, or a legacy ``model.onnx`` alone.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

FIX = "re-export the model, or restore the file from where it came from (the sha256 in models.yaml names the bytes)"


def problems(folder: str | os.PathLike) -> list[str]:
    r"""What is wrong with the model files in ``folder`` (empty if they look loadable).

    Checks that ``model.yaml`` parses and names an ONNX file that exists,
    that the ONNX file is a complete ONNX model (a truncated file or
    another format fails to parse), and that every output node labelled
    in ``model.yaml`` exists with as many values as it has labels.

    Examples:
        >>> problems("/no/such/folder")
        ['/no/such/folder holds neither model.yaml nor model.onnx']

    """
    folder = Path(folder)
    labels: dict = {}
    if (folder / "model.yaml").is_file():
        settings = _yaml_settings(folder / "model.yaml")
        if isinstance(settings, str):
            return [settings]
        onnx_file, labels = folder / settings["path"], settings["labels"]
    elif (folder / "model.onnx").is_file():
        onnx_file = folder / "model.onnx"
    else:
        return [f"{folder} holds neither model.yaml nor model.onnx"]
    if not onnx_file.is_file():
        return [f"{onnx_file} (named by {folder / 'model.yaml'}) does not exist"]
    info = os.stat(onnx_file)
    outputs = _outputs(str(onnx_file), info.st_size, info.st_mtime_ns)
    if isinstance(outputs, str):
        return [outputs]
    found = []
    for node, names in labels.items():
        if node not in outputs:
            found.append(
                f"{folder / 'model.yaml'} labels output '{node}', which {onnx_file.name} does not have "
                f"(its outputs: {', '.join(outputs) or 'none'}); fix 'labels' in model.yaml"
            )
        elif outputs[node] is not None and names is not None and len(names) != outputs[node]:
            found.append(
                f"output '{node}' of {onnx_file} has {outputs[node]} value(s), {folder / 'model.yaml'} gives it "
                f"{len(names)} label(s) ({', '.join(map(str, names))}); the file holds another model than "
                "model.yaml describes: export the model with one value per label, or fix 'labels' in model.yaml"
            )
    return found


def _yaml_settings(path: Path) -> dict | str:
    r"""``{'path': ONNX file name, 'labels': {node: [labels]}}`` from an audonnx ``model.yaml``, or what is wrong."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as ex:
        return f"{path} cannot be read as YAML ({type(ex).__name__}: {str(ex).splitlines()[0]}); {FIX}"
    # audonnx writes {'$audonnx.core.model.Model==VERSION': {path, labels, transform}}
    body = next(iter(raw.values()), None) if isinstance(raw, dict) and len(raw) == 1 else None
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        return (
            f"{path} is not an audonnx model.yaml (no 'path' of the ONNX file); write it with audonnx (Model.to_yaml)"
        )
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        return f"{path}: 'labels' must map output nodes to lists of labels, got {type(labels).__name__}"
    return {"path": body["path"], "labels": labels}


@functools.lru_cache(maxsize=64)
def _outputs(path: str, size: int, mtime_ns: int) -> dict[str, int | None] | str:
    r"""Output node → number of values (last dimension; ``None`` if not fixed), or why the file is no ONNX model.

    Memoised by size and modification time: a registry is validated by every command.
    """
    import onnx

    if size == 0:
        return f"{path} is empty (0 bytes); {FIX}"
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as ex:  # protobuf reports a truncated or foreign file in several ways
        return (
            f"{path} is not a readable ONNX model ({size} bytes; {type(ex).__name__}: "
            f"{str(ex).splitlines()[0][:160] if str(ex) else 'cannot parse'}): truncated, or another format; {FIX}"
        )
    if not model.graph.output or not model.opset_import:
        return f"{path} holds no complete ONNX graph (no outputs or no opset; {size} bytes): truncated?; {FIX}"
    outputs: dict[str, int | None] = {}
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        outputs[out.name] = int(dims[-1].dim_value) if dims and dims[-1].HasField("dim_value") else None
    return outputs
