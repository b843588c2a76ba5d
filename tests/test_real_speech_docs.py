"""The leaderboard opens with real speech (consistency on a corpus that is not a synthetic replica)."""

from __future__ import annotations

import pandas as pd
from test_leaderboard import PROV, SHA_BETA, SHA_NEW, make_fixture, section

from benchmark.docs import build as build_docs

EMODB = {"dataset": "emodb", "dataset_version": "2.0.0", "data_fingerprint": "0bc715a7fe45", "split": "test"}

# model, sha -> dimension -> (AUC all, female, male)
AUC = {
    ("alpha", SHA_NEW): {"arousal": (0.90, 0.91, 0.89), "dominance": (0.80, 0.76, 0.91), "valence": (0.61, 0.65, 0.55)},
    ("beta", SHA_BETA): {"arousal": (0.95, 0.95, 0.95), "dominance": (0.85, 0.85, 0.85), "valence": (0.70, 0.70, 0.70)},
}


def write_emodb(results) -> None:
    rows = []
    for (model, sha), dims in AUC.items():
        for dim, (overall, female, male) in dims.items():
            base = {
                "model": model,
                "model_sha256": sha,
                **EMODB,
                "dimension": dim,
                "n_high": 40,
                "n_low": 40,
                "high": "anger",
                "low": "sadness",
            }
            for group, value in (("all", overall), ("female", female), ("male", male)):
                rows.append(
                    {
                        **base,
                        "group": group,
                        "auc": value,
                        "ci_low": value - 0.05,
                        "ci_high": min(value + 0.05, 1.0),
                        "delta_auc": "" if group == "all" else value - overall,
                        "passed": value >= 0.6 if group == "all" else "",
                        **PROV,
                        "date": "2026-12-07",
                    }
                )
            rows.append({**base, "group": "worst-speaker", "speaker": "14", "auc": overall - 0.1, **PROV})
    pd.DataFrame(rows).to_csv(results / "consistency.csv", index=False, lineterminator="\n")


def build(fixture):
    results, docs, registry, reported = fixture
    build_docs(results, docs, registry, reported=reported, resamples=50)
    return (docs / "results" / "leaderboard.md").read_text(), (docs / "results" / "models" / "alpha.md").read_text()


def test_leaderboard_opens_with_real_speech(tmp_path):
    fixture = make_fixture(tmp_path, full=False)
    write_emodb(fixture[0])
    text, alpha = build(fixture)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Real speech", "## Synthetic replicas"]
    real = section(text, "Real speech")
    assert "### emodb 2.0.0 · test (real speech)" in real and "`0bc715a7`" in real
    rows = [line for line in real.splitlines() if line.startswith("| [")]
    # ranked by mean AUC: beta (0.833) above alpha (0.770)
    assert [r.split("]")[0][3:] for r in rows] == ["beta", "alpha"]
    assert "0.900 [0.850, 0.950]" in rows[1] and "0.770" in rows[1]
    assert "-0.15 (dominance)" in rows[1]  # women − men: +0.02, -0.15, +0.10
    assert "0.51 (valence, speaker 14)" in rows[1]  # alpha's worst speakers: 0.80, 0.70, 0.51

    # the model page shows it before the synthetic results
    assert alpha.index("## Real speech") < alpha.index("## Correctness")


def test_leaderboard_says_when_there_is_no_real_speech(tmp_path):
    fixture = make_fixture(tmp_path, full=False)
    text, alpha = build(fixture)
    real = section(text, "Real speech")
    assert "No real-speech results yet" in real and "|" not in real
    assert "## Real speech" not in alpha
