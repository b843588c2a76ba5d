"""Verified downloads: benchmark.models.download against a loopback HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import zipfile

import pytest

from benchmark.models import download


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    r"""Serve ``tmp_path / 'www'`` on 127.0.0.1; yields (base URL, folder, handler, stop)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()

    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler, stop
    if thread.is_alive():
        stop()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zip(path, files: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_and_reuses_cache(server, cache):
    url, root, handler, stop = server
    digest = _zip(root / "model.zip", {"model.yaml": b"x: 1\n", "model.onnx": b"\0" * 10})
    path = download.fetch(f"{url}/model.zip", digest, model="m", verbose=False)
    assert path == download.cached_path(f"{url}/model.zip", digest)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert handler.requests == ["/model.zip"]
    assert not list(path.parent.glob("*.part"))

    stop()  # the second call must not need the network
    assert download.fetch(f"{url}/model.zip", digest, model="m") == path

    folder = download.unpack(path, sha256=digest)
    assert folder.name == digest
    assert (folder / "model.yaml").read_bytes() == b"x: 1\n"
    assert download.unpack(path) == folder  # keyed by the archive's hash, extracted once
    assert download.model_root(folder) == folder


def test_checksum_mismatch_is_clear_and_leaves_nothing(server):
    url, root, _, _ = server
    (root / "w.zip").write_bytes(b"not what was published")
    wrong = "0" * 64
    with pytest.raises(download.ChecksumError) as info:
        download.fetch(f"{url}/w.zip", wrong, verbose=False)
    message = str(info.value)
    actual = hashlib.sha256(b"not what was published").hexdigest()
    assert f"{url}/w.zip" in message and wrong in message and actual in message
    assert "update source.sha256" in message and "re-download" in message
    target = download.cached_path(f"{url}/w.zip", wrong)
    assert not target.exists()
    assert not list(target.parent.glob("*"))


def test_corrupt_cached_file_is_deleted(cache):
    url = f"http://127.0.0.1:{_closed_port()}/m.zip"
    digest = hashlib.sha256(b"good").hexdigest()
    target = download.cached_path(url, digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"bad")
    with pytest.raises(download.ChecksumError, match="expected sha256"):
        download.fetch(url, digest)
    assert not target.exists()
    target.write_bytes(b"good")  # a correct copy put there by hand is used without network
    assert download.fetch(url, digest) == target
    assert download.fetch(url, digest) == target  # now via the verification marker


def test_unreachable_host_fails_fast_and_says_how_to_fix():
    url = f"http://127.0.0.1:{_closed_port()}/w2v2.zip"
    digest = "a" * 64
    with pytest.raises(download.WeightsUnavailableError) as info:
        download.fetch(url, digest, model="w2v2-L-robust-12")
    message = str(info.value)
    assert message.endswith("[host unreachable]")  # the connection check refused it: no download was tried
    assert message.startswith("weights not available: w2v2-L-robust-12 needs " + url)
    assert str(download.cached_path(url, digest)) in message
    assert digest in message and "source.path" in message


def test_unroutable_host_times_out_quickly():
    # TEST-NET-1 (RFC 5737) is never routed: the connect either fails at once or times out
    with pytest.raises(download.WeightsUnavailableError) as info:
        download.fetch("http://192.0.2.1/x.zip", "b" * 64, connect_timeout=0.5)
    assert str(info.value).endswith("[host unreachable]")  # the connection check gave up: no download was tried


def test_http_error_is_unavailable(server):
    url, _, _, _ = server
    with pytest.raises(download.WeightsUnavailableError, match="404"):
        download.fetch(f"{url}/missing.zip", "c" * 64, verbose=False)


def test_model_root_finds_nested_folder(tmp_path):
    (tmp_path / "pkg" / "inner").mkdir(parents=True)
    (tmp_path / "pkg" / "inner" / "model.yaml").write_text("x: 1\n")
    assert download.model_root(tmp_path / "pkg") == tmp_path / "pkg" / "inner"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("no model here")
    with pytest.raises(FileNotFoundError, match="model.yaml"):
        download.model_root(tmp_path / "empty")


def test_unpinned_checksum_is_recorded_and_reported(server, capsys):
    base, root, handler, stop = server
    (root / "m.zip").write_bytes(b"published without a checksum")
    path = download.fetch(f"{base}/m.zip", download.UNPINNED, model="m")
    digest = hashlib.sha256(b"published without a checksum").hexdigest()
    assert path.read_bytes() == b"published without a checksum"
    out = capsys.readouterr().out
    assert digest in out and "Pin it in models.yaml" in out
    stop()
    assert download.fetch(f"{base}/m.zip", download.UNPINNED, model="m") == path  # cached, no network
    assert len(handler.requests) == 1
