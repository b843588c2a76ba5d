"""The committed docs/ are what `nox -s docs` generates from the committed results/,
the HTML renders in headless Chromium, and adding a model is one models.yaml entry."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark import leaderboard, results
from benchmark.paths import PROJECT_ROOT

GENERATED = ("leaderboard.md", "models", "figures", "html")


def _generated_files(root: Path) -> dict[str, Path]:
    out = {}
    for name in GENERATED:
        base = root / name
        if base.is_file():
            out[name] = base
        elif base.is_dir():
            out.update({p.relative_to(root).as_posix(): p for p in base.rglob("*") if p.is_file()})
    return out


def test_committed_docs_match_committed_results(tmp_path):
    committed = PROJECT_ROOT / "docs"
    fresh = tmp_path / "docs"
    shutil.copytree(committed, fresh)  # hand-written pages stay; generated ones are rebuilt
    leaderboard.build(results_dir=PROJECT_ROOT / "results", docs_dir=fresh, registry=PROJECT_ROOT / "models.yaml")
    want, got = _generated_files(fresh), _generated_files(committed)
    assert sorted(want) == sorted(got), "docs/ out of sync: run `nox -s docs` and commit docs/"
    stale = [name for name in want if not filecmp.cmp(want[name], got[name], shallow=False)]
    assert not stale, f"docs/ out of sync with results/ ({stale[:5]}): run `nox -s docs` and commit docs/"


def test_every_leaderboard_ccc_traces_to_results():
    table = results.read_table("correctness", PROJECT_ROOT / "results")
    assert len(table), "results/correctness.csv holds no rows: the committed results are missing"
    text = (PROJECT_ROOT / "docs" / "leaderboard.md").read_text()
    for _, row in table.iterrows():
        if row["model_sha256"][:8] in text:
            assert f"{float(row['ccc']):.3f}" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(tmp_path):
    index = PROJECT_ROOT / "docs" / "html" / "index.html"
    assert index.exists(), "docs/html/index.html missing: run `nox -s docs`"
    shot = tmp_path / "leaderboard.png"
    proc = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2000", f"--screenshot={shot}", index.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    errors = [
        line for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Error" in line or "Failed to load resource" in line) or "net::ERR_FILE_NOT_FOUND" in line
    ]
    assert not errors, errors


def test_adding_a_model_is_one_entry(tmp_path, use_demo, monkeypatch):
    """A fresh ONNX model → one models.yaml entry → benchmark → docs: it is on the leaderboard."""
    import audonnx
    import torch

    from benchmark.registry import Registry
    from benchmark.suite import run_suite

    class Loudness(torch.nn.Module):
        def forward(self, signal):
            rms = signal.pow(2).mean(dim=1, keepdim=True).sqrt()
            return torch.cat([rms * 4, rms * 3, 0.5 + 0 * rms], dim=1)

    folder = tmp_path / "my-model"
    folder.mkdir()
    torch.onnx.export(
        Loudness(), torch.zeros(1, 16000), folder / "model.onnx", input_names=["signal"], output_names=["logits"],
        dynamic_axes={"signal": {1: "samples"}}, dynamo=False,
    )
    audonnx.Model(str(folder / "model.onnx"), labels={"logits": ["arousal", "dominance", "valence"]}).to_yaml(
        str(folder / "model.yaml")
    )
    registry_file = tmp_path / "models.yaml"
    registry_file.write_text(
        # the project's registry, its relative weight paths made absolute, plus one entry
        (PROJECT_ROOT / "models.yaml").read_text().replace("path: weights/", f"path: {PROJECT_ROOT}/weights/")
        + f"""
  - name: my-loudness-model
    kind: audonnx
    role: student
    source: {{path: {folder}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: RMS loudness as arousal (test entry)
"""
    )
    registry = Registry.from_file(registry_file)
    report = run_suite("my-loudness-model", datasets=["msppodcast"], splits=["test-1"], tests=["correctness"],
                       registry=registry, options={"bootstrap": 100}, progress=False, log=lambda m: None)
    assert report.ok
    docs = tmp_path / "docs"
    leaderboard.build(docs_dir=docs, registry=registry_file)
    text = (docs / "leaderboard.md").read_text()
    assert "my-loudness-model" in text
    row = results.read_table("correctness").query("model == 'my-loudness-model' and dimension == 'arousal'")
    assert f"{float(row['ccc'].iloc[0]):.3f}" in text
    assert (docs / "models" / "my-loudness-model.md").exists()
    assert (docs / "html" / "models" / "my-loudness-model.html").exists()
