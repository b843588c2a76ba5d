"""Run a registered model over an evaluation split through audinterface.

The model becomes an :class:`audinterface.Feature` (resample to the
model's rate, mono mixdown over *all* channels) applied to the split's
filewise index. Predictions are cached on disk under a key made of the
model artefact hash, the dataset name/version/split, the fingerprint of
the split's content and the condition —
audinterface's own cache key ignores the model, so it is not used.
The cache is filled chunk by chunk, so an interrupted run resumes where
it stopped. Files that cannot be scored (unreadable, empty, silent, too
short, NaN output) are recorded as skips with a reason, never scored.
A skip also records the state of its file (:func:`benchmark.hashing.file_state`):
a file that comes back, or whose bytes change, is predicted again by the
next run instead of staying skipped.
"""

from __future__ import annotations

import math
import os
import threading
import typing

import audinterface
import numpy as np
import pandas as pd

from benchmark import DIMENSIONS, interrupts, sources
from benchmark.prediction_cache import PredictionCache, condition_key, empty_frames

MIN_DURATION = 0.25
"""Shortest signal (seconds) a model is asked to score."""

MAX_SIGNAL_SECONDS = 60.0
r"""Longest signal (seconds) a model sees at once; a longer file is predicted segment-wise.

Real corpora hold recordings of minutes. A transformer's attention grows
with the square of the length (a 3-minute file is 9000 wav2vec2 frames),
so a whole long file can exhaust memory. A file longer than this is cut
into consecutive windows of this length (a last window shorter than
:data:`MIN_DURATION` is joined to the one before), each window is
predicted, and the file's prediction is the mean over the windows
weighted by their lengths. Every evaluation corpus of the project has
shorter files, whose predictions are unchanged. Which files were
segmented is recorded in ``results/segmented.csv`` (:func:`segmented_files`).
"""


PLAUSIBLE = (-1.0, 2.0)
r"""Predictions outside this band lie far off the 0..1 scale: they are counted and warned about, and still scored.

One scale width beyond either end. Regression heads overshoot the ends a
little (the committed models reach -0.3 and 1.5 on the demo data); a
model whose outputs are on another scale (logits, 1..7, a wrong
transform) lands far outside.
"""


def far_outside(pred: pd.DataFrame) -> pd.DataFrame:
    r"""Which predictions lie outside :data:`PLAUSIBLE` (NaN, "not predicted", is not).

    Examples:
        >>> pred = pd.DataFrame({"arousal": [0.5, 2.3, -3.0], "valence": [1e9, float("nan"), 1.9]})
        >>> far_outside(pred).to_numpy().tolist()
        [[False, True], [True, False], [True, False]]

    """
    low, high = PLAUSIBLE
    return (pred < low) | (pred > high)


def windows(n_samples: int, window: int, min_samples: int) -> list[tuple[int, int]]:
    r"""``(start, end)`` sample ranges of the windows of a signal of ``n_samples``.

    Examples:
        >>> windows(10, 4, 3)
        [(0, 4), (4, 10)]
        >>> windows(10, 4, 1)
        [(0, 4), (4, 8), (8, 10)]
        >>> windows(3, 4, 1)
        [(0, 3)]

    """
    bounds = [(start, min(start + window, n_samples)) for start in range(0, n_samples, window)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_samples:
        (first, _), (_, last) = bounds[-2], bounds[-1]
        bounds[-2:] = [(first, last)]
    return bounds


def segmented_files(files: typing.Iterable[str], sampling_rate: int = 16000) -> pd.DataFrame:
    r"""Files longer than :data:`MAX_SIGNAL_SECONDS`: their duration and the windows they were predicted in.

    Durations come from the file headers (no audio is decoded); unreadable files are left out (they are skips).
    """
    import audiofile

    rows = []
    window = int(MAX_SIGNAL_SECONDS * sampling_rate)
    for file in files:
        try:
            duration = float(audiofile.duration(str(file)))
        except Exception:  # unreadable: recorded as a skip by the runner
            continue
        if duration > MAX_SIGNAL_SECONDS:
            n = len(windows(int(round(duration * sampling_rate)), window, int(math.ceil(MIN_DURATION * sampling_rate))))
            rows.append(
                {
                    "file": str(file),
                    "duration_s": duration,
                    "window_s": MAX_SIGNAL_SECONDS,
                    "segments": n,
                    "pooling": "mean over windows, weighted by length",
                }
            )
    return pd.DataFrame(rows, columns=["file", "duration_s", "window_s", "segments", "pooling"])


def wav_truncation(path: str) -> str:
    r"""Why a WAV file is truncated (``''`` if it is complete or not a RIFF WAV).

    libsndfile reads a WAV whose data chunk is shorter than its header
    declares without complaint, so the missing end would silently not be
    scored. Only the chunk headers are read (a few bytes).

    Examples:
        >>> wav_truncation("/no/such.wav")
        ''

    """
    try:
        with open(path, "rb") as fp:
            head = fp.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return ""
            size = os.fstat(fp.fileno()).st_size
            while True:
                chunk = fp.read(8)
                if len(chunk) < 8:
                    return ""
                length = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"data":
                    held = size - fp.tell()
                    if length > held and length not in (0, 0xFFFFFFFF):  # 0 / -1: size left open by a streaming writer
                        return f"truncated WAV: header declares {length} bytes of audio, the file holds {held}"
                    return ""
                fp.seek(length + (length & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    except OSError:
        return ""  # unreadable: the reader reports it


class _Scorer:
    r"""The process function handed to audinterface: validates input and output."""

    def __init__(self, model, dims: tuple[str, ...], min_duration: float):
        self.model = model
        self.dims = np.array([d in dims for d in DIMENSIONS])
        self.min_samples = int(math.ceil(min_duration * model.sampling_rate))
        self.skips: dict[str, str] = {}
        self._lock = threading.Lock()

    def _skip(self, file: str, reason: str) -> np.ndarray:
        with self._lock:
            self.skips[file] = reason
        return np.full(len(DIMENSIONS), np.nan)

    def invalid(self, signal: np.ndarray, sampling_rate: int, file: str | None = None) -> str | None:
        r"""Why a (flat, float32) signal, read from ``file``, cannot be scored, or ``None``."""
        if file is not None and file.lower().endswith(".wav"):
            truncated = wav_truncation(file)  # the reader returns what it could read: a truncated file is a skip
            if truncated:
                return truncated
        if signal.size == 0:
            return "empty audio (0 samples)"
        if signal.size < self.min_samples:
            return f"too short ({signal.size / sampling_rate:.3f} s < {self.min_samples / sampling_rate:.2f} s)"
        if not np.isfinite(signal).all():
            return "audio contains NaN/Inf samples"
        if float(np.max(np.abs(signal))) < 1e-6:
            return "silent audio (peak < 1e-6)"
        return None

    def predict(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        r"""The model's output for a valid signal; a long one segment-wise (:data:`MAX_SIGNAL_SECONDS`)."""
        window = int(MAX_SIGNAL_SECONDS * sampling_rate)
        if signal.size <= window:
            return self.model(signal, sampling_rate)
        bounds = windows(signal.size, window, self.min_samples)
        outs = np.stack([np.asarray(self.model(signal[a:b], sampling_rate), dtype=np.float64) for a, b in bounds])
        return np.average(outs, axis=0, weights=[b - a for a, b in bounds])

    def output(self, out: np.ndarray, file: str) -> np.ndarray:
        if not np.isfinite(out[self.dims]).all():
            return self._skip(file, f"model returned NaN/Inf: {np.round(out, 4).tolist()}")
        return out

    def __call__(self, signal: np.ndarray, sampling_rate: int, file: str) -> np.ndarray:
        interrupts.check()  # a Ctrl-C that a library's finaliser swallowed still ends the run here
        signal = np.asarray(signal, dtype=np.float32).reshape(-1)
        reason = self.invalid(signal, sampling_rate, file)
        if reason:
            return self._skip(file, reason)
        return self.output(self.predict(signal, sampling_rate), file)


def predict(
    model,
    evalset,
    files: pd.Index | None = None,
    *,
    condition: dict | None = None,
    dims: typing.Sequence[str] | None = None,
    num_workers: int = 1,
    chunk_size: int = 64,
    min_duration: float = MIN_DURATION,
    progress: bool = True,
    recompute: bool = False,
    on_progress: typing.Callable[[int], None] | None = None,
    batch_size: int = 1,
    source: sources.SignalSource | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Predict A/D/V for ``files`` (default: the split's files), cached.

    Args:
        model: a :class:`benchmark.models.base.Predictor`
        evalset: the split the files belong to (part of the cache key)
        files: audio files to process (e.g. perturbed copies)
        condition: perturbation condition (part of the cache key)
        dims: dimensions that must be finite in the output
            (default: all that the model predicts, i.e. are not NaN by design)
        num_workers: threads for reading/resampling/inference
        chunk_size: files between cache writes
        min_duration: shorter signals are skipped
        progress: show a progress bar
        recompute: ignore cached predictions
        on_progress: called with the number of files after each chunk
        batch_size: files per ``predict_batch`` call, length-bucketed
            (models without their own ``predict_batch`` run file by file)
        source: gives each file's signal in memory (a perturbation
            condition's audio) instead of reading the file

    Returns:
        predictions (index: files that were scored, columns: A/D/V) and
        skips (index: file, column ``reason``)

    """
    files = evalset.files if files is None else files
    files = pd.Index(files, name="file").astype("string")
    batch_size = batch_size if batches(model) else 1
    cache = PredictionCache(model, evalset, condition, batch_size)
    pred, skips = empty_frames() if recompute else cache.load()
    retried = list(cache.stale)  # skipped before, but the file changed since: predicted again now
    done = pred.index.union(skips.index)
    todo = files[~files.isin(done)]
    bar = _progress(
        len(todo), f"{model.name} · {evalset.audb_name}/{evalset.split} · {condition_key(condition)}", progress
    )
    for chunk, chunk_pred, new_skips in iter_chunks(
        model,
        todo,
        dims=dims,
        num_workers=num_workers,
        chunk_size=chunk_size,
        min_duration=min_duration,
        batch_size=batch_size,
        source=source,
    ):
        pred = pd.concat([pred, chunk_pred]) if len(pred) else chunk_pred
        skips = pd.concat([skips, new_skips]) if len(skips) else new_skips
        cache.save(pred, skips)
        bar.update(len(chunk))
        if on_progress is not None:
            on_progress(len(chunk))
    bar.close()
    if len(todo):
        # Score exactly what the cache holds, so a first run and a cached re-run agree to the byte.
        pred, skips = cache.load()
    pred = pred.reindex(files[files.isin(pred.index)])
    skips = skips.reindex(files[files.isin(skips.index)])
    pred.attrs["computed"] = len(todo)  # files run through the model now (the rest came from the cache)
    pred.attrs["retried"] = retried
    return pred, skips


def iter_chunks(
    model,
    files: pd.Index,
    *,
    dims: typing.Sequence[str] | None = None,
    num_workers: int = 1,
    chunk_size: int = 64,
    min_duration: float = MIN_DURATION,
    batch_size: int = 1,
    source: sources.SignalSource | None = None,
) -> typing.Iterator[tuple[pd.Index, pd.DataFrame, pd.DataFrame]]:
    r"""Predict ``files`` chunk by chunk, without any cache.

    The one compute path of :func:`predict` and of the executors' workers.
    With ``batch_size > 1`` a model that implements ``predict_batch``
    gets each chunk's signals sorted by length, ``batch_size`` at a time
    (:func:`_batched_chunk`); any other model is run file by file.
    With a ``source``, signals come from it instead of the files and go
    through the same resampling and mixdown as a file read.

    Yields:
        the chunk's files, their predictions (files that were scored) and
        their skips (file → ``reason``)

    """
    files = pd.Index(files, name="file").astype("string")
    dims = tuple(dims) if dims is not None else _predicted_dims(model)
    scorer = _Scorer(model, dims, min_duration)
    feature = audinterface.Feature(
        list(DIMENSIONS),
        process_func=scorer,
        sampling_rate=model.sampling_rate,
        resample=True,
        channels=None,  # the default (0) would silently drop all but the first channel
        mixdown=True,
        num_workers=num_workers,
        multiprocessing=False,  # an onnxruntime session cannot be pickled; fork after torch deadlocks
        verbose=False,
    )
    batched = batch_size > 1 and batches(model)
    if batched:
        chunk_size = max(chunk_size, 4 * batch_size)  # buckets of similar length need a few batches to pick from
        feature = audinterface.Process(
            process_func=None,
            sampling_rate=model.sampling_rate,
            resample=True,
            channels=None,
            mixdown=True,
            num_workers=num_workers,
            multiprocessing=False,
            verbose=False,
        )
    for start in range(0, len(files), chunk_size):
        interrupts.check()
        chunk = files[start : start + chunk_size]
        if batched:
            chunk_pred = _batched_chunk(feature, scorer, chunk, batch_size, source)
        elif source is not None:
            rows = sources.take(
                source, chunk, scorer.skips, lambda x, sr, f: _signal_row(feature, x, sr, f), num_workers
            )
            chunk_pred = _rows_frame(rows)
        else:
            chunk_pred = _process_chunk(feature, scorer, chunk)
        new_skips = pd.DataFrame(
            {"reason": pd.Series(scorer.skips, dtype="string")},
            index=pd.Index(list(scorer.skips), name="file", dtype="string"),
        )
        scorer.skips.clear()
        yield chunk, chunk_pred.drop(index=chunk_pred.index.intersection(new_skips.index)), new_skips


def batches(model) -> bool:
    r"""Whether ``model`` implements its own ``predict_batch`` (the default one runs file by file)."""
    from benchmark.models.base import Predictor

    return getattr(type(model), "predict_batch", Predictor.predict_batch) is not Predictor.predict_batch


def _batched_chunk(
    reader: audinterface.Process,
    scorer: _Scorer,
    chunk: pd.Index,
    batch_size: int,
    source: sources.SignalSource | None = None,
) -> pd.DataFrame:
    r"""Read a chunk (or take it from ``source``), then predict its valid signals in length-sorted batches."""
    if source is not None:
        signals = sources.take(source, chunk, scorer.skips, lambda x, sr, f: reader(x, sr))
    else:
        signals = _read_chunk(reader, scorer, chunk)
    return _predict_signals(scorer, signals, batch_size)


def _read_chunk(reader: audinterface.Process, scorer: _Scorer, chunk: pd.Index) -> dict[str, np.ndarray]:
    r"""The chunk's signals as the reader gives them; an unreadable file is a skip."""
    signals: dict[str, np.ndarray] = {}
    try:
        read = reader.process_index(chunk, preserve_index=True)
        signals = dict(zip(chunk, read.to_numpy(), strict=True))
    except Exception:
        for file in chunk:
            try:
                signals[file] = reader.process_index(pd.Index([file], name="file"), preserve_index=True).iloc[0]
            except Exception as ex:  # unreadable/corrupt audio: record, keep going
                scorer.skips[file] = sources.unreadable(ex)
    return signals


def _predict_signals(scorer: _Scorer, signals: dict[str, np.ndarray], batch_size: int) -> pd.DataFrame:
    r"""Predict valid signals in length-sorted batches of ``batch_size``; invalid ones are skips."""
    valid, rows_long = {}, {}
    for file, signal in signals.items():
        signal = np.asarray(signal, dtype=np.float32).reshape(-1)
        reason = scorer.invalid(signal, scorer.model.sampling_rate, file)
        if reason:
            scorer.skips[file] = reason
        elif signal.size > MAX_SIGNAL_SECONDS * scorer.model.sampling_rate:  # long: window by window, not batched
            rows_long[file] = scorer.output(scorer.predict(signal, scorer.model.sampling_rate), file)
        else:
            valid[file] = signal
    order = sorted(valid, key=lambda f: len(valid[f]))  # similar lengths share a batch: little padding
    rows = dict(rows_long)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        out = np.asarray(scorer.model.predict_batch([valid[f] for f in batch]), dtype=np.float64)
        for file, row in zip(batch, out, strict=True):
            rows[file] = scorer.output(row, file)
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(DIMENSIONS)) if rows else empty_frames()[0]
    df.index = pd.Index(df.index, name="file", dtype="string")
    return df.astype("float64")


def _process_chunk(feature: audinterface.Feature, scorer: _Scorer, chunk: pd.Index) -> pd.DataFrame:
    r"""Process a chunk; on a read error fall back to file by file to isolate it."""
    try:
        return _filewise(feature.process_index(chunk, preserve_index=True), chunk)
    except Exception:
        rows = {}
        for file in chunk:
            try:
                one = pd.Index([file], name="file")
                rows[file] = _filewise(feature.process_index(one, preserve_index=True), one).iloc[0]
            except Exception as ex:  # unreadable/corrupt audio: record, keep going
                scorer.skips[file] = (
                    f"unreadable audio: {type(ex).__name__}: {str(ex).splitlines()[0][:160] if str(ex) else ''}"
                )
        return _rows_frame(rows)


def _rows_frame(rows: dict) -> pd.DataFrame:
    r"""File → A/D/V row, as the chunk's predictions."""
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(DIMENSIONS)) if rows else empty_frames()[0]
    df.index = pd.Index(df.index, name="file", dtype="string")
    return df.astype("float64")


def _signal_row(feature: audinterface.Feature, signal: np.ndarray, sampling_rate: int, file: str) -> np.ndarray:
    r"""The feature's row of one signal from memory, processed as if read from ``file``.

    ``file`` reaches the process function as an argument, not as the result's index:
    a segmented index (a categorical file level) per signal cost more than a small model.
    """
    frame = feature.process_signal(signal, sampling_rate, process_func_args={"file": file})
    return frame.to_numpy(dtype="float64")[0]


def _filewise(df: pd.DataFrame, files: pd.Index) -> pd.DataFrame:
    out = df.reset_index(level=["start", "end"], drop=True) if isinstance(df.index, pd.MultiIndex) else df
    out.index = pd.Index(out.index, name="file", dtype="string")
    return out.reindex(pd.Index(files, dtype="string", name="file")).astype("float64")


def _predicted_dims(model) -> tuple[str, ...]:
    entry_dims = getattr(model, "dimensions", None)
    return tuple(entry_dims) if entry_dims else DIMENSIONS


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not enabled or total == 0, leave=False, dynamic_ncols=True)
