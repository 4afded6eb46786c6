"""Shared fixtures: audio written as real files, and the CLI the package is compared with."""
from __future__ import annotations

import os
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "assets" / "machine_wars_excerpt.ogg"


def cli() -> Path:
    """The `strata` CLI of the same build (STRATA_CLI, else target/debug/strata)."""
    path = Path(os.environ.get("STRATA_CLI", ROOT / "target" / "debug" / "strata"))
    if not path.is_file():
        pytest.fail(f"no strata CLI at {path}: build it (cargo build -p strata --bin strata) or set STRATA_CLI")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(cli()), *args], capture_output=True, text=True)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV of float samples in [-1, 1]: (frames,) or (frames, channels)."""
    a = samples if samples.ndim == 2 else samples[:, None]
    pcm = np.clip(np.round(a * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit WAV's samples as float32 (frames, channels), as Strata's decoder scales them."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
        return data.astype(np.float32) / np.float32(32768.0), w.getframerate()


def pulse_track(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A little piece with layers: a hat every 0.25 s, a kick every 0.5 s, a bass note cycling
    every 2 s, and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    hat = rng.standard_normal(t.size) * np.exp(-((t % 0.25) * 60.0)) * 0.15
    kick = np.sin(2 * np.pi * 60.0 * t) * np.exp(-((t % 0.5) * 20.0)) * 0.5
    notes = np.array([55.0, 55.0, 65.4, 49.0])
    bass = np.sin(2 * np.pi * notes[((t % 2.0) / 0.5).astype(int)] * t) * 0.2
    mono = hat + kick + bass + rng.standard_normal(t.size) * 0.002
    return np.stack([mono * (0.9 + 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture(scope="session")
def piece(tmp_path_factory) -> Path:
    """Twelve seconds of a layered piece as a 16-bit stereo WAV at 44.1 kHz."""
    return write_wav(tmp_path_factory.mktemp("piece") / "piece.wav", pulse_track(12.0, 44100), 44100)
