"""Files per second: `strata-batch` on a local Ray instance against the CLI's own folder batch
(`strata analyze FOLDER`, one file per core), and the package in one process, in the same run on
the same files; then what a catalog costs.

    python python/benches/batch_throughput.py [--files 200] [--seconds 2 20] [--cli target/release/strata]

Use a release wheel (`cargo xtask wheel --release`, installed with pip) and the release CLI.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import pulse_track, write_wav  # noqa: E402

import numpy as np  # noqa: E402

RATES = [22050, 44100, 48000, 96000]


def make_library(folder: Path, files: int, seconds: tuple[float, float]) -> float:
    rng = np.random.default_rng(11)
    total = 0.0
    for i in range(files):
        length = float(rng.uniform(*seconds))
        rate = int(rng.choice(RATES))
        write_wav(folder / f"track{i:04d}.wav", pulse_track(length, rate, channels=2, seed=i), rate)
        total += length
    return total


def timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--seconds", type=float, nargs=2, default=(2.0, 20.0))
    ap.add_argument("--cli", type=Path, default=Path(__file__).resolve().parents[2] / "target" / "release" / "strata")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lib = tmp / "lib"
        lib.mkdir()
        audio_s = make_library(lib, args.files, tuple(args.seconds))
        cli_s = timed([str(args.cli), "analyze", "--quiet", "--out", str(tmp / "cli"), str(lib)])
        ray_s = timed([sys.executable, "-m", "strata.batch", str(lib), "--out", str(tmp / "ray"), "--quiet"])
        serial_s = timed([sys.executable, "-m", "strata.batch", str(lib), "--out", str(tmp / "serial"), "--serial", "--quiet"])
        resume_s = timed([sys.executable, "-m", "strata.batch", str(lib), "--out", str(tmp / "ray"), "--quiet"])
    n = args.files
    print(f"batch_throughput: {n} files, {audio_s:.0f} s of audio ({args.seconds[0]:.0f}-{args.seconds[1]:.0f} s each), {cores} cores")
    print(f"  CLI folder batch (one file per core):  {cli_s:7.2f} s  {n / cli_s:6.1f} files/s  {audio_s / cli_s:6.0f}x real time")
    print(f"  strata-batch, local Ray ({cores} CPUs):     {ray_s:7.2f} s  {n / ray_s:6.1f} files/s  {audio_s / ray_s:6.0f}x real time  (CLI/Ray time {cli_s / ray_s:.2f})")
    print(f"  strata-batch --serial (one process):   {serial_s:7.2f} s  {n / serial_s:6.1f} files/s  {audio_s / serial_s:6.0f}x real time")
    print(f"  strata-batch again (all skipped):      {resume_s:7.2f} s")
    per_core_s = serial_s / audio_s  # seconds of one core per second of audio, model loads included
    track_s = 210.0
    for machines in (1, 10, 100):
        hours = 100_000 * track_s * per_core_s / (machines * 16) / 3600.0
        print(f"  100,000 tracks of {track_s:.0f} s on {machines:3d} machine(s) of 16 cores: {hours:8.2f} h (at this run's {per_core_s * track_s:.2f} core-seconds a track)")


if __name__ == "__main__":
    main()
