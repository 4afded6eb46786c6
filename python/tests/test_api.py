"""The Python API against the CLI on the same files, the streaming engine against the whole
file, the conversions, and errors."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import strata
from conftest import EXAMPLE, read_wav, run_cli, write_wav


def cli_analysis(path: Path, out: Path, *extra: str) -> dict:
    done = run_cli("analyze", "--quiet", "--out", str(out), *extra, str(path))
    assert done.returncode == 0, done.stderr
    return json.loads((out / "strata.json").read_text())


@pytest.mark.parametrize("name", ["example", "piece"])
def test_analyze_a_file_is_exactly_what_the_cli_writes(name, piece, tmp_path):
    path = EXAMPLE if name == "example" else piece
    assert strata.analyze(path) == cli_analysis(path, tmp_path / "cli")
    assert strata.analyze(str(path), tempo_bpm=120) == cli_analysis(path, tmp_path / "cli120", "--tempo", "120")


def test_an_array_gives_what_its_file_gives(piece):
    samples, rate = read_wav(piece)
    from_file = strata.analyze(piece)
    from_array = strata.analyze(samples, sample_rate=rate, source=piece.name)
    assert from_array == from_file
    assert strata.analyze(samples.mean(axis=1), sample_rate=rate, source=piece.name)["patterns"] == from_file["patterns"]
    assert from_file["patterns"], "the piece has pattern layers"


def test_streaming_in_any_blocks_equals_the_whole(piece):
    samples, rate = read_wav(piece)
    whole = strata.analyze(samples, sample_rate=rate, source="stream")
    live = strata.Analyzer(rate)
    rng = np.random.default_rng(7)
    frames, pos = [], 0
    while pos < len(samples):
        n = int(rng.integers(1, 9000))
        frames += live.push(samples[pos : pos + n])
        pos += n
    frames += live.finish()
    assert live.analysis() == whole
    assert live.duration_s == pytest.approx(len(samples) / rate)
    for level, layer in enumerate(whole["layers"]):
        mine = [f for f in frames if f["level"] == level]
        assert [f["time_s"] for f in mine] == layer["frames"]["time_s"]
        assert [f["token"] for f in mine] == layer["frames"]["token"]
    with pytest.raises(strata.StrataError, match="finished"):
        live.push(samples[:100])


def test_export_writes_what_the_cli_writes_and_replaces_only_when_asked(piece, tmp_path):
    result = strata.export(piece, tmp_path / "py")
    done = run_cli("export", "--quiet", "--out", str(tmp_path / "cli"), str(piece))
    assert done.returncode == 0, done.stderr
    assert sorted(result.files) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert result.max_sum_error <= 1e-6
    for name in result.files:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert any(name.startswith("stem_") for name in result.files) and len(result.stem_periods_s) >= 1
    with pytest.raises(strata.StrataError, match="already holds an export"):
        strata.export(piece, tmp_path / "py")
    assert strata.export(piece, tmp_path / "py", replace=True).files == result.files


def test_jams_and_tables(piece, tmp_path):
    jams = pytest.importorskip("jams")
    analysis = strata.analyze(piece)
    jam = strata.to_jams(analysis)
    assert isinstance(jam, jams.JAMS)
    strata.export(piece, tmp_path / "x")
    # The very document the export wrote, read by the jams package itself.
    assert jam.__json__ == jams.load(str(tmp_path / "x" / "strata.jams")).__json__
    assert [a.namespace for a in jam.annotations].count("segment_open") == len(analysis["layers"]) + len(analysis["patterns"])
    table = strata.to_table(analysis)
    patterns = analysis["patterns"]
    assert table.num_rows == len(patterns) + sum(len(p["changes"]) for p in patterns)
    assert table.column_names == list(strata.TABLE_COLUMNS)
    assert set(table.column("source").to_pylist()) == {piece.name}
    frame = strata.to_dataframe(analysis)
    assert sorted(frame[frame.kind == "pattern"].period_s) == sorted(p["period_s"] for p in patterns)


def test_errors_are_the_clis_one_line_reasons(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt junk that is not audio")
    for path in [tmp_path / "missing.wav", corrupt]:
        done = run_cli("analyze", "--quiet", "--out", str(tmp_path / "o"), str(path))
        assert done.returncode != 0
        line = done.stderr.strip().splitlines()[-1].removeprefix("strata: ")
        with pytest.raises(strata.StrataError) as e:
            strata.analyze(path)
        assert str(e.value) == line
    with pytest.raises(strata.StrataError, match="sample_rate"):
        strata.analyze(np.zeros(1000, dtype=np.float32))
    with pytest.raises(strata.StrataError, match="sample_rate"):
        strata.analyze(np.zeros(1000, dtype=np.float32), sample_rate=0)
    with pytest.raises(strata.StrataError, match="no audio samples"):
        strata.analyze(np.zeros(0, dtype=np.float32), sample_rate=44100)
    with pytest.raises(strata.StrataError, match="tempo"):
        strata.analyze(EXAMPLE, tempo_bpm=-5)
    with pytest.raises(strata.StrataError, match="3-D"):
        strata.analyze(np.zeros((2, 2, 2)), sample_rate=44100)


def test_the_gil_is_released_while_strata_works(tmp_path):
    # Python code runs on another thread while the engine is inside one call: with the GIL held
    # for the whole call, no other Python code could run between its start and its end.
    path = write_wav(tmp_path / "long.wav", np.zeros((44100 * 20, 1), dtype=np.float32) + 0.01, 44100)
    span = {}

    def work():
        span["start"] = time.perf_counter()
        strata.analyze(path)
        span["end"] = time.perf_counter()

    ticks = []
    t = threading.Thread(target=work)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    during = [x for x in ticks if span["start"] < x < span["end"]]
    assert len(during) > 100, f"{len(during)} ticks of other Python code during a {span['end'] - span['start']:.2f} s call"
