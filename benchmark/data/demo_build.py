r"""The generator of the embedded demo corpora: synthetic replicas of MSP-Podcast, IEMOCAP and MOSI.

Each replica has the schema of the real corpus in ``datasets.yaml``
(table names, label columns and scale, speaker and gender tables) and
synthetic speech from :mod:`benchmark.data.synth` whose acoustics
follow a latent arousal/dominance/valence. Gold labels are the mean of
simulated raters who disagree, quantised like real ratings.

This module is the generator: :mod:`benchmark.data.demo` publishes its
builds into a local audb repository and finds them. Building is
deterministic: the same :data:`DEMO_SEED` gives byte-identical audio
and tables. Any change to the generator must bump :data:`DEMO_VERSION`
(and the ``demo`` versions in ``datasets.yaml``), since audb caches by
name and version.

+--------------------+----------------------------------------------+------------------+
| database           | tables (speakers x utterances)               | labels           |
+====================+==============================================+==================+
| demo-msppodcast    | test-1 (60 x 10), test-2 (20 x 10),          | A/D/V on 1..7    |
|                    | train (40 x 15)                              |                  |
+--------------------+----------------------------------------------+------------------+
| demo-iemocap       | test (5 sessions x 2 speakers x 30)          | A/D/V on 1..5    |
+--------------------+----------------------------------------------+------------------+
| demo-mosi          | test (20 x 10)                               | sentiment -3..3  |
+--------------------+----------------------------------------------+------------------+
| demo-pool          | files only (50 x 20), unlabeled              | none             |
+--------------------+----------------------------------------------+------------------+
| demo-refit         | files only (50 x 20), unlabeled              | none             |
+--------------------+----------------------------------------------+------------------+

Every database also has a ``files`` table (column ``speaker``) and a
misc table ``speaker`` (column ``gender``: ``'female'``/``'male'``).
Speakers are half female, half male, and disjoint across all tables
and databases.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import os
import sys
import typing
import wave
import zlib
from pathlib import Path

import audformat
import numpy as np
import pandas as pd

from benchmark.data import synth
from benchmark.hashing import sha256_text

DEMO_VERSION = "1.0.0"
r"""Version of all demo databases; bump it whenever the generator changes."""

DEMO_SEED = 20240917
r"""Seed of the published demo databases."""

DATABASES = ("demo-msppodcast", "demo-iemocap", "demo-mosi", "demo-pool", "demo-refit")
r"""Names of the demo databases, all published at :data:`DEMO_VERSION`."""

# Correlation of the latent arousal, dominance, valence. Dominance
# follows arousal (gold r ~ 0.6 after rater noise, as in MSP-Podcast);
# valence is nearly independent of both.
_CORRELATION = np.array([[1.0, 0.7, 0.2], [0.7, 1.0, 0.15], [0.2, 0.15, 1.0]])
_SPEAKER_SHARE = 0.3  # part of the latent variance that is the speaker's mean mood
_RATER_POOL = 20  # raters per corpus; each utterance is rated by a random subset
_RATER_BIAS = 0.25  # SD of a rater's offset, in latent units
_RATER_NOISE = 0.55  # SD of a single rating's error, in latent units


@dataclasses.dataclass(frozen=True)
class _Split:
    table: str | None  # gold-standard table; None: unlabeled
    prefix: str  # speaker ids are prefix + number, unique across all corpora
    speakers: int  # per sex
    utterances: int  # per speaker


@dataclasses.dataclass(frozen=True)
class _Corpus:
    description: str
    splits: tuple[_Split, ...]
    columns: tuple[tuple[str, str], ...] = ()  # (latent dimension, label column)
    scale: tuple[int, int] = (1, 7)  # range of a single (integer) rating
    raters: int = 5
    sessions: bool = False  # IEMOCAP: speaker i of each sex records session i


_ADV = (("arousal", "arousal"), ("dominance", "dominance"), ("valence", "valence"))
_CORPORA = {
    "demo-msppodcast": _Corpus(
        "Synthetic replica of MSP-Podcast (Lotfian & Busso 2019): arousal, dominance, "
        "valence on 1..7, mean of 5 raters.",
        (
            _Split("emotion.dimensions.test-1.gold_standard", "msp-t1-", 30, 10),
            _Split("emotion.dimensions.test-2.gold_standard", "msp-t2-", 10, 10),
            _Split("emotion.dimensions.train.gold_standard", "msp-tr-", 20, 15),
        ),
        _ADV,
        (1, 7),
        5,
    ),
    "demo-iemocap": _Corpus(
        "Synthetic replica of IEMOCAP (Busso et al. 2008): 5 sessions with one female and "
        "one male speaker; arousal, dominance, valence on 1..5, mean of 3 raters.",
        (_Split("emotion.dimensions.test.gold_standard", "Ses", 5, 30),),
        _ADV,
        (1, 5),
        3,
        sessions=True,
    ),
    "demo-mosi": _Corpus(
        "Synthetic replica of CMU-MOSI (Zadeh et al. 2016): sentiment on -3..3 from the "
        "latent valence, mean of 5 raters.",
        (_Split("sentiment.test.gold_standard", "mosi-", 10, 10),),
        (("valence", "sentiment"),),
        (-3, 3),
        5,
    ),
    "demo-pool": _Corpus(
        "Unlabeled synthetic speech for distillation and as a babble source; "
        "speakers disjoint from every labeled demo table.",
        (_Split(None, "pool-", 25, 20),),
    ),
    "demo-refit": _Corpus(
        "Unlabeled synthetic speech that distillation uses only whole and clean: the teacher annotates "
        "each file once, and the distilled student's output layer is refitted on them next to its "
        "training files; speakers disjoint from every other demo table.",
        (_Split(None, "refit-", 25, 20),),
    ),
}


def _key(text: str) -> int:
    # a stable integer for seeding (Python's hash() is salted per process)
    return zlib.crc32(text.encode())


def _speakers(corpus: _Corpus, split: _Split, scale: float) -> list[tuple[str, str, int]]:
    r"""(speaker id, sex, session) of a split, at least 2 speakers per sex."""
    n = max(2, round(split.speakers * np.sqrt(scale)))
    if corpus.sessions:
        return [
            (f"{split.prefix}{i + 1:02d}{sex[0].upper()}", sex, i + 1) for i in range(n) for sex in ("female", "male")
        ]
    return [(f"{split.prefix}{i + 1:03d}", "female" if i % 2 == 0 else "male", 0) for i in range(2 * n)]


def _latent(rng: np.random.Generator) -> np.ndarray:
    r"""Correlated standard-normal arousal, dominance, valence."""
    return np.linalg.cholesky(_CORRELATION) @ rng.standard_normal(3)


def gold_label(
    latent: float, scale: tuple[int, int], raters: int, biases: np.ndarray, rng: np.random.Generator
) -> float:
    r"""Gold label: mean of integer ratings by ``raters`` randomly picked raters.

    A rating is the latent value (z-score) plus the rater's bias plus
    noise, mapped linearly to the scale (±2.5 SD span it), rounded and
    clipped like a Likert answer.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> gold_label(0.0, (1, 7), 5, np.zeros(20), rng)  # five ratings around 4
        4.2

    """
    lo, hi = scale
    who = rng.choice(len(biases), size=raters, replace=False)
    z = latent + biases[who] + _RATER_NOISE * rng.standard_normal(raters)
    ratings = np.clip(np.round((lo + hi) / 2 + (hi - lo) / 5 * z), lo, hi)
    return float(np.mean(ratings))


def build(
    name: str,
    root: str | os.PathLike,
    *,
    seed: int = DEMO_SEED,
    scale: float = 1.0,
    num_workers: int = 2,
) -> audformat.Database:
    r"""Build one demo database (audio and tables) into ``root``.

    Args:
        name: one of :data:`DATABASES`
        root: folder to write to (created if needed)
        seed: random seed; the same seed gives byte-identical files
        scale: shrinks the number of speakers and of utterances per
            speaker each by ``sqrt(scale)`` (total about ``scale``),
            keeping at least 2 speakers per sex and 3 utterances each
        num_workers: threads synthesizing speakers in parallel
            (the result does not depend on it)

    Returns:
        the saved database

    """
    if name not in _CORPORA:
        raise ValueError(f"Unknown demo database '{name}'; choose from {', '.join(DATABASES)}.")
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    corpus = _CORPORA[name]
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rater_rng = np.random.default_rng([seed, _key(name)])
    biases = {dim: _RATER_BIAS * rater_rng.standard_normal(_RATER_POOL) for dim, _ in corpus.columns}

    jobs = []  # (split, speaker id, sex, session, utterances)
    for split in corpus.splits:
        n_utt = max(3, round(split.utterances * np.sqrt(scale)))
        jobs += [(split, *speaker, n_utt) for speaker in _speakers(corpus, split, scale)]

    def render(job):
        _, speaker_id, sex, _, n_utt = job
        return _render_speaker(root, corpus, speaker_id, sex, n_utt, seed, biases)

    # threads, not processes: numpy and scipy release the GIL in the heavy
    # parts, and forking after torch was imported can deadlock
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        rendered = list(pool.map(render, jobs))

    speakers, files, labels = [], [], {}
    for (split, speaker_id, sex, session, _), rows in zip(jobs, rendered):
        speakers.append((speaker_id, sex))
        files += [(file, speaker_id, session) for file, _ in rows]
        if split.table:
            labels.setdefault(split.table, []).extend(rows)
    db = _database(name, corpus, speakers, files, labels, seed, scale)
    db.save(root)
    return db


def _render_speaker(
    root: Path, corpus: _Corpus, speaker_id: str, sex: str, n_utt: int, seed: int, biases: dict
) -> list[tuple[str, dict]]:
    r"""Write the utterances of one speaker; return (file, gold labels) for each."""
    speaker_rng = np.random.default_rng([seed, _key(speaker_id)])
    speaker = synth.make_speaker(speaker_id, sex, speaker_rng)
    mood = np.sqrt(_SPEAKER_SHARE) * _latent(speaker_rng)
    rows = []
    for k in range(n_utt):
        # one generator per utterance: a scaled build is a subset of the full one
        rng = np.random.default_rng([seed, _key(speaker_id), k])
        z = dict(zip(("arousal", "dominance", "valence"), mood + np.sqrt(1 - _SPEAKER_SHARE) * _latent(rng)))
        signal = synth.synthesize(speaker, synth.Emotion(**z), rng)
        file = f"audio/{speaker_id}_{k:03d}.wav"
        _write_wav(root / file, signal)
        label_rng = np.random.default_rng([seed, _key(speaker_id), k, 1])
        gold = {
            column: gold_label(z[dim], corpus.scale, corpus.raters, biases[dim], label_rng)
            for dim, column in corpus.columns
        }
        rows.append((file, gold))
    return rows


def _write_wav(path: Path, signal: np.ndarray) -> None:
    r"""16-bit PCM WAV, mono (stdlib ``wave``: fast, and the bytes depend only on the samples)."""
    pcm = np.round(np.clip(signal, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fp:
        fp.setnchannels(1)
        fp.setsampwidth(2)
        fp.setframerate(synth.SAMPLING_RATE)
        fp.writeframes(pcm.tobytes())


def _database(name, corpus: _Corpus, speakers, files, labels, seed: int, scale: float) -> audformat.Database:
    r"""The audformat header and tables; misc table before the scheme that refers to it."""
    db = audformat.Database(
        name,
        source="synthetic (benchmark.data.synth)",
        usage=audformat.define.Usage.UNRESTRICTED,
        description=corpus.description,
        license=audformat.define.License.CC0_1_0,
        meta={
            "demo": {
                "generator": "benchmark.data.demo",
                "generator_digest": generator_digest(),
                "version": DEMO_VERSION,
                "seed": seed,
                "scale": scale,
            }
        },
    )
    db.media["wav"] = audformat.Media(
        "audio", format="wav", sampling_rate=synth.SAMPLING_RATE, channels=1, bit_depth=16
    )
    db.raters["gold"] = audformat.Rater(
        audformat.define.RaterType.OTHER, description=f"mean of {corpus.raters} simulated raters"
    )

    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    ids, sexes = zip(*speakers)
    db["speaker"] = audformat.MiscTable(pd.Index(list(ids), name="speaker", dtype="string"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(list(sexes))
    db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")

    paths, speaker_of, session_of = zip(*files)
    db["files"] = audformat.Table(audformat.filewise_index(list(paths)), media_id="wav")
    db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
    db["files"]["speaker"].set(list(speaker_of))
    if corpus.sessions:
        db.schemes["session"] = audformat.Scheme("int", minimum=1, maximum=max(session_of))
        db["files"]["session"] = audformat.Column(scheme_id="session")
        db["files"]["session"].set(list(session_of))

    lo, hi = corpus.scale
    for _, column in corpus.columns:
        db.schemes[column] = audformat.Scheme("float", minimum=lo, maximum=hi)
    for table, rows in labels.items():
        db[table] = audformat.Table(audformat.filewise_index([f for f, _ in rows]), media_id="wav")
        for _, column in corpus.columns:
            db[table][column] = audformat.Column(scheme_id=column, rater_id="gold")
            db[table][column].set([gold[column] for _, gold in rows])
    return db


def generator_digest() -> str:
    r"""SHA-256 of the code that generates the demo databases.

    Covers :mod:`benchmark.data.synth` and this module (not the code
    that computes the digest, nor :mod:`benchmark.data.demo`, which
    publishes and finds builds) as parsed code:
    comments, docstrings and formatting do not count, any change to
    what the code does does. It is stored in each published header, so
    a build left in the cache by other code is detected and rebuilt
    instead of being served under the same version.

    Examples:
        >>> len(generator_digest())
        64

    """
    return sha256_text("\n".join(_code_dump(module) for module in (sys.modules[__name__], synth)))


class _DropDocstrings(ast.NodeTransformer):
    # a string statement (docstring, attribute docstring) does nothing
    def visit_Expr(self, node: ast.Expr):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # removed (the tree is only dumped, never compiled)
        return node


# Top-level code that does not shape what a build contains. Leaving a new helper
# off this list costs a needless rebuild, never a stale one.
_NOT_GENERATOR = frozenset(
    {"generator_digest", "_DropDocstrings", "_NOT_GENERATOR", "_code_dump", "_top_level_name", "utterance_count"}
)


def _code_dump(module) -> str:
    tree = _DropDocstrings().visit(ast.parse(Path(module.__file__).read_text()))
    tree.body = [node for node in tree.body if _top_level_name(node) not in _NOT_GENERATOR]
    return ast.dump(tree)


def _top_level_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def utterance_count(names: typing.Sequence[str], scale: float) -> int:
    r"""Utterances that building ``names`` at ``scale`` synthesizes (to say how long a first build takes)."""
    return sum(
        len(_speakers(_CORPORA[n], s, scale)) * max(3, round(s.utterances * np.sqrt(scale)))
        for n in names
        for s in _CORPORA[n].splits
    )
