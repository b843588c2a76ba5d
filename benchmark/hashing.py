"""Content hashes used for provenance and cache keys."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import typing
from pathlib import Path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    r"""SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_state(path: str | os.PathLike) -> str:
    r"""What a file holds now: the SHA-256 of its bytes, or why there are none.

    For a cache entry that depends on a file without being keyed by its
    bytes (a recorded skip): when the state differs from the one stored
    with the entry, the file changed, came back or went away, and the
    entry is stale. ``'missing'`` for no file, ``'unreadable: REASON'``
    for one that cannot be read, ``'not a regular file'`` for a folder,
    pipe or device (whose reading could block). The digest is memoised
    per path, size, inode and modification time, so an unchanged file is
    read once per process.

    Examples:
        >>> file_state("/no/such/file.wav")
        'missing'

    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as ex:
        return f"unreadable: {type(ex).__name__}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    try:
        return _digest(os.fspath(path), info.st_size, info.st_ino, info.st_mtime_ns)
    except OSError as ex:  # e.g. no permission to read
        return f"unreadable: {type(ex).__name__}"


@functools.lru_cache(maxsize=4096)
def _digest(path: str, size: int, inode: int, mtime_ns: int) -> str:
    r""":func:`sha256_file`, memoised by what :func:`os.stat` says of the file."""
    return sha256_file(path)


def sha256_tree(root: str | os.PathLike) -> str:
    r"""SHA-256 over relative paths and contents of every file below ``root``.

    Stable across machines: files are visited in sorted order and
    only their relative POSIX paths and bytes enter the digest.
    """
    root = Path(root)
    if root.is_file():
        return sha256_file(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def sha256_arrays(arrays: typing.Iterable[typing.Any]) -> str:
    r"""SHA-256 over the dtype, shape and bytes of each array, in order.

    Two runs whose arrays differ in one bit, or only in layout, get different digests.

    Examples:
        >>> import numpy as np
        >>> a = sha256_arrays([np.zeros(3, np.float32)])
        >>> a == sha256_arrays([np.zeros(3, np.float32)]), a == sha256_arrays([np.zeros(3, np.float64)])
        (True, False)

    """
    import numpy as np

    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    r"""SHA-256 hex digest of a UTF-8 string.

    Examples:
        >>> sha256_text("abc")[:12]
        'ba7816bf8f01'

    """
    return hashlib.sha256(text.encode()).hexdigest()


# --- artefact identity: the bytes that predict -------------------------------------------

RECORD_NAMES = ("provenance.json",)
"""File names in a model folder that record how it was made, not what it predicts."""

RECORD_PREFIXES = ("README", "LICENSE", "CHANGELOG")
"""Name prefixes of documentation files in a model folder (``README.md``, ``LICENSE.txt``)."""


def is_record(relative: str | os.PathLike) -> bool:
    r"""Whether a file inside a model folder is paperwork that cannot change a prediction.

    Provenance records, documentation (README, LICENSE, CHANGELOG,
    ``*.md``) and hidden files or folders (``.git``, download markers).

    Examples:
        >>> is_record("provenance.json"), is_record("docs/README.md"), is_record(".git/HEAD")
        (True, True, True)
        >>> is_record("model.onnx"), is_record("model.yaml"), is_record("model.onnx.data")
        (False, False, False)

    """
    parts = Path(relative).parts
    name = parts[-1]
    return (
        name in RECORD_NAMES
        or name.upper().startswith(RECORD_PREFIXES)
        or name.lower().endswith(".md")
        or any(p.startswith(".") for p in parts)
    )


def sha256_files(root: str | os.PathLike, files: typing.Iterable[str | os.PathLike]) -> str:
    r"""SHA-256 over the relative paths and contents of ``files`` below ``root``.

    The construction of :func:`sha256_tree`, restricted to ``files``:
    a folder that holds only those files hashes the same either way.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def predictive_files(folder: str | os.PathLike) -> list[Path]:
    r"""The files of a model folder that can change its predictions, sorted.

    Every file below ``folder`` except records (:func:`is_record`). For an
    audonnx model: the ONNX graph and weights (with any external-data
    file), ``model.yaml`` (labels, transform) and whatever its transform
    reads.

    Raises:
        FileNotFoundError: if no such file exists

    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not is_record(p.relative_to(folder)))
    if not files:
        raise FileNotFoundError(f"{folder} holds no model files (only records, or nothing); check the path.")
    return files


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""Weight files in the order transformers prefers them."""


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    r"""The files of a checkpoint folder that define the model.

    ``config.json``, ``preprocessor_config.json`` (if present) and the
    weights transformers loads (``model.safetensors`` before
    ``pytorch_model.bin``; shards listed in an index). Other files
    (README, ONNX exports, a ``.git`` folder) do not change the model.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a transformers checkpoint: config.json is missing.")
    files = [folder / "config.json"]
    if (folder / "preprocessor_config.json").is_file():
        files.append(folder / "preprocessor_config.json")
    for name in WEIGHT_FILES:
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return files + [index] + [folder / s for s in shards]
        if (folder / name).is_file():
            return files + [folder / name]
    raise FileNotFoundError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}) found.")


def checkpoint_hash(folder: str | os.PathLike) -> str:
    r"""SHA-256 over names and contents of :func:`checkpoint_files`.

    Same construction as :func:`sha256_tree`, but restricted to the
    files that define the model, so a hub snapshot hashes the same
    whatever else was downloaded next to it.
    """
    folder = Path(folder)
    lines = [f"{p.relative_to(folder).as_posix()}\0{sha256_file(p)}" for p in checkpoint_files(folder)]
    return sha256_text("\n".join(lines))


def artifact_sha256(path: str | os.PathLike, kind: str = "audonnx") -> str:
    r"""The artefact hash of a local model: SHA-256 of the bytes that predict.

    This is the one rule for every ``source.path`` in ``models.yaml``, the
    ``model_sha256`` of result rows and the key of the prediction cache.
    What records how a model was made (provenance, code version, dates)
    stays out, so re-making the same network keeps its hash.

    - a file (a ``.zip`` archive, an eGeMAPS ``model.npz``): its bytes
    - ``audonnx``: a ``model.yaml`` or ``model.onnx`` names its folder;
      a folder is hashed over :func:`predictive_files`
    - ``w2v2-hf``, ``wavlm-hf``: the checkpoint's config and weight files
      (:func:`checkpoint_hash`)

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "model.onnx").write_bytes(b"graph")
        >>> before = artifact_sha256(folder)
        >>> _ = (folder / "provenance.json").write_text('{"code_commit": "abc"}')
        >>> artifact_sha256(folder) == before == sha256_files(folder, [folder / "model.onnx"])
        True

    """
    path = Path(path)
    if kind in ("w2v2-hf", "wavlm-hf"):
        return checkpoint_hash(path)
    if path.is_file() and (kind != "audonnx" or path.suffix == ".zip"):
        return sha256_file(path)
    if path.is_file():  # a model.yaml (or legacy model.onnx) inside its folder
        path = path.parent
    return sha256_files(path, predictive_files(path))
