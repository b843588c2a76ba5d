"""The committed docs/ are what `nox -s docs` generates from the committed results/,
MkDocs builds the site from them, the site renders in headless Chromium, and adding a
model is one models.yaml entry."""

from __future__ import annotations

import contextlib
import filecmp
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import build_site

from benchmark import results
from benchmark.docs import build as build_docs
from benchmark.paths import PROJECT_ROOT

GENERATED = ("results/leaderboard.md", "results/models", "results/figures")


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
    build_docs(results_dir=PROJECT_ROOT / "results", docs_dir=fresh, registry=PROJECT_ROOT / "models.yaml")
    want, got = _generated_files(fresh), _generated_files(committed)
    assert sorted(want) == sorted(got), "docs/ out of sync: run `nox -s docs` and commit docs/"
    stale = [name for name in want if not filecmp.cmp(want[name], got[name], shallow=False)]
    assert not stale, f"docs/ out of sync with results/ ({stale[:5]}): run `nox -s docs` and commit docs/"


def correctness_cells(text: str) -> dict[tuple[str, str, str, str, str], str]:
    r"""The CCC cells of the leaderboard's Correctness section.

    Keyed by (sha256 prefix, dataset, version, split, dimension), read from
    the ``### dataset version · split`` headings and the tables' columns.
    """
    section = text[text.index("\n## Correctness") : text.index("\n## ", text.index("\n## Correctness") + 1)]
    cells, corpus, header = {}, None, None
    for line in section.splitlines():
        if line.startswith("### "):
            corpus, header = line[4:].split(" (")[0].replace(" · ", " ").split(), None
        elif not line.startswith("|"):
            header = None
        elif header is None:
            header = [c.strip() for c in line.strip().strip("|").split("|")]
        elif "sha256" in header and not line.startswith("|--"):
            row = dict(zip(header, (c.strip() for c in line.strip().strip("|").split("|"))))
            for column, value in row.items():
                if column.endswith(" CCC [95% CI]"):
                    cells[(row["sha256"].strip("`"), *corpus, column.split()[0])] = value
    return cells


def test_every_leaderboard_ccc_cell_traces_to_its_results_row():
    table = results.read_table("correctness", PROJECT_ROOT / "results")
    assert len(table), "results/correctness.csv holds no rows: the committed results are missing"
    cells = correctness_cells((PROJECT_ROOT / "docs" / "results" / "leaderboard.md").read_text())
    assert len(cells) >= 50, len(cells)  # every corpus, every dimension, every model
    rows = {}
    for _, r in table.iterrows():
        key = (r["model_sha256"][:8], r["dataset"], r["dataset_version"], r["split"], r["dimension"])
        rows.setdefault(key, []).append(r)
    for key, cell in cells.items():
        assert len(rows.get(key, [])) == 1, f"{key}: {len(rows.get(key, []))} rows in results/correctness.csv"
        r = rows[key][0]
        want = f"{float(r['ccc']):.3f} [{float(r['ccc_ci_low']):.3f}, {float(r['ccc_ci_high']):.3f}]"
        assert cell.replace("**", "") == want, (key, cell, want)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    r"""The HTML site as ``nox -s docs`` builds it from the committed docs (built here: it is not committed)."""
    site = tmp_path_factory.mktemp("site")
    build_site(PROJECT_ROOT / "mkdocs.yml", site)
    return site


def _pages(html_text: str) -> tuple[list[str], list[str]]:
    r"""Local links and image sources of a built page."""
    links = re.findall(r'<a [^>]*href="([^"#]+)(?:#[^"]*)?"', html_text)
    images = re.findall(r'<img [^>]*src="([^"]+)"', html_text)
    return [h for h in links if not re.match(r"^[a-z]+:", h)], images


def test_site_is_built_from_every_page(site):
    pages = sorted(
        p.relative_to(PROJECT_ROOT / "docs").with_suffix(".html").as_posix()
        for p in (PROJECT_ROOT / "docs").rglob("*.md")
    )
    assert "results/leaderboard.html" in pages and "results/models/wav2small.html" in pages
    assert "adding-a-model.html" in pages
    missing = [page for page in pages if not (site / page).is_file()]
    assert not missing, missing
    leaderboard = (site / "results" / "leaderboard.html").read_text()
    markdown = (PROJECT_ROOT / "docs" / "results" / "leaderboard.md").read_text()
    # every table of the Markdown is a table of the site, with the same numbers
    assert leaderboard.count("<table") == len(re.findall(r"^\|[-:| ]+\|$", markdown, flags=re.M)) > 5
    best = re.search(r"\*\*(\d\.\d{3})\*\* (\[[-\d.]+, [-\d.]+\])", markdown)
    assert f"<strong>{best[1]}</strong> {best[2]}" in leaderboard
    for page in ("results/leaderboard.html", "results/models/wav2small.html"):
        links, images = _pages((site / page).read_text())
        assert images and all(src.endswith(".png") for src in images)
        for ref in links + images:
            assert (site / page).parent.joinpath(ref).resolve().exists(), (page, ref)
    assert 'href="models/wav2small.html"' in leaderboard
    assert not (site / "html").exists()  # pages of the old converter are not part of the site


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def _serve(folder: Path):
    r"""The site over HTTP on the loopback, as a host would serve it; yields (url, [(status, path), ...])."""
    requests: list[tuple[int, str]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_request(self, code="-", size="-"):
            requests.append((int(code), self.path))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_site_renders_in_headless_chromium(site, tmp_path):
    from PIL import Image

    shot = tmp_path / "leaderboard.png"
    with _serve(site) as (url, requests):
        proc = _headless(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", f"{url}/results/leaderboard.html")
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = _headless(tmp_path, "--dump-dom", f"{url}/results/leaderboard.html")
        assert dom.returncode == 0, dom.stderr[-2000:]
    # drawn, not blank: many colours, and ink on a good part of the page
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 200
    ink = sum(count for count, colour in image.getcolors(maxcolors=1 << 20) if sum(colour) < 600)
    assert ink > 0.01 * 1280 * 2000
    # the theme laid out the page: title, navigation, the leaderboard's tables
    assert "md-nav" in dom.stdout and "Leaderboard: dimensional speech emotion recognition" in dom.stdout
    markdown = (PROJECT_ROOT / "docs" / "results" / "leaderboard.md").read_text()
    assert dom.stdout.count("<table") == len(re.findall(r"^\|[-:| ]+\|$", markdown, flags=re.M))
    # everything the page asked for was served: its figures, the theme's scripts and styles
    assert not [r for r in requests if r[0] >= 400], requests
    served = {path for status, path in requests if status == 200}
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", markdown)
    assert figures and all(f"/results/{f}" in served for f in figures), sorted(served)
    assert any(p.endswith(".js") for p in served) and any(p.endswith(".css") for p in served)
    errors = [
        line
        for line in proc.stderr.splitlines() + dom.stderr.splitlines()
        if "CONSOLE" in line and ("Error" in line or "Failed to load resource" in line) or "net::ERR_" in line
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
        Loudness(),
        torch.zeros(1, 16000),
        folder / "model.onnx",
        input_names=["signal"],
        output_names=["logits"],
        dynamic_axes={"signal": {1: "samples"}},
        dynamo=False,
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
    report = run_suite(
        "my-loudness-model",
        datasets=["msppodcast"],
        splits=["test-1"],
        tests=["correctness"],
        registry=registry,
        options={"bootstrap": 100},
        progress=False,
        log=lambda m: None,
    )
    assert report.ok
    docs = tmp_path / "docs"
    build_docs(docs_dir=docs, registry=registry_file)
    text = (docs / "results" / "leaderboard.md").read_text()
    assert "my-loudness-model" in text
    row = results.read_table("correctness").query("model == 'my-loudness-model' and dimension == 'arousal'")
    assert f"{float(row['ccc'].iloc[0]):.3f}" in text
    assert (docs / "results" / "models" / "my-loudness-model.md").exists()
