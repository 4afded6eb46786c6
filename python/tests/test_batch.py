"""`strata-batch` on Ray: a local run equals the serial one file for file and row for row, a
killed worker costs nothing, a corrupt file fails alone, a second run resumes, and a two-node
cluster joined by address shares the work."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import pulse_track, write_wav

pq = pytest.importorskip("pyarrow.parquet")
ray = pytest.importorskip("ray")

from strata import batch  # noqa: E402  (after the skips: batch needs pyarrow)

RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000]


def library(folder: Path, count: int, seed: int, seconds=(0.3, 4.0), corrupt: int = 0) -> Path:
    """`count` files of random length, rate and channel count in nested folders, and `corrupt`
    files that only look like audio."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        sub = folder / f"album{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        rate = int(rng.choice(RATES))
        audio = pulse_track(float(rng.uniform(*seconds)), rate, channels=int(rng.integers(1, 3)), seed=i)
        write_wav(sub / f"track{i:03d}.wav", audio, rate)
    for i in range(corrupt):
        (folder / f"album{i}" / f"broken{i}.wav").write_bytes(b"RIFF\x00\x01\x00\x00WAVEdata" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    return folder


def results(out: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(out / batch.RESULTS_DIR)): json.loads(p.read_text()) for p in (out / batch.RESULTS_DIR).rglob("strata.json")}


def rows(out: Path) -> list[tuple]:
    table = pq.read_table(out / batch.DATASET_DIR)
    return sorted(tuple(r.values()) for r in table.to_pylist())


def run_batch(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strata.batch", *args], capture_output=True, text=True, **kw)


def test_a_local_ray_run_equals_the_serial_run_and_resumes(tmp_path):
    lib = library(tmp_path / "lib", 200, seed=1, corrupt=2)
    ray_run = run_batch(str(lib), "--out", str(tmp_path / "ray"), "--num-cpus", "2")
    serial = run_batch(str(lib), "--out", str(tmp_path / "serial"), "--serial", "--quiet")
    for done in (ray_run, serial):
        assert done.returncode == 1, done.stderr  # the two corrupt files
        assert "200 done, 0 skipped (done before), 2 failed" in done.stderr, done.stderr
        failed = [l for l in done.stderr.splitlines() if l.startswith("strata-batch: failed: ")]
        assert sorted(Path(l.split(": ")[2]).name for l in failed) == ["broken0.wav", "broken1.wav"]
    a, b = results(tmp_path / "ray"), results(tmp_path / "serial")
    assert len(a) == 200 and a == b
    assert rows(tmp_path / "ray") == rows(tmp_path / "serial")
    sources = {r[0] for r in rows(tmp_path / "ray")}
    assert sources <= {Path(k).name for k in a} and len(sources) > 100
    again = run_batch(str(lib), "--out", str(tmp_path / "ray"), "--num-cpus", "2", "--quiet")
    assert "0 done, 200 skipped (done before), 2 failed" in again.stderr, again.stderr
    assert results(tmp_path / "ray") == b


def ray_workers_running(name: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if name in cmdline:
                pids.append(int(proc.name))
    return pids


def test_a_killed_worker_leaves_nothing_missing_and_nothing_twice(tmp_path):
    lib = library(tmp_path / "lib", 40, seed=2, seconds=(6.0, 10.0))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "strata.batch", str(lib), "--out", str(out), "--num-cpus", "2", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    killed = 0
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not killed:
        done = len(list((out / batch.RESULTS_DIR).rglob("strata.json"))) if out.exists() else 0
        busy = ray_workers_running("ray::analyse_job")
        if done >= 3 and busy:
            os.kill(busy[0], signal.SIGKILL)
            killed += 1
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=600)
    assert killed == 1, "a worker was killed mid-run"
    assert proc.returncode == 0, stderr
    assert "40 done, 0 skipped (done before), 0 failed" in stderr, stderr
    assert len(results(out)) == 40
    parts = list((out / batch.DATASET_DIR).iterdir())
    assert len(parts) == 40 and all(p.suffix == ".parquet" for p in parts), "one part per file, no leftovers"
    assert len({r[0] for r in rows(out)}) == 40


def test_what_a_worker_killed_mid_write_left_is_hidden_and_swept(tmp_path):
    lib = library(tmp_path / "lib", 3, seed=4)
    out = tmp_path / "out"
    jobs = batch.collect([str(lib)], out)
    # What a worker SIGKILLed inside pyarrow's write leaves: a half part beside the final name.
    dataset = out / batch.DATASET_DIR
    dataset.mkdir(parents=True)
    half = dataset / f".{Path(jobs[0].part).name}{batch.PARTIAL_MARK}4242"
    half.write_bytes(b"PAR1\x00half a footer")
    assert pq.ParquetDataset(dataset).files == [], "a reader skips what is still being written"
    summary = batch.run(jobs, serial=True, quiet=True)
    assert summary.done == 3 and not half.exists()
    assert sorted(p.name for p in dataset.iterdir()) == sorted(Path(j.part).name for j in jobs)
    assert len({r[0] for r in rows(out)}) == 3


def test_a_second_node_joined_by_address_shares_the_work(tmp_path):
    lib = library(tmp_path / "lib", 24, seed=3, seconds=(3.0, 5.0))
    port = 26379 + os.getpid() % 1000
    # `ray start` turns Ray's token authentication on: the head writes the token to
    # ~/.ray/auth_token, and the second node and the driver present it in token mode.
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run([*ray_cli, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"], check=True, capture_output=True, env=env)
    try:
        subprocess.run([*ray_cli, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1"], check=True, capture_output=True, env=env)
        done = run_batch(str(lib), "--out", str(tmp_path / "out"), "--address", f"127.0.0.1:{port}", env=env)
        assert done.returncode == 0, done.stderr
        assert "24 done" in done.stderr and "on 2 nodes" in done.stderr, done.stderr
        assert len(results(tmp_path / "out")) == 24
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, env=env)
