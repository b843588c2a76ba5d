"""Verified downloads of published model weights.

Weights are fetched once into the cache, checked against the SHA-256
pinned in ``models.yaml`` and reused from then on without touching the
network. A machine without network fails at once with a message that
says which file is needed and where to put it, instead of hanging in a
long time-out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
import warnings
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

ZENODO_API_ENV = "SER_BENCHMARK_ZENODO_API"
"""Environment variable with the base URL of the Zenodo REST API (default ``https://<host>/api``)."""

_CHUNK = 1 << 20
_MARKER = ".sha256"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_ZENODO_FILE = re.compile(r"^/records?/(\d+)/files/(.+?)(?:/content)?$")


class WeightsUnavailableError(RuntimeError):
    r"""Weights are neither cached nor downloadable; the message says how to get them."""


class ChecksumError(ValueError):
    r"""A downloaded or cached file does not have the pinned SHA-256 (or the publisher's MD5)."""


class UnpinnedRevisionWarning(UserWarning):
    r"""A hub checkpoint was loaded from whatever commit its default branch pointed to."""


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


def zenodo_api_base(url: str, api: str | None = None) -> str:
    r"""Base URL of the Zenodo REST API for ``url``: ``api``, else ``$SER_BENCHMARK_ZENODO_API``, else ``https://<host>/api``.

    Examples:
        >>> zenodo_api_base("https://zenodo.org/record/1/files/m.zip", api="")
        'https://zenodo.org/api'

    """
    api = api or os.environ.get(ZENODO_API_ENV) or ""
    if api:
        return api.rstrip("/")
    parsed = urllib.parse.urlparse(url)
    return f"https://{parsed.hostname}/api"


def zenodo_file(url: str, api: str | None = None) -> tuple[str, str] | None:
    r"""``(record id, file key)`` if ``url`` is a file of a Zenodo record, else ``None``.

    A file on ``zenodo.org`` (or a subdomain, such as the sandbox), or on
    the host of a configured API base (a Zenodo instance elsewhere), in
    the layouts ``/record[s]/<id>/files/<key>[/content]``.

    Examples:
        >>> zenodo_file("https://zenodo.org/record/6221127/files/w2v2-L-robust-12.6bc4a7fd-1.1.0.zip", api="")
        ('6221127', 'w2v2-L-robust-12.6bc4a7fd-1.1.0.zip')
        >>> zenodo_file("https://zenodo.org/records/7/files/a%20b.zip?download=1", api="")
        ('7', 'a b.zip')
        >>> zenodo_file("https://example.org/records/7/files/m.zip", api="") is None
        True

    """
    parsed = urllib.parse.urlparse(url)
    host = (parsed.hostname or "").lower()
    configured = urllib.parse.urlparse(api or os.environ.get(ZENODO_API_ENV) or "")
    on_zenodo = host == "zenodo.org" or host.endswith(".zenodo.org")
    if not on_zenodo and (configured.hostname, configured.port) != (parsed.hostname, parsed.port):
        return None
    match = _ZENODO_FILE.match(parsed.path)
    return (match.group(1), urllib.parse.unquote(match.group(2))) if match else None


def zenodo_md5(url: str, api: str | None = None, *, model: str = "this model", timeout: float = READ_TIMEOUT) -> str:
    r"""The MD5 that Zenodo publishes for the file at ``url`` (``files[].checksum`` of its record).

    Raises:
        WeightsUnavailableError: the record cannot be read or does not list the file;
            the message says how to pin the file without it

    """
    record, key = zenodo_file(url, api) or ("", "")
    endpoint = f"{zenodo_api_base(url, api)}/records/{record}"

    def unavailable(why: str) -> WeightsUnavailableError:
        return WeightsUnavailableError(
            f"weights not available: {model} needs {url}, unpinned, so it is checked against the md5 "
            f"Zenodo publishes for {key} before its sha256 is given for pinning; but record {record} "
            f"could not be read from {endpoint} ({why}). Fix: copy the file's md5 from the record's page "
            "into source.md5, or pin source.sha256 (sha256sum of a trusted copy)"
        )

    try:
        request = urllib.request.Request(
            endpoint, headers={"Accept": "application/json", "User-Agent": "ser-benchmark"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            files = json.loads(response.read().decode("utf-8")).get("files") or []
    except (OSError, ValueError, AttributeError) as ex:  # network, HTTP and JSON errors
        raise unavailable(str(ex)) from ex
    checksums = {f.get("key"): str(f.get("checksum", "")) for f in files if isinstance(f, dict)}
    if key not in checksums:
        raise unavailable(f"it lists no file {key}; its files are {sorted(str(k) for k in checksums)}")
    algorithm, _, digest = checksums[key].partition(":")
    if algorithm != "md5" or not re.fullmatch(r"[0-9a-f]{32}", digest.lower()):
        raise unavailable(f"its checksum of {key} is {checksums[key]!r}, not an md5")
    return digest.lower()


def file_md5(path: str | os.PathLike) -> str:
    r"""MD5 hex digest of a file (the checksum Zenodo publishes), read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_commit(revision: object) -> bool:
    r"""Whether ``revision`` is a full 40-hex commit id (a branch or tag name moves; a commit does not).

    Examples:
        >>> is_commit("6eba34a2485ea31cb03600241787c3a5edab8626"), is_commit("main"), is_commit("6eba34a")
        (True, False, False)

    """
    return isinstance(revision, str) and bool(_COMMIT.match(revision))


def hub_revision(source: dict) -> str | None:
    r"""The revision to ask the hub for: the pinned commit, or ``None`` (the default branch) for ``unpinned``."""
    revision = source.get("revision")
    return None if revision == UNPINNED else str(revision)


def warn_unpinned(model: str, repo: str, folder: str | os.PathLike) -> str:
    r"""Warn that ``model`` was loaded from an unpinned hub revision; return the commit it resolved to.

    The hub cache names a snapshot folder by its commit, so the warning
    can say exactly what to pin.
    """
    commit = Path(folder).name if is_commit(Path(folder).name) else "unknown"
    warnings.warn(
        f"Model '{model}': source.revision is unpinned, so {repo} was loaded from the commit its default "
        f"branch points to now ({commit}); results record the hash of these weights. Pin it in models.yaml "
        f"(source.revision: {commit}) so every run uses the same weights.",
        UnpinnedRevisionWarning,
        stacklevel=2,
    )
    return commit


def fetch(
    url: str,
    sha256: str,
    *,
    md5: str | None = None,
    zenodo_api: str | None = None,
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

    An :data:`UNPINNED` file has no SHA-256 to check yet. If it is on
    Zenodo (:func:`zenodo_file`), the MD5 that Zenodo publishes for it is
    read from the record first, and the download must match it before
    its SHA-256 is printed for pinning; ``md5`` gives that MD5 instead,
    without asking the API (and is checked on any download).

    Args:
        url: address of the file (``http``, ``https`` or ``file``)
        sha256: expected SHA-256 hex digest, or :data:`UNPINNED`
        md5: the publisher's MD5 of the file, if known
        zenodo_api: base URL of the Zenodo REST API (default: see :func:`zenodo_api_base`)
        cache: download folder (default: ``cache_dir('downloads')``)
        model: registry name, used in error messages
        timeout: seconds a running download may stall
        connect_timeout: seconds to wait for the host
        verbose: print a line when downloading

    Raises:
        WeightsUnavailableError: the file is not cached and the host cannot be reached
            (or Zenodo's checksum for an unpinned file cannot be read)
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
    md5, md5_source = (md5.lower(), "source.md5") if md5 else (None, "")
    if md5 is None and sha256 == UNPINNED and zenodo_file(url, zenodo_api):
        # read before the download: without the publisher's checksum there is nothing to pin against
        md5, md5_source = zenodo_md5(url, zenodo_api, model=model, timeout=timeout), "Zenodo's published md5"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(target, suffix=".part") as tmp:
            with open(tmp, "wb") as fp:
                _download(url, fp, timeout, verbose)
            digest = _check_download(tmp, url, sha256, (md5, md5_source), target)
        _write_marker(target, digest)
    except OSError as ex:  # URLError, HTTPError and socket time-outs are OSErrors
        reason = f"download failed: {ex}"
        raise WeightsUnavailableError(unavailable_message(model, url, target, sha256, reason)) from ex
    return target


def _check_download(tmp: Path, url: str, sha256: str, md5: tuple[str | None, str], target: Path) -> str:
    r"""Verify a fresh download against the publisher's md5 (if any) and the pinned sha256; its sha256.

    An unpinned download's digest is printed for pinning, saying what it was checked against.
    """
    md5, md5_source = md5
    if md5:
        _verify_md5(tmp, md5, url, md5_source)
    if sha256 != UNPINNED:
        _verify(tmp, sha256, url, final=target)
        return sha256
    digest = sha256_file(tmp)
    checked = f"matches {md5_source} {md5}; its" if md5 else "has no pinned checksum; downloaded"
    print(
        f"warning: {url} {checked} sha256 is {digest}. "
        f"Pin it in models.yaml (source.sha256: {digest}) so later downloads are verified."
    )
    return digest


def _verify_md5(path: Path, md5: str, url: str, source: str) -> None:
    r"""Check ``path`` against the publisher's ``md5``; raise naming the file, both digests and the fix."""
    actual = file_md5(path)
    if actual != md5:
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
        raise ChecksumError(
            f"checksum mismatch for {name} ({url}): expected md5 {md5} ({source}), got {actual}. "
            "The download was discarded. Fix: run again if the transfer was corrupted; if the record's "
            "file was replaced, check it and update models.yaml (a changed model is a new result)."
        )


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
