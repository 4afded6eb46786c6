"""Baselines every quality figure is shown beside, computed in the same run (numpy only, so the
evaluation of the Rust engine needs no PyTorch)."""
from __future__ import annotations

import numpy as np

from . import features


def foote_novelty(logmel: np.ndarray, kernel_s: float = 8.0, rate: float = 5.0) -> list[float]:
    """Baseline: Foote's checkerboard novelty on a cosine self-similarity matrix of log-mel frames
    pooled to `rate` per second, with adaptive peak picking."""
    pool = int(features.FRAME_RATE / rate)
    n = len(logmel) // pool
    if n < 4:
        return []
    x = logmel[: n * pool].reshape(n, pool, -1).mean(1)
    x = x - x.mean(0)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)
    ssm = x @ x.T
    half = int(kernel_s * rate / 2)
    g = np.exp(-0.5 * (np.linspace(-2, 2, 2 * half) ** 2))
    kernel = np.outer(g, g) * np.outer(np.r_[-np.ones(half), np.ones(half)], np.r_[-np.ones(half), np.ones(half)])
    nov = np.zeros(n)
    padded = np.pad(ssm, half, mode="constant")
    for t in range(n):
        nov[t] = (padded[t : t + 2 * half, t : t + 2 * half] * kernel).sum()
    nov = np.maximum(nov, 0)
    thr = nov.mean() + 0.5 * nov.std()
    peaks = []
    w = int(2 * rate)
    for t in range(n):
        if nov[t] > thr and nov[t] == nov[max(0, t - w) : t + w + 1].max():
            peaks.append(t / rate)
    return peaks
