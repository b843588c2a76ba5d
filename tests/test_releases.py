"""``import-corpus``: tiny folders laid out like each official release are imported and benchmarked with ``--data real``.

The layouts follow the public descriptions of each release
(``docs/real-corpora.md``); the audio is short tones. Expected values
are computed here from the numbers written into the fake label files.
"""

from __future__ import annotations

from pathlib import Path

import audiofile
import pandas as pd
import pytest
from conftest import SR, tone
from test_own_data import MODELS, WEIGHTS

from benchmark import cli, results
from benchmark.data.datasets import DatasetConfigError, load_registry, load_split, parse_repository
from benchmark.data.releases import import_corpus

MSP_ROWS = [  # FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set
    ("MSP-PODCAST_0001_0001.wav", "A", "6.5", "2.0", "6.0", "30", "Male", "Test1"),
    ("MSP-PODCAST_0001_0002.wav", "S", "1.5", "2.5", "2.0", "30", "Male", "Test1"),
    ("MSP-PODCAST_0002_0001.wav", "H", "5.8", "6.2", "4.0", "41", "Female", "Test1"),
    ("MSP-PODCAST_0002_0002.wav", "N", "4.0", "4.0", "4.0", "41", "Female", "Test1"),
    ("MSP-PODCAST_0003_0001.wav", "X", "3.2", "3.777778", "3.0", "Unknown", "Unknown", "Test1"),
    ("MSP-PODCAST_0004_0001.wav", "S", "2.0", "1.4", "2.2", "52", "Female", "Test2"),
    ("MSP-PODCAST_0004_0002.wav", "A", "6.0", "2.2", "5.5", "52", "Female", "Test2"),
    ("MSP-PODCAST_0005_0001.wav", "H", "5.0", "6.0", "4.4", "60", "Male", "Development"),
    ("MSP-PODCAST_0005_0002.wav", "N", "3.5", "4.5", "3.5", "60", "Male", "Development"),
    ("MSP-PODCAST_0006_0001.wav", "N", "4.0", "4.0", "4.0", "70", "Male", "Train"),
    ("MSP-PODCAST_0007_0001.wav", "N", "9.0", "4.0", "4.0", "71", "Male", "Test1"),  # out of scale
    ("MSP-PODCAST_0007_0002.wav", "N", "4.0", "4.0", "4.0", "71", "Male", "Test1"),  # no audio
    ("MSP-PODCAST_0007_0003.wav", "N", "4.0", "4.0", "4.0", "71", "Male", "Holdout"),  # unknown split
]


def _wav(path: Path, seed: int, f0: float = 150.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    audiofile.write(str(path), tone(0.6, f0 + 7 * seed, seed=seed), SR)


def make_msppodcast(root: Path, spelling: str = "consensus") -> Path:
    r"""A release folder: ``Audios/``, ``Labels/labels_<spelling>.csv`` with :data:`MSP_ROWS`."""
    header = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
    (root / "Labels").mkdir(parents=True)
    pd.DataFrame(MSP_ROWS, columns=header).to_csv(root / "Labels" / f"labels_{spelling}.csv", index=False)
    for i, row in enumerate(MSP_ROWS):
        if row[0] != "MSP-PODCAST_0007_0002.wav":
            _wav(root / "Audios" / row[0], i)
    return root


IEMOCAP = {  # session → [(utterance, code, V, A, D)]
    1: [("Ses01F_impro01_F000", "neu", 2.5, 2.5, 2.5), ("Ses01F_impro01_M001", "ang", 1.5, 4.0, 4.5)],
    2: [("Ses02M_script01_1_F000", "sad", 2.0, 1.5, 2.0), ("Ses02M_script01_1_M001", "exc", 4.0, 4.5, 3.5)],
    5: [
        ("Ses05F_impro03_F000", "hap", 4.5, 3.5, 3.0),
        ("Ses05F_impro03_M000", "xxx", 3.0, 3.0, 3.0),
        ("Ses05M_impro02_F001", "fru", 2.0, 3.5, 3.5),
        ("Ses05M_impro02_M002", "sad", 1.5, 2.0, 2.0),
        ("Ses05M_impro02_M003", "neu", 9.0, 3.0, 3.0),  # out of scale
    ],
}


def make_iemocap(root: Path) -> Path:
    r"""``IEMOCAP_full_release/SessionN/{sentences/wav,dialog/EmoEvaluation}`` with :data:`IEMOCAP`."""
    release = root / "IEMOCAP_full_release"
    for session, utts in IEMOCAP.items():
        evaluation = release / f"Session{session}" / "dialog" / "EmoEvaluation"
        (evaluation / "Categorical").mkdir(parents=True)
        (evaluation / "Categorical" / "ignored.txt").write_text("[1.0 - 2.0]\tnot a summary\n")
        blocks: dict[str, list[str]] = {}
        for k, (utt, code, v, a, d) in enumerate(utts):
            dialog = utt.rsplit("_", 1)[0]
            line = f"[{k:.4f} - {k + 1:.4f}]\t{utt}\t{code}\t[{v:.4f}, {a:.4f}, {d:.4f}]"
            blocks.setdefault(dialog, []).append(f"{line}\nC-E1:\tNeutral;\t()\nA-E1:\tval 3; act 3; dom  3;\t()\n")
            _wav(release / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav", session * 10 + k)
        for dialog, lines in blocks.items():
            header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
            (evaluation / f"{dialog}.txt").write_text(header + "\n".join(lines))
    return root


EMODB_TEST = [f"{s}{t}{e}a.wav" for s in ("12", "14", "15", "16") for t in ("a01", "b02") for e in "WLEAFTN"]
EMODB_TRAIN = ["03a01Wa.wav", "03a02Tb.wav", "08b01Fa.wav", "13a07Lb.wav"]


def make_emodb(root: Path) -> Path:
    r"""``wav/`` with every emotion twice per test speaker, four train files, and ``erkennung.txt``."""
    names = [*EMODB_TEST, *EMODB_TRAIN, "99a01Wa.wav"]  # 99: a speaker EmoDB does not have
    lines = ["Nr.\tSatz\terkannt\tnatuerlich"]
    for i, name in enumerate(names):
        _wav(root / "wav" / name, i, f0=120 + 40 * ("WAF".find(name[5]) + 1))
        lines.append(f"{i + 1}\xa0\xa0\t{name}\t{80 + i % 20},00\xa0\xa0\t{50 + i % 40},50\xa0\xa0")
    lines.append(f"{len(names) + 1}\t03a05Wa.wav\t90,00\t90,00")  # listed, no audio: not used, not an error
    (root / "erkennung.txt").write_bytes("\n".join(lines).encode("latin-1"))
    return root


def _run_real(tmp_path, registry: Path, repo: str, dataset: str, tests: list[str], capsys) -> str:
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.replace("weights/", f"{WEIGHTS}/"))
    argv = ["run", "--model", "wav2small", "--models", str(models), "--datasets", str(registry), "--data", "real"]
    argv += ["--dataset", dataset, "--repository", repo, "--tests", *tests, "--bootstrap", "20", "--no-progress"]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    return out


@pytest.mark.parametrize("spelling", ["consensus", "concensus"])
def test_msppodcast_release_imports_with_audeering_tables(tmp_path, spelling, capsys):
    root = make_msppodcast(tmp_path / "MSP-PODCAST-1.11", spelling)
    registry, repo = tmp_path / "own.yaml", f"own={tmp_path / 'repo'}"
    code = cli.main(
        [
            "import-corpus",
            "msppodcast",
            str(root),
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
    assert "10 file(s) published" in out
    assert "MSP-PODCAST_0007_0001.wav: EmoAct '9.0' is no number in 1..7" in out
    assert "MSP-PODCAST_0007_0002.wav: audio not found" in out
    assert "MSP-PODCAST_0007_0003.wav: Split_Set 'Holdout' unknown" in out
    entry = load_registry(registry)["msppodcast"]
    assert list(entry.splits) == ["test-1", "test-2", "development"]
    evalset = load_split(entry, "test-1", data="real", repositories=[parse_repository(repo)])
    by_name = {Path(f).name: f for f in evalset.files}
    expected = {r[0]: r for r in MSP_ROWS if r[7] == "Test1" and r[0] in by_name}
    assert len(expected) == 5
    for name, row in expected.items():
        file = by_name[name]
        assert evalset.truth.loc[file, "arousal"] == pytest.approx((float(row[2]) - 1) / 6)
        assert evalset.truth.loc[file, "valence"] == pytest.approx((float(row[3]) - 1) / 6)
        assert evalset.truth.loc[file, "dominance"] == pytest.approx((float(row[4]) - 1) / 6)
    unknown = by_name["MSP-PODCAST_0003_0001.wav"]
    assert pd.isna(evalset.speaker[unknown]) and pd.isna(evalset.sex[unknown]) and pd.isna(evalset.category[unknown])
    assert evalset.sex[by_name["MSP-PODCAST_0002_0001.wav"]] == "female"
    assert evalset.category[by_name["MSP-PODCAST_0001_0001.wav"]] == "anger"
    assert evalset.category[by_name["MSP-PODCAST_0001_0002.wav"]] == "sadness"
    if spelling == "consensus":
        out = _run_real(tmp_path, registry, repo, "msppodcast", ["correctness", "consistency"], capsys)
        table = results.read_table("correctness")
        assert set(table["split"]) == {"test-1", "test-2", "development"}
        assert set(table[table["split"] == "test-1"]["n"].astype(int)) == {5}


def test_msppodcast_retry_with_the_same_version_after_a_refusal(tmp_path):
    root = tmp_path / "release"
    (root / "Labels").mkdir(parents=True)
    (root / "Audios").mkdir()
    (root / "Labels" / "labels_consensus.csv").write_text("FileName,EmoAct\nx.wav,4\n")
    with pytest.raises(DatasetConfigError, match="column"):
        import_corpus("msppodcast", root, "1.0.0", repository=f"own={tmp_path / 'repo'}", registry=tmp_path / "o.yaml")
    make_msppodcast(tmp_path / "good")
    report = import_corpus(
        "msppodcast", tmp_path / "good", "1.0.0", repository=f"own={tmp_path / 'repo'}", registry=tmp_path / "o.yaml"
    )
    assert report.kept == 10


@pytest.mark.parametrize("test_session", [5, 1])
def test_iemocap_release_imports_with_session_folds(tmp_path, test_session, capsys):
    make_iemocap(tmp_path / "release")
    registry, repo = tmp_path / "own.yaml", f"own={tmp_path / 'repo'}"
    argv = ["import-corpus", "iemocap", str(tmp_path / "release"), "--version", "2.0.0", "--repository", repo]
    argv += ["--datasets", str(registry), "--test-session", str(test_session)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "8 file(s) published" in out and "valence '9.0000' is no number in 1..5" in out
    entry = load_registry(registry)["iemocap"]

    evalset = load_split(entry, "test", data="real", repositories=[parse_repository(repo)])
    expected = {u: (v, a, d, code) for u, code, v, a, d in IEMOCAP[test_session] if v <= 5}
    got = {Path(f).stem: f for f in evalset.files}
    assert set(got) == set(expected)
    for utt, (v, a, d, code) in expected.items():
        row = evalset.truth.loc[got[utt]]
        assert (row["valence"], row["arousal"], row["dominance"]) == pytest.approx(
            ((v - 1) / 4, (a - 1) / 4, (d - 1) / 4)
        )
        speaker = f"Ses{utt[3:5]}{utt.rsplit('_', 1)[1][0]}"
        assert evalset.speaker[got[utt]] == speaker
        assert evalset.sex[got[utt]] == ("female" if speaker.endswith("F") else "male")
        names = {"neu": "neutral", "ang": "anger", "sad": "sadness", "exc": "happiness", "hap": "happiness"}
        names |= {"fru": "frustration"}
        assert (evalset.category[got[utt]] if code != "xxx" else None) == names.get(code) or pd.isna(
            evalset.category[got[utt]]
        )
    if test_session == 5:
        _run_real(tmp_path, registry, repo, "iemocap", ["correctness", "consistency"], capsys)
        assert set(results.read_table("correctness")["n"].astype(int)) == {4}


def test_emodb_release_imports_with_emodb_2_tables(tmp_path, capsys):
    make_emodb(tmp_path / "emodb")
    registry, repo = tmp_path / "own.yaml", f"own={tmp_path / 'repo'}"
    argv = ["import-corpus", "emodb", str(tmp_path / "emodb"), "--version", "2.0.0", "--repository", repo]
    assert cli.main([*argv, "--datasets", str(registry)]) == 0
    out = capsys.readouterr().out
    assert "60 file(s) published" in out and "wav/99a01Wa.wav: speaker 99 is none of EmoDB's ten" in out
    import audb

    audb.config.REPOSITORIES = [parse_repository(repo)]
    db = audb.load(
        "emodb", version="2.0.0", only_metadata=True, full_path=False, verbose=False, cache_root=str(tmp_path / "c")
    )
    assert {t: len(db[t].df) for t in db} == {
        "emotion": 60,
        "emotion.categories.ambiguous": 0,
        "emotion.categories.test.gold_standard": 56,
        "emotion.categories.train.gold_standard": 4,
        "files": 60,
        "speaker": 10,
    }
    assert db["emotion"]["emotion.confidence"].get()["wav/08b01Fa.wav"] == pytest.approx((80 + 58 % 20) / 100)
    assert db["speaker"]["gender"].get()[14] == "female" and db["speaker"]["age"].get()[3] == 31
    assert db["files"]["transcription"].get()["wav/16b02Ea.wav"] == "b02"
    entry = load_registry(registry)["emodb"]
    evalset = load_split(entry, "test", data="real", repositories=[parse_repository(repo)])
    got = {Path(f).name: f for f in evalset.files}
    assert sorted(got) == sorted(EMODB_TEST)
    assert evalset.category[got["14a01La.wav"]] == "boredom" and evalset.sex[got["15b02Aa.wav"]] == "male"
    _run_real(tmp_path, registry, repo, "emodb", ["consistency"], capsys)
    table = results.read_table("consistency")
    arousal = table[(table["group"] == "all") & (table["dimension"] == "arousal")].iloc[0]
    assert (int(arousal["n_high"]), int(arousal["n_low"])) == (24, 16)  # anger, fear, happiness / sadness, boredom


def test_a_folder_that_is_no_release_is_named(tmp_path):
    for corpus, what in (("msppodcast", "labels_consensus.csv"), ("iemocap", "Session1"), ("emodb", "wav/")):
        with pytest.raises(DatasetConfigError, match=what):
            import_corpus(
                corpus, tmp_path, "1.0.0", repository=f"own={tmp_path / 'repo'}", registry=tmp_path / "o.yaml"
            )
