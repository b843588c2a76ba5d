"""Own data: entries without a replica, categorical corpora, a folder and a CSV imported with ``import-dataset``.

Every corpus here is a real audformat database published to a
file-system audb repository; the audio of the folder-and-CSV corpus is
made by the demo synthesizer (:mod:`benchmark.data.synth`), so the
emotion categories drive real acoustic cues.
"""

from __future__ import annotations

from pathlib import Path

import audb
import audformat
import audiofile
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import build_database, publish

from benchmark import cli, results
from benchmark.data import categories as cats
from benchmark.data import synth
from benchmark.data.datasets import DatasetConfigError, entry_problems, load_registry, load_split

EMOTIONS = {  # z-scores the synthesizer turns into cues
    "anger": synth.Emotion(1.6, 1.0, -1.2),
    "happiness": synth.Emotion(1.3, 0.6, 1.2),
    "sadness": synth.Emotion(-1.4, -1.0, -1.2),
    "boredom": synth.Emotion(-1.2, -0.6, -0.6),
    "neutral": synth.Emotion(0.0, 0.0, 0.0),
}


def make_folder(root: Path, per_category: int = 3, n_speakers: int = 4, seconds: float = 1.5) -> pd.DataFrame:
    r"""Synthetic speakers × categories as WAV files in ``root``; the CSV rows (file, emotion, speaker, sex)."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_speakers):
        sex = "female" if s % 2 == 0 else "male"
        speaker = synth.make_speaker(f"spk{s}", sex, rng)
        for name, emotion in EMOTIONS.items():
            for k in range(per_category):
                file = f"{speaker.id}/{name}-{k}.wav"
                (root / speaker.id).mkdir(parents=True, exist_ok=True)
                audiofile.write(
                    str(root / file), synth.synthesize(speaker, emotion, rng, duration=seconds), synth.SAMPLING_RATE
                )
                rows.append({"file": file, "emotion": name, "speaker": speaker.id, "sex": sex})
    return pd.DataFrame(rows)


WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
_COMMITTED = next(
    m for m in yaml.safe_load((WEIGHTS.parent / "models.yaml").read_text())["models"] if m["name"] == "wav2small"
)
MODELS = f"""
models:
  - name: wav2small
    kind: audonnx
    role: student
    source: {{path: weights/wav2small, sha256: {_COMMITTED["source"]["sha256"]}}}
    sampling_rate: 16000
    outputs: {{arousal: arousal, dominance: dominance, valence: valence}}
    description: the project's Wav2Small
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    r"""A folder of synthesized speech and a CSV with categories only, speakers with sex and broken rows."""
    root = tmp_path_factory.mktemp("own-corpus")
    audio = root / "audio"
    rows = make_folder(audio)
    (audio / "broken.wav").write_text("not audio")
    broken = pd.DataFrame(
        [
            {"file": "missing.wav", "emotion": "anger", "speaker": "spk0", "sex": "female"},
            {"file": "broken.wav", "emotion": "sadness", "speaker": "spk1", "sex": "male"},
            {"file": rows["file"][0], "emotion": "anger", "speaker": "spk0", "sex": "female"},  # duplicate
            {"file": rows["file"][1], "emotion": "grumpy", "speaker": "spk0", "sex": "female"},
        ]
    )
    table = pd.concat([rows, broken], ignore_index=True)
    table["mood"] = "x"  # a column nobody knows
    table.to_csv(root / "labels.csv", index=False)
    return root


def test_import_dataset_then_run_consistency_and_skips(corpus, tmp_path, capsys):
    registry, models = tmp_path / "own.yaml", tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    repo = f"own={tmp_path / 'repo'}"
    code = cli.main(
        [
            "import-dataset",
            str(corpus / "audio"),
            "--csv",
            str(corpus / "labels.csv"),
            "--name",
            "owncorpus",
            "--version",
            "1.0.0",
            "--repository",
            repo,
            "--datasets",
            str(registry),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "60 file(s) published" in out
    for expected in (
        "missing.wav: file not found",
        "broken.wav: not readable as audio",
        "duplicate file",
        "'grumpy' has no place",
        "column 'mood': unknown column",
    ):
        assert expected in out, expected
    entry = yaml.safe_load(registry.read_text())["datasets"][0]
    assert "demo" not in entry and "labels" not in entry and entry["categories"] == {"column": "emotion"}
    # publishing the same version again is refused, naming the fix
    code = cli.main(
        [
            "import-dataset",
            str(corpus / "audio"),
            "--csv",
            str(corpus / "labels.csv"),
            "--name",
            "owncorpus",
            "--version",
            "1.0.0",
            "--repository",
            repo,
            "--datasets",
            str(registry),
        ]
    )
    assert code == 2 and "choose a new --version" in capsys.readouterr().err

    code = cli.main(
        [
            "run",
            "--model",
            "wav2small",
            "--models",
            str(models),
            "--datasets",
            str(registry),
            "--repository",
            repo,
            "--tests",
            "correctness",
            "consistency",
            "fairness",
            "--bootstrap",
            "50",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "correctness skipped on owncorpus" in out and "no A/D/V gold" in out
    assert "fairness skipped on owncorpus" in out
    table = results.read_table("consistency")
    overall = table[table["group"] == "all"].set_index("dimension")
    assert set(overall.index) == {"arousal", "dominance", "valence"}
    # per sex: fairness where no A/D/V gold exists (the speakers have too few files for rows of their own)
    assert set(table["group"]) == {"all", "female", "male"}
    # arousal: anger + happiness high (4 speakers × 2 × 3), sadness + boredom low; valence: happiness positive
    assert overall["n_high"].astype(int).to_dict() == {"arousal": 24, "dominance": 12, "valence": 12}
    assert overall["n_low"].astype(int).to_dict() == {"arousal": 24, "dominance": 12, "valence": 36}
    auc = overall["auc"].astype(float)
    assert ((auc >= 0) & (auc <= 1)).all()
    assert (overall["ci_low"].astype(float) <= auc).all() and (auc <= overall["ci_high"].astype(float)).all()
    means = results.read_table("consistency_categories")
    assert set(means["category"]) == set(EMOTIONS)
    assert not len(results.read_table("correctness"))
    runs = results.read_table("runs")
    assert runs["tests"].tolist() == ["consistency"]
    summary = pd.read_csv(Path(results.table_path("summary")))
    # one AUC test per dimension, a sex-gap test per sex row, a worst-speaker test per dimension that has one
    judged = 3 + table["group"].isin(["female", "male", "worst-speaker"]).sum()
    assert summary["tests"].iloc[0] == judged
    docs = Path(__import__("os").environ["SER_BENCHMARK_DOCS"])
    assert "Consistency" in (docs / "results" / "leaderboard.md").read_text()
    assert "Consistency" in (docs / "results" / "models" / "wav2small.md").read_text()


def consistency_of(predict_arousal) -> pd.DataFrame:
    r"""The consistency table for arousal predictions ``predict_arousal(category, sex)`` on a constructed split.

    12 files per category and sex; anger is arousal-high, sadness arousal-low, the other dimensions have no sides.
    """
    from conftest import BASELINES_YAML

    from benchmark.analyses import Context, consistency
    from benchmark.data.datasets import EvalSet
    from benchmark.registry import Registry, load_model

    keys = [(c, s, k) for c in ("anger", "sadness") for s in ("female", "male") for k in range(12)]
    index = pd.Index([f"/data/{c}-{s}-{k}.wav" for c, s, k in keys], name="file")
    evalset = EvalSet(
        dataset="constructed",
        audb_name="constructed",
        version="1.0.0",
        split="test",
        table="test",
        truth=pd.DataFrame(index=index),
        speaker=pd.Series([f"{s}{k % 3}" for _, s, k in keys], index=index),
        sex=pd.Series([s for _, s, _ in keys], index=index),
        root="/data",
        fingerprint="0" * 64,
        category=pd.Series([c for c, _, _ in keys], index=index),
        places={"anger": {"arousal": "high"}, "sadness": {"arousal": "low"}},
    )
    registry = Registry.from_yaml_text(BASELINES_YAML)
    clean = pd.DataFrame(
        {"arousal": [predict_arousal(c, s) for c, s, _ in keys], "dominance": 0.5, "valence": 0.5}, index=index
    )
    context = Context(
        load_model("constant", registry), registry["constant"], evalset, None, clean, 0, {"bootstrap": 50}
    )
    table = consistency.run(context)["consistency"]
    assert set(table["dimension"]) == {"arousal"}  # dominance and valence have no high or low categories
    return table.set_index("group")


def test_consistency_direction_on_constructed_predictions():
    aligned = consistency_of(lambda c, s: 0.8 if c == "anger" else 0.2)
    assert aligned["auc"].to_dict() == {"all": 1.0, "female": 1.0, "male": 1.0}
    assert aligned.loc["all", "n_high"] == aligned.loc["all", "n_low"] == 24
    assert aligned.loc["all", "high"] == "anger" and aligned.loc["all", "low"] == "sadness"
    reversed_ = consistency_of(lambda c, s: 0.2 if c == "anger" else 0.8)
    assert reversed_["auc"].to_dict() == {"all": 0.0, "female": 0.0, "male": 0.0}
    constant = consistency_of(lambda c, s: 0.5)
    assert constant["auc"].to_dict() == {"all": 0.5, "female": 0.5, "male": 0.5}  # ties count one half
    # aligned for women (0.9 vs 0.3), reversed for men (0.4 vs 0.8): pooled, 3 of the 4 kinds of pair are ordered
    mixed = consistency_of(
        lambda c, s: {("anger", "female"): 0.9, ("sadness", "female"): 0.3}.get((c, s), 0.4 if c == "anger" else 0.8)
    )
    assert mixed["auc"].to_dict() == {"all": 0.75, "female": 1.0, "male": 0.0}
    assert mixed["delta_auc"].drop("all").to_dict() == {"female": 0.25, "male": -0.75}
    assert mixed.loc["all", "passed"] and not reversed_.loc["all", "passed"]


def test_consistency_auc_separates_high_from_low():
    from benchmark.analyses.consistency import auc, auc_ci

    high, low = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.75])
    assert float(auc(high, low)) == pytest.approx(8 / 9)
    lo, hi = auc_ci(high, low, 200, 0)
    assert lo <= 8 / 9 <= hi
    assert float(auc(low, high)) == pytest.approx(1 / 9)


def test_unknown_category_is_an_error_naming_it(tmp_path):
    places, unknown = cats.placement(["anger", "Grumpy"], {"grumpy": {}})
    assert unknown == [] and places["Grumpy"] == {}
    assert cats.placement(["anger", "grumpy"])[1] == ["grumpy"]
    bad = {
        "name": "x",
        "audb": "x",
        "version": "1.0.0",
        "splits": {"test": "t"},
        "categories": {"column": "e", "map": {"joy": {"valence": "high"}}},
    }
    assert entry_problems(bad) == ["field 'categories.map.joy.valence': give positive or negative, got 'high'"]
    assert "give 'labels'" in entry_problems({"name": "x", "audb": "x", "version": "1.0.0", "splits": {"t": "t"}})[0]


def _publish_db(tmp_path, *, categories: bool, dims: bool, scheme_labels=None) -> audb.Repository:
    r"""``testcorpus``-like database with A/D/V and/or a category column, published as ``own`` 1.0.0."""
    build = tmp_path / "build"
    db = build_database(build, n_speakers=4, per_speaker=12)
    for split in ("test-1", "test-2"):
        table = f"emotion.dimensions.{split}.gold_standard"
        if categories:
            arousal = db[table]["arousal"].get()
            labels = np.where(arousal > 4.5, "anger", np.where(arousal < 3.5, "sadness", "neutral"))
            db.schemes["category"] = audformat.Scheme("str", labels=scheme_labels or ["anger", "neutral", "sadness"])
            db[table]["emotion"] = audformat.Column(scheme_id="category")
            db[table]["emotion"].set(list(labels))
        if not dims:
            for dim in ("arousal", "dominance", "valence"):
                db[table].drop_columns(dim)
    db.save(str(build))
    host = tmp_path / "host"
    repo = audb.Repository("own", str(host), "file-system")
    (host / "own").mkdir(parents=True)
    publish(build, "1.0.0", repo, cache_root=str(tmp_path / "publish-cache"))
    return repo


def _registry(tmp_path, *, categories: bool, dims: bool, extra: str = "") -> Path:
    path = tmp_path / "own.yaml"
    text = """
datasets:
  - name: testcorpus
    audb: testcorpus
    version: 1.0.0
    splits: {test-1: emotion.dimensions.test-1.gold_standard}
    speaker: {table: files, column: speaker}
    sex: {table: speaker, column: gender}
"""
    if dims:
        text += "    labels: {arousal: arousal, dominance: dominance, valence: valence}\n    label_range: [1, 7]\n"
    if categories:
        text += "    categories: {column: emotion" + extra + "}\n"
    path.write_text(text)
    return path


def test_adv_database_without_demo_field_loads_from_its_repository(tmp_path):
    repo = _publish_db(tmp_path, categories=False, dims=True)
    entry = load_registry(_registry(tmp_path, categories=False, dims=True))["testcorpus"]
    assert entry.demo is None and entry.source("demo") == "real"
    evalset = load_split(entry, "test-1", data="demo", repositories=[repo])  # --data demo cannot choose a replica
    assert evalset.dimensions == ("arousal", "dominance", "valence") and evalset.category is None
    with pytest.raises(DatasetConfigError, match="'testcorpus'.*no embedded replica"):
        load_split(entry, "test-1", repositories=[audb.Repository("gone", str(tmp_path / "nowhere"), "file-system")])


def test_scheme_categories_without_a_place_are_an_error(tmp_path):
    repo = _publish_db(tmp_path, categories=True, dims=False, scheme_labels=["anger", "neutral", "sadness", "awe"])
    entry = load_registry(_registry(tmp_path, categories=True, dims=False))["testcorpus"]
    with pytest.raises(DatasetConfigError, match=r"\['awe'\] has no place"):
        load_split(entry, "test-1", repositories=[repo])
    (tmp_path / "own.yaml").unlink()
    entry = load_registry(_registry(tmp_path, categories=True, dims=False, extra=", map: {awe: {arousal: high}}"))
    evalset = load_split(entry["testcorpus"], "test-1", repositories=[repo])
    assert evalset.places["awe"] == {"arousal": "high"} and set(evalset.category.dropna()) <= {
        "anger",
        "neutral",
        "sadness",
    }


@pytest.mark.parametrize(
    "categories, dims, ran",
    [
        (False, True, "correctness fairness"),
        (True, False, "consistency"),
        (True, True, "correctness fairness consistency"),
    ],
)
def test_each_kind_of_corpus_runs_the_families_that_apply(tmp_path, categories, dims, ran):
    from benchmark.registry import Registry
    from benchmark.suite import run_suite

    repo = _publish_db(tmp_path, categories=categories, dims=dims)
    registry = load_registry(_registry(tmp_path, categories=categories, dims=dims))
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    report = run_suite(
        "wav2small",
        tests=["correctness", "fairness", "consistency"],
        repositories=[repo],
        registry=Registry.from_file(models),
        dataset_registry=registry,
        options={"bootstrap": 20, "consistency_min_files": 3},
        progress=False,
        log=lambda _: None,
    )
    assert report.ok, report.failures
    assert results.read_table("runs")["tests"].tolist() == [ran]
    skipped = " ".join(reason for _, _, reason in report.skipped_sets)
    for family in {"correctness", "fairness", "consistency"} - set(ran.split()):
        assert f"{family}: " in skipped
    assert bool(len(results.read_table("correctness"))) == dims
    assert bool(len(results.read_table("consistency_categories"))) == categories


def test_three_minute_file_is_predicted_window_by_window(tmp_path):
    from benchmark import runner
    from benchmark.models.base import Predictor

    class Loudness(Predictor):
        longest = 0

        def predict(self, signal):
            Loudness.longest = max(Loudness.longest, signal.size)
            rms = float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))
            return np.array([rms, 0.5, 0.5])

    sr = 16000
    t = np.arange(180 * sr) / sr
    signal = (0.1 + 0.2 * (t > 120)) * np.sin(2 * np.pi * 150 * t)  # louder in the last minute
    path = tmp_path / "long.wav"
    audiofile.write(str(path), signal.astype(np.float32), sr)
    model = Loudness("loud", "0" * 64)
    out = list(runner.iter_chunks(model, pd.Index([str(path)]), dims=("arousal",)))
    pred = out[0][1]
    assert Loudness.longest == runner.MAX_SIGNAL_SECONDS * sr  # never the whole 3 minutes at once
    quiet, loud = 0.1 / np.sqrt(2), 0.3 / np.sqrt(2)
    assert pred.loc[str(path), "arousal"] == pytest.approx((2 * quiet + loud) / 3, rel=1e-3)
    long = runner.segmented_files([str(path)])
    assert long[["duration_s", "window_s", "segments"]].values.tolist() == [[180.0, 60.0, 3]]
    assert runner.segmented_files([str(tmp_path / "missing.wav")]).empty


def test_the_guide_s_registry_examples_are_valid_entries():
    import re

    guide = (Path(__file__).resolve().parents[1] / "docs" / "adding-a-dataset.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        for entry in yaml.safe_load(block)["datasets"]:
            assert entry_problems(entry) == [], entry["name"]
    documented = set(re.findall(r"^\| ([a-z, ]+) \|", guide, flags=re.M))
    names = {n.strip() for row in documented for n in row.split(",")}
    assert set(cats.DEFAULT_MAP) <= names  # every default place is in the guide's table


def test_import_adv_labels_reports_out_of_range_rows(tmp_path):
    from benchmark.data.importer import import_dataset

    folder = tmp_path / "audio"
    rows = make_folder(folder, per_category=1, n_speakers=2, seconds=1.0).drop(columns="emotion")
    rows["arousal"] = [f"{v:.2f}" for v in np.linspace(1, 7, len(rows))]
    rows.loc[0, "arousal"] = "9.0"
    rows.loc[1, "arousal"] = "high"
    rows.to_csv(tmp_path / "labels.csv", index=False)
    repo = f"own={tmp_path / 'repo'}"
    report = import_dataset(
        folder,
        tmp_path / "labels.csv",
        "advcorpus",
        "1.0.0",
        repository=repo,
        registry=tmp_path / "own.yaml",
        label_range=(1, 7),
    )
    assert report.kept == len(rows) - 2
    assert [(w, r) for w, r in report.problems] == [
        (rows["file"][0], "arousal 9.0 outside --label-range [1, 7]"),
        (rows["file"][1], "arousal 'high' is no number"),
    ]
    entry = load_registry(tmp_path / "own.yaml")["advcorpus"]
    assert entry.labels == {"arousal": "arousal"} and entry.categories is None
    evalset = load_split(entry, "test", repositories=[report.repository])
    assert evalset.truth["arousal"].between(0, 1).all() and evalset.sex.notna().all()
