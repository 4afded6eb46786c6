"""Strata in Python: the layers music is built from, by the same engine as the plugin and the CLI.

    import strata
    result = strata.analyze("song.wav")            # the documented strata.json, as a dict
    result = strata.analyze(samples, sample_rate=44100)
    strata.export("song.wav", "song-stems")        # stems and annotations, as `strata export`
    live = strata.Analyzer(48000)
    frames = live.push(block)                       # layer frames as they complete
    jam = strata.to_jams(result)                    # a jams.JAMS
    table = strata.to_table(result)                 # a pyarrow.Table, one row per layer/change

The package carries its models and ONNX Runtime. Long calls release the GIL, so threads analyse
in parallel. Every failure is a :class:`StrataError` whose message is the CLI's one-line reason.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from . import _strata
from ._strata import StrataError

if TYPE_CHECKING:
    import jams as _jams
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "Analyzer",
    "ExportResult",
    "StrataError",
    "analyze",
    "export",
    "runtime_summary",
    "table_rows",
    "to_dataframe",
    "to_jams",
    "to_table",
]

PathLike = Union[str, "os.PathLike[str]"]


def _check_rate(sample_rate: Any) -> None:
    """A rate the engine takes: a whole number of Hz that fits its u32."""
    if not (isinstance(sample_rate, int) and 0 < sample_rate <= 2**31 - 1):
        raise StrataError(f"sample_rate {sample_rate!r} is not a positive whole number of Hz")


def _mono_float32_bytes(samples: Any) -> bytes:
    """Little-endian float32 bytes of `samples` averaged over channels (the CLI's mixdown).

    A 1-D array is mono; a 2-D array is (frames, channels), as soundfile and librosa's
    ``mono=False`` transposed give it.
    """
    import numpy as np

    a = np.asarray(samples)
    if a.ndim == 2:
        a = a.astype(np.float32).sum(axis=1, dtype=np.float32) * np.float32(1.0 / a.shape[1])
    elif a.ndim != 1:
        raise StrataError(f"samples must be 1-D (mono) or 2-D (frames, channels), not {a.ndim}-D")
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def analyze(
    path_or_array: PathLike | "np.ndarray",
    sample_rate: int | None = None,
    tempo_bpm: float | None = None,
    *,
    beats_per_bar: float = 4.0,
    source: str | None = None,
    models: PathLike | None = None,
) -> dict:
    """Analyses an audio file (WAV, FLAC, MP3, OGG) or an array of samples.

    Returns the document ``strata analyze`` writes as ``strata.json`` (version 2: per-scale
    ``layers`` and the discovered ``patterns``), parsed. For a file it is exactly the CLI's.

    :param path_or_array: a file path, or samples as a 1-D (mono) or 2-D (frames, channels) array.
    :param sample_rate: the array's rate in Hz (required for an array, not allowed for a file).
    :param tempo_bpm: the tempo, to express periods in beats and bars as well.
    :param beats_per_bar: beats per bar, with the tempo.
    :param source: the name recorded as the result's ``source`` (an array's default: "array").
    :param models: a model folder other than the package's own.
    :raises StrataError: the file cannot be read or holds no audio, the arguments are wrong.
    """
    model_dir = None if models is None else os.fspath(models)
    if isinstance(path_or_array, (str, os.PathLike)):
        if sample_rate is not None:
            raise StrataError("sample_rate is read from the file; give it only with an array of samples")
        if source is not None:
            raise StrataError("source is the file's name; give it only with an array of samples")
        text = _strata.analyze_file(os.fspath(path_or_array), tempo_bpm, beats_per_bar, model_dir)
    else:
        if sample_rate is None:
            raise StrataError("an array of samples needs its sample_rate")
        _check_rate(sample_rate)
        text = _strata.analyze_samples(
            _mono_float32_bytes(path_or_array), sample_rate, source or "array", tempo_bpm, beats_per_bar, model_dir
        )
    return json.loads(text)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote."""

    #: The export folder.
    folder: str
    #: The files in it.
    files: list[str]
    #: The stems' periods in seconds, shortest first (the residual is not listed).
    stem_periods_s: list[float]
    #: The largest difference between an input sample and the sum of its stems.
    max_sum_error: float


def export(
    path: PathLike,
    out_dir: PathLike,
    replace: bool = False,
    *,
    tempo_bpm: float | None = None,
    beats_per_bar: float = 4.0,
    models: PathLike | None = None,
) -> ExportResult:
    """Exports a file's layers as ``strata export`` does: stems summing back to the input, JAMS,
    Audacity labels, CSV, MIDI markers, WAV cues and ``strata.json``.

    :param replace: replace an earlier Strata export in ``out_dir`` (nothing else is ever
        replaced).
    :raises StrataError: the file cannot be read, the folder holds something else, the disk is full.
    """
    folder, files, periods, error = _strata.export(
        os.fspath(path), os.fspath(out_dir), replace, tempo_bpm, beats_per_bar, None if models is None else os.fspath(models)
    )
    return ExportResult(os.fspath(folder), list(files), list(periods), float(error))


class Analyzer:
    """The streaming engine, as the plugin runs it: push blocks of any size, get each layer frame
    as its window completes. The frames, and :meth:`analysis` at the end, are the same whatever
    the block sizes, and the same as :func:`analyze` on the whole signal.

    A frame is a dict: ``level`` (the lane, shortest timescale first), ``time_s`` (end of its
    window), ``token`` (pattern token, 0..255), ``surprise`` and ``change`` (``None``, or
    ``(time_s, strength)`` of a change confirmed at this step).
    """

    def __init__(self, sample_rate: int, *, models: PathLike | None = None) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self._engine = _strata.Analyzer(sample_rate, None if models is None else os.fspath(models))

    def push(self, block: "np.ndarray") -> list[dict]:
        """Feeds a block (1-D mono, or 2-D (frames, channels)); returns the frames it completed."""
        return self._engine.push_bytes(_mono_float32_bytes(block))

    def finish(self) -> list[dict]:
        """Ends the stream and returns the frames still owed. Push nothing after it."""
        return self._engine.finish()

    @property
    def duration_s(self) -> float:
        """Seconds of audio pushed so far."""
        return self._engine.duration_s

    def analysis(self, *, source: str = "stream", tempo_bpm: float | None = None, beats_per_bar: float = 4.0) -> dict:
        """The ``strata.json`` document of everything pushed so far."""
        return json.loads(self._engine.analysis_json(source, tempo_bpm, beats_per_bar))


def to_jams(analysis: dict) -> "_jams.JAMS":
    """The analysis as a ``jams.JAMS``: the very document ``strata export`` writes as
    ``strata.jams`` (one ``segment_open`` annotation per layer and per pattern layer's changes,
    and a ``multi_segment`` of all layers). Needs the ``jams`` package."""
    import jams

    return jams.load(io.StringIO(_strata.jams_json(json.dumps(analysis))), validate=True)


#: Columns of :func:`table_rows`, in order.
TABLE_COLUMNS = (
    "source", "kind", "layer", "period_s", "scale_s", "register", "confidence", "strength",
    "start_s", "end_s",
)


def table_rows(analysis: dict) -> list[dict]:
    """One row per pattern layer (``kind`` "pattern": its period, lane, register, confidence,
    strength, and the span it is active over) and one per change (``kind`` "change": the layer it
    belongs to, when it starts and ends, its strength), each with the analysis' ``source``."""
    rows = []
    source = analysis.get("source", "")
    for i, p in enumerate(analysis.get("patterns", [])):
        active = p.get("active", [])
        common = {
            "source": source,
            "layer": i,
            "period_s": p["period_s"],
            "scale_s": p["scale_s"],
            "register": p.get("register", ""),
        }
        rows.append(common | {
            "kind": "pattern",
            "confidence": p["confidence"],
            "strength": p["strength"],
            "start_s": active[0]["start_s"] if active else None,
            "end_s": active[-1]["end_s"] if active else None,
        })
        for c in p.get("changes", []):
            rows.append(common | {
                "kind": "change",
                "confidence": p["confidence"],
                "strength": c["strength"],
                "start_s": c["start_s"],
                "end_s": c["end_s"],
            })
    return [{k: r[k] for k in TABLE_COLUMNS} for r in rows]


def _schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([
        ("source", pa.string()), ("kind", pa.string()), ("layer", pa.int32()), ("period_s", pa.float64()),
        ("scale_s", pa.float64()), ("register", pa.string()), ("confidence", pa.float64()),
        ("strength", pa.float64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ])


def to_table(analysis: dict) -> "pa.Table":
    """:func:`table_rows` as a ``pyarrow.Table`` (needs ``pyarrow``)."""
    import pyarrow as pa

    return pa.Table.from_pylist(table_rows(analysis), schema=_schema())


def to_dataframe(analysis: dict) -> "pd.DataFrame":
    """:func:`table_rows` as a ``pandas.DataFrame`` (needs ``pandas`` and ``pyarrow``)."""
    return to_table(analysis).to_pandas()


def runtime_summary() -> str:
    """ONNX Runtime's version and the backend chosen, as the CLI prints it."""
    return _strata.runtime_summary()
