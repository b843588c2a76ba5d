"""Unpinned Zenodo downloads are checked against Zenodo's published md5 before their sha256 is given.

A loopback HTTP server (127.0.0.1 only) plays Zenodo: ``/api/records/<id>`` answers a record
JSON (``files[].key``, ``files[].checksum = "md5:<hex>"``) and ``/records/<id>/files/<key>``
serves the file. ``SER_BENCHMARK_ZENODO_API`` points the downloader at it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.models import download
from benchmark.registry import Registry, RegistryError, load_model

RECORD = "6221127"
KEY = "tiny-1.0.0.zip"


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def zenodo(tmp_path, monkeypatch):
    r"""A fake Zenodo on 127.0.0.1; yields (file URL, www folder, requests, record writer)."""
    monkeypatch.setenv("SER_BENCHMARK_CACHE", str(tmp_path / "cache"))
    www = tmp_path / "www"
    (www / "api" / "records").mkdir(parents=True)
    (www / "records" / RECORD / "files").mkdir(parents=True)
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv(download.ZENODO_API_ENV, f"{base}/api")

    def record(files: dict[str, str]) -> None:
        entries = [{"key": k, "checksum": v, "size": 1} for k, v in files.items()]
        (www / "api" / "records" / RECORD).write_text(json.dumps({"id": int(RECORD), "files": entries}))

    yield f"{base}/records/{RECORD}/files/{KEY}", www, handler.requests, record
    httpd.shutdown()
    httpd.server_close()


def _onnx_zip(path: Path) -> bytes:
    r"""A zipped audonnx model whose ``logits`` are the signal's mean three times (arousal, dominance, valence)."""
    import audonnx
    import onnx
    from onnx import TensorProto, helper

    folder = path.parent / "model"
    folder.mkdir()
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["signal"], ["m"], axes=[1], keepdims=1),
            helper.make_node("Concat", ["m", "m", "m"], ["logits"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, folder / "model.onnx")
    labels = {"logits": ["arousal", "dominance", "valence"]}
    audonnx.Model(str(folder / "model.onnx"), labels=labels).to_yaml(str(folder / "model.yaml"))
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("model.onnx", "model.yaml"):
            zf.write(folder / name, name)
    return path.read_bytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def registry(url: str, sha256: str = "unpinned", extra: str = "") -> Registry:
    return Registry.from_yaml_text(
        "models:\n  - name: tiny\n    kind: audonnx\n    role: teacher\n"
        f"    source: {{url: '{url}', sha256: {sha256}{extra}}}\n    sampling_rate: 16000\n"
        "    outputs: {arousal: arousal, dominance: dominance, valence: valence}\n    description: test\n"
    )


def test_unpinned_download_matching_the_record_md5_is_used_and_its_sha256_printed(zenodo, capsys):
    url, www, requests, record = zenodo
    data = _onnx_zip(www / "records" / RECORD / "files" / KEY)
    record({"README.md": "md5:" + md5(b"other"), KEY: "md5:" + md5(data)})
    model = load_model("tiny", registry(url))
    assert requests == [f"/api/records/{RECORD}", f"/records/{RECORD}/files/{KEY}"]  # the record first
    digest = hashlib.sha256(data).hexdigest()
    assert model.artifact_hash == digest
    out = capsys.readouterr().out
    assert f"matches Zenodo's published md5 {md5(data)}" in out and f"source.sha256: {digest}" in out
    signal = np.full(1600, 0.25, dtype=np.float32)
    np.testing.assert_allclose(model(signal, 16000), [0.25, 0.25, 0.25], rtol=1e-6)
    load_model("tiny", registry(url))  # cached: verified against the digest recorded at download
    assert len(requests) == 2


def test_md5_mismatch_names_file_expected_and_actual_and_keeps_nothing(zenodo, capsys):
    url, www, requests, record = zenodo
    data = _onnx_zip(www / "records" / RECORD / "files" / KEY)
    published = md5(b"the file as published")
    record({KEY: f"md5:{published}"})
    with pytest.raises(download.ChecksumError) as info:
        load_model("tiny", registry(url))
    message = str(info.value)
    assert f"checksum mismatch for {KEY}" in message
    assert f"expected md5 {published} (Zenodo's published md5), got {md5(data)}" in message
    assert "sha256" not in capsys.readouterr().out  # nothing offered for pinning
    target = download.cached_path(url, download.UNPINNED)
    assert not target.exists() and not list(target.parent.glob("*"))


@pytest.mark.parametrize(
    ("files", "why"),
    [
        (None, "HTTP Error 404"),
        ({"other.zip": "md5:" + "0" * 32}, f"it lists no file {KEY}; its files are ['other.zip']"),
        ({KEY: "sha256:" + "0" * 64}, "not an md5"),
    ],
)
def test_a_record_without_the_md5_stops_before_the_download(zenodo, files, why):
    url, www, requests, record = zenodo
    _onnx_zip(www / "records" / RECORD / "files" / KEY)
    if files is not None:
        record(files)
    with pytest.raises(download.WeightsUnavailableError) as info:
        load_model("tiny", registry(url))
    message = str(info.value)
    assert message.startswith(f"weights not available: tiny needs {url}")
    assert why in message and "source.md5" in message and "pin source.sha256" in message
    assert requests == [f"/api/records/{RECORD}"]


def test_source_md5_pins_offline_without_asking_the_api(zenodo, capsys):
    url, www, requests, _ = zenodo
    data = _onnx_zip(www / "records" / RECORD / "files" / KEY)
    model = load_model("tiny", registry(url, extra=f", md5: {md5(data)}"))
    assert requests == [f"/records/{RECORD}/files/{KEY}"]
    assert model.artifact_hash == hashlib.sha256(data).hexdigest()
    assert f"matches source.md5 {md5(data)}" in capsys.readouterr().out


def test_a_wrong_source_md5_is_refused_even_with_a_pinned_sha256(zenodo):
    url, www, requests, _ = zenodo
    data = _onnx_zip(www / "records" / RECORD / "files" / KEY)
    wrong = md5(b"something else")
    with pytest.raises(download.ChecksumError, match=f"expected md5 {wrong} \\(source.md5\\), got {md5(data)}"):
        load_model("tiny", registry(url, hashlib.sha256(data).hexdigest(), f", md5: {wrong}"))
    assert requests == [f"/records/{RECORD}/files/{KEY}"]  # a pinned sha256 needs no record


def test_other_hosts_are_not_taken_for_zenodo(monkeypatch):
    monkeypatch.delenv(download.ZENODO_API_ENV, raising=False)
    assert download.zenodo_file("https://example.org/records/1/files/m.zip") is None
    assert download.zenodo_file("https://sandbox.zenodo.org/records/1/files/m.zip/content") == ("1", "m.zip")
    assert (
        download.zenodo_api_base("https://sandbox.zenodo.org/records/1/files/m.zip") == "https://sandbox.zenodo.org/api"
    )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [(", md5: ABC", "field 'source.md5'"), (", md5: " + "a" * 31, "32 lowercase hex digits")],
)
def test_registry_checks_the_md5_field(extra, problem):
    with pytest.raises(RegistryError, match=problem):
        registry("https://zenodo.org/records/1/files/m.zip", extra=extra)
