"""The log-mel front end, defined once here and mirrored exactly in Rust
(`plugin/src/dsp/logmel.rs`); the parity fixtures check the two agree.

Frame t covers samples [t * HOP, t * HOP + N_FFT) of mono audio at SAMPLE_RATE: no centring, so a
frame is complete as soon as its last sample has arrived (what streaming needs).
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 320  # 20 ms: 50 frames per second
N_MELS = 64
F_MIN = 30.0
F_MAX = 8_000.0
LOG_FLOOR = 1e-6
FRAME_RATE = SAMPLE_RATE / HOP


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] triangular filters (HTK mel scale, peak 1), float64."""
    bins = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    fb = np.zeros((N_MELS, len(bins)))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


def hann() -> np.ndarray:
    """Periodic Hann window of N_FFT samples, float64."""
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)


_FB = mel_filterbank()
_WIN = hann()


def frame_count(n_samples: int) -> int:
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


def mel_power(audio: np.ndarray) -> np.ndarray:
    """[T, N_MELS] float64 mel power of mono float audio at SAMPLE_RATE: the power spectrum
    |X|^2 / N_FFT of each Hann-windowed frame, mel-filtered. Non-finite samples are silence."""
    x = np.nan_to_num(np.asarray(audio, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    t = frame_count(len(x))
    if t == 0:
        return np.zeros((0, N_MELS), dtype=np.float64)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(t)[:, None]
    frames = x[idx] * _WIN[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / N_FFT
    return power @ _FB.T


def logmel(audio: np.ndarray) -> np.ndarray:
    """[T, N_MELS] float32 log-mel frames of mono float audio at SAMPLE_RATE: ln(mel power +
    LOG_FLOOR) (`mel_power`), computed in float64."""
    return np.log(mel_power(audio) + LOG_FLOOR).astype(np.float32)
