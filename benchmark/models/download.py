"""Verified downloads of published model weights.

Weights are fetched once into the cache, checked against the SHA-256
pinned in ``models.yaml`` and reused from then on without touching the
network. A machine without network fails at once with a message that
says which file is needed and where to put it, instead of hanging in a
long time-out.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from benchmark.atomic import atomic_path, atomic_write
from benchmark.hashing import sha256_file, sha256_text
from benchmark.paths import cache_dir

CONNECT_TIMEOUT = 3.0
"""Seconds to wait for the host to accept a connection (kept short: offline must fail fast)."""

READ_TIMEOUT = 60.0
"""Seconds a running download may stall before it is abandoned."""

UNPINNED = "unpinned"
"""``source.sha256`` value for an archive whose publisher gives no checksum.

The first download is hashed, kept under ``<cache>/unpinned/<URL hash>/``
with its digest recorded next to it, and the digest printed, so the user
can pin it. Every later use verifies the file against the recorded digest
(:func:`recorded_sha256`); the artifact hash in every result is the digest
of the bytes actually used.
"""

_CHUNK = 1 << 20
_MARKER = ".sha256"


class WeightsUnavailableError(RuntimeError):
    r"""Weights are neither cached nor downloadable; the message says how to get them."""


class ChecksumError(ValueError):
    r"""A downloaded or cached file does not have the pinned SHA-256."""


def unavailable_message(model: str, url: str, target: str | os.PathLike, sha256: str = "", reason: str = "") -> str:
    r"""The one message for "these weights cannot be had here".

    Examples:
        >>> unavailable_message("m", "https://x/m.zip", "/c/m.zip", "ab" * 32)[:46]
        'weights not available: m needs https://x/m.zip'

    """
    checksum = f" (sha256 {sha256})" if sha256 else ""
    why = f" [{reason}]" if reason else ""
    return (
        f"weights not available: {model} needs {url}; download it on a machine with network "
        f"and put it at {target}{checksum}, or point source.path at an unpacked copy{why}"
    )


def reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    r"""Whether the host serving ``url`` (or the proxy in between) accepts a connection.

    A plain TCP connect with a short time-out: without network this
    answers in at most ``timeout`` seconds, where urllib or the
    Hugging Face client would wait much longer.

    Examples:
        >>> reachable("http://127.0.0.1:9/", timeout=0.5)
        False

    """
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path)).exists()
    if host is None:
        return False
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        # the proxy does the name resolution and the connect; probe it instead
        proxied = urllib.parse.urlparse(proxy if "://" in proxy else "http://" + proxy)
        host, port = proxied.hostname, proxied.port or 80
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_path(url: str, sha256: str, cache: str | os.PathLike | None = None) -> Path:
    r"""Where :func:`fetch` keeps ``url``: ``<cache>/<sha256>/<file name>``.

    Keyed by the checksum, so two versions with the same file name never collide;
    an :data:`UNPINNED` file is keyed by its URL (``<cache>/unpinned/<URL hash>/<file name>``).

    Examples:
        >>> cached_path("https://z.org/r/m.zip?download=1", "ab" * 32, "/c").as_posix()
        '/c/abababababababababababababababababababababababababababababababab/m.zip'

    """
    cache = Path(cache) if cache is not None else cache_dir("downloads")
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or "download"
    if sha256.lower() == UNPINNED:
        # no checksum to key by: the URL is the key (two archives may share a file name)
        return cache / UNPINNED / sha256_text(url)[:32] / name
    return cache / sha256 / name


def recorded_sha256(path: str | os.PathLike) -> str:
    r"""The SHA-256 recorded for a downloaded file when it was fetched (``''`` if none)."""
    try:
        return Path(str(path) + _MARKER).read_text().split()[0]
    except (OSError, IndexError):
        return ""


def fetch(
    url: str,
    sha256: str,
    *,
    cache: str | os.PathLike | None = None,
    model: str = "this model",
    timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    verbose: bool = True,
) -> Path:
    r"""Download ``url`` once, verify its SHA-256, return the cached file.

    A file already in the cache with the right checksum is returned
    without network access. A download goes to a temporary file next
    to its target and is renamed only after the checksum matched, so an
    interrupted download never leaves a file that looks complete.

    Args:
        url: address of the file (``http``, ``https`` or ``file``)
        sha256: expected SHA-256 hex digest
        cache: download folder (default: ``cache_dir('downloads')``)
        model: registry name, used in error messages
        timeout: seconds a running download may stall
        connect_timeout: seconds to wait for the host
        verbose: print a line when downloading

    Raises:
        WeightsUnavailableError: the file is not cached and the host cannot be reached
        ChecksumError: the file does not have the expected checksum
            (the bad file is deleted)

    """
    sha256 = sha256.lower()
    target = cached_path(url, sha256, cache)
    if target.exists():
        # an unpinned file is checked against the digest recorded at its download; no record, no trust
        expected = recorded_sha256(target) if sha256 == UNPINNED else sha256
        if expected:
            _verify(target, expected, url)
            return target
        target.unlink()
    if not reachable(url, connect_timeout):
        raise WeightsUnavailableError(unavailable_message(model, url, target, sha256, "host unreachable"))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(target, suffix=".part") as tmp:
            with open(tmp, "wb") as fp:
                _download(url, fp, timeout, verbose)
            if sha256 == UNPINNED:
                digest = sha256_file(tmp)
                print(
                    f"warning: {url} has no pinned checksum; downloaded sha256 is {digest}. "
                    f"Pin it in models.yaml (source.sha256: {digest}) so later downloads are verified."
                )
            else:
                digest = sha256
                _verify(tmp, sha256, url, final=target)
        _write_marker(target, digest)
    except OSError as ex:  # URLError, HTTPError and socket time-outs are OSErrors
        reason = f"download failed: {ex}"
        raise WeightsUnavailableError(unavailable_message(model, url, target, sha256, reason)) from ex
    return target


def _download(url: str, fp, timeout: float, verbose: bool) -> None:
    r"""Stream ``url`` into the open file ``fp``."""
    request = urllib.request.Request(url, headers={"User-Agent": "ser-benchmark"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        if verbose:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"Downloading {url}{size}", flush=True)
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            fp.write(chunk)


def _verify(path: Path, sha256: str, url: str, final: Path | None = None) -> None:
    r"""Check ``path`` against ``sha256``; delete it and raise on mismatch.

    A side-car marker remembers a verified file's size and modification
    time, so a large cached archive is hashed once, not on every load.
    """
    if final is None and _marker_ok(path, sha256):
        return
    actual = sha256_file(path)
    if actual != sha256:
        path.unlink(missing_ok=True)
        Path(str(path) + _MARKER).unlink(missing_ok=True)
        where = final or path
        raise ChecksumError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. "
            f"The file was deleted from {where}. Fix: if the file was corrupted or truncated, "
            "run again to re-download it; if the publisher replaced it, check the new file and "
            "update source.sha256 in models.yaml (a changed model is a new result)."
        )
    if final is None:
        _write_marker(path, sha256)


def _marker_ok(path: Path, sha256: str) -> bool:
    marker = Path(str(path) + _MARKER)
    try:
        return marker.read_text().split() == [sha256, *_stamp(path)]
    except OSError:
        return False


def _write_marker(path: Path, sha256: str) -> None:
    atomic_write(Path(str(path) + _MARKER), " ".join([sha256, *_stamp(path)]) + "\n")


def _stamp(path: Path) -> list[str]:
    stat = path.stat()
    return [str(stat.st_size), str(stat.st_mtime_ns)]


def unpack(
    archive: str | os.PathLike,
    *,
    sha256: str | None = None,
    cache: str | os.PathLike | None = None,
) -> Path:
    r"""Extract a zip archive once into ``<cache>/<sha256 of archive>``.

    Extraction goes to a temporary folder that is renamed when complete,
    so a crash never leaves a half-extracted model that later loads
    would take as valid. Concurrent callers may both extract; the first
    rename wins and the others use its result.

    Args:
        archive: path to a ``.zip`` file
        sha256: the archive's checksum if already known (skips hashing)
        cache: parent folder (default: ``cache_dir('unpacked')``)

    Returns:
        the folder holding the archive's contents

    """
    archive = Path(archive)
    sha256 = sha256 or sha256_file(archive)
    cache = Path(cache) if cache is not None else cache_dir("unpacked")
    target = cache / sha256
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{sha256[:12]}.", suffix=".part"))
    try:
        with zipfile.ZipFile(archive) as zf:
            # zipfile strips absolute paths and '..', so members cannot escape ``tmp``
            zf.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_root(folder: str | os.PathLike, names: tuple[str, ...] = ("model.yaml", "model.onnx")) -> Path:
    r"""The folder inside an unpacked archive that holds the model files.

    Archives are published both flat and with a single top-level
    folder; this finds ``names[0]`` (else ``names[1]``, ...) at the top
    or one level down.
    """
    folder = Path(folder)
    for name in names:
        if (folder / name).is_file():
            return folder
        hits = sorted(p.parent for p in folder.glob(f"*/{name}"))
        if len(hits) == 1:
            return hits[0]
    listing = ", ".join(sorted(p.name for p in folder.iterdir())[:10])
    raise FileNotFoundError(f"No {' or '.join(names)} found in {folder} (contains: {listing}).")
