"""Running the tower over a piece's per-scale sequences, shared by training, evaluation and export
(kept apart from `train.py` so that evaluating or exporting does not import the trainer)."""
from __future__ import annotations

import math

import numpy as np
import torch

from .model import HOP_FRAMES, WINDOW_FRAMES


def first_step(window: int, hop: int) -> int:
    """The first step index k whose window, ending at (k+1)*hop, fits: the streaming engine's rule."""
    return math.ceil(window / hop) - 1


def aligned_below(below_times: np.ndarray, below_out: np.ndarray, times: np.ndarray, dim: int) -> np.ndarray:
    """For each time, the newest output of the level below at or before it (zeros before any)."""
    idx = np.searchsorted(below_times, times, side="right") - 1
    out = np.zeros((len(times), dim), dtype=np.float32)
    ok = idx >= 0
    out[ok] = below_out[idx[ok]]
    return out


def step_times(n: int, level: int) -> np.ndarray:
    """End time (in frames) of each step of a level, given its sequence length."""
    hop, win = HOP_FRAMES[level], WINDOW_FRAMES[level]
    k0 = first_step(win, hop)
    return (np.arange(n) + k0 + 1) * hop


def run_tower(levels, seqs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Runs every level over one item's F sequences (no grad). Returns predictions and outputs."""
    preds, outs = [], []
    with torch.no_grad():
        for i, lvl in enumerate(levels):
            f = torch.from_numpy(seqs[i])[None]
            if i == 0:
                below = torch.zeros(1, len(seqs[i]), lvl.below_dim)
            else:
                below = torch.from_numpy(
                    aligned_below(step_times(len(seqs[i - 1]), i - 1), outs[i - 1], step_times(len(seqs[i]), i), lvl.below_dim)
                )[None]
            p, h = lvl.run(f, below)
            preds.append(p[0].numpy())
            outs.append(h[0].numpy())
    return preds, outs
