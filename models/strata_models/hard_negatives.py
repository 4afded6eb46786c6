"""Supervised targets for the encoders from the synthetic pieces' stems: one layer changed.

Self-supervision alone teaches the encoders the wrong invariances for Strata's changes: its
positive views are a window with its gain moved by up to 6 dB, another window mixed in quietly and
six mel bands masked, which is what a layer's loudness change, a new quiet layer, or a filter
sweeping over one layer's bands looks like in the mix. So the vectors barely move when one layer
changes, and neither does the tower's surprise (models/README.md, "The tower's surprise against the
repetition-based detector").

The generator writes every layer's stem, so the same window can be heard twice: as it is, and
with one audible layer changed the ways the issue names (loudness, dropped out, filtered, pitched,
thinned out), from its start or from a moment inside it. Each anchor must find its own positive
view before that changed copy of itself (a hard negative, one extra column of the InfoNCE logits).

Mel power is additive across stems up to the stems' cross terms, which average out over a band;
the anchor, its positive and its negative are all built from the stems' summed power, so the
encoder cannot tell them apart by that approximation.

Measured against self-supervision alone on the same corpus (`train.py --hard-negatives`, off by
default): the tower's surprise found changes no better and the tokens repeated less, so the
shipped encoders are trained without it (models/README.md, Training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data, features

# A stem is heard in a window when it holds at least this share of the window's power.
MIN_AUDIBLE_SHARE = 0.05
# Level changes, in dB either way (a dropout is the limit).
LEVEL_CHANGE_DB = (4.0, 12.0)
# A pitch change moves the stem this many mel bands (about a tone to a fifth in the mid range).
PITCH_SHIFT_BANDS = (2, 5)
# A filter's attenuation per mel band past its corner, in dB.
FILTER_SLOPE_DB = (1.5, 4.0)
CHANGE_KINDS = ("level", "dropout", "filter", "pitch", "density")


@dataclass
class StemPowers:
    """Mel power of every stem of one synthetic piece, [stems, frames, N_MELS]."""

    name: str
    power: np.ndarray


def load_stem_powers(items: list[data.Item]) -> list[StemPowers]:
    """The stems of every synthetic item (those whose folder holds `stem_*.wav`)."""
    out = []
    for it in items:
        if it.source != "synthetic" or it.audio_path is None:
            continue
        stems = sorted(Path(it.audio_path).parent.glob("stem_*.wav"))
        if not stems:
            continue
        power = [features.mel_power(data.load_audio(str(s))) for s in stems]
        frames = min(len(p) for p in power)
        out.append(StemPowers(it.name, np.stack([p[:frames] for p in power]).astype(np.float32)))
    return out


def change_one_layer(stem: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of one stem's power [frames, N_MELS] changed one way, from its first frame or from a
    moment in its middle half."""
    out = stem.copy()
    n = len(stem)
    start = 0 if rng.random() < 0.5 else int(rng.integers(n // 4, 3 * n // 4 + 1))
    part = out[start:]
    kind = CHANGE_KINDS[int(rng.integers(len(CHANGE_KINDS)))]
    if kind == "level":
        db = rng.uniform(*LEVEL_CHANGE_DB) * (1 if rng.random() < 0.5 else -1)
        part *= 10 ** (db / 10)
    elif kind == "dropout":
        part[:] = 0.0
    elif kind == "filter":
        corner = int(rng.integers(8, features.N_MELS - 8))
        slope = rng.uniform(*FILTER_SLOPE_DB)
        bands = np.arange(features.N_MELS)
        past = bands - corner if rng.random() < 0.5 else corner - bands  # low-pass or high-pass
        part *= 10 ** (-slope * np.maximum(past, 0) / 10)
    elif kind == "pitch":
        shift = int(rng.integers(PITCH_SHIFT_BANDS[0], PITCH_SHIFT_BANDS[1] + 1)) * (1 if rng.random() < 0.5 else -1)
        moved = np.zeros_like(part)
        if shift > 0:
            moved[:, shift:] = part[:, :-shift]
        else:
            moved[:, :shift] = part[:, -shift:]
        part[:] = moved
    else:  # density: about half of the stem's beats (blocks of 0.1-0.4 s) left out
        block = int(rng.integers(5, 21))
        for b in range(0, len(part), block):
            if rng.random() < 0.5:
                part[b : b + block] = 0.0
    return out


def sample(pieces: list[StemPowers], window: int, batch: int, rng: np.random.Generator, jitter: int):
    """`batch` windows of `window + 2*jitter` frames as log-mel [B, W', N_MELS], and the same windows
    with one audible layer changed."""
    long_enough = [p for p in pieces if p.power.shape[1] >= window + 2 * jitter + 1]
    weights = np.array([p.power.shape[1] for p in long_enough], dtype=np.float64)
    picks = rng.choice(len(long_enough), size=batch, p=weights / weights.sum())
    span = window + 2 * jitter
    same = np.empty((batch, span, features.N_MELS), dtype=np.float32)
    changed = np.empty_like(same)
    for b, k in enumerate(picks):
        power = long_enough[k].power
        start = int(rng.integers(0, power.shape[1] - span))
        stems = power[:, start : start + span]
        share = stems.sum(axis=(1, 2)) / max(float(stems.sum()), 1e-12)
        audible = np.flatnonzero(share >= MIN_AUDIBLE_SHARE)
        layer = int(rng.choice(audible)) if len(audible) else int(np.argmax(share))
        mix = stems.sum(axis=0)
        same[b] = np.log(mix + features.LOG_FLOOR)
        changed[b] = np.log(mix - stems[layer] + change_one_layer(stems[layer], rng) + features.LOG_FLOOR)
    return torch.from_numpy(same), torch.from_numpy(changed)


def light_view(x: torch.Tensor, window: int, jitter: int, gen: torch.Generator) -> torch.Tensor:
    """What stays the same music: a shift of up to `jitter` frames, the whole mix's gain ±6 dB, a
    little noise (none of the augmentations that mimic one layer changing)."""
    b = x.shape[0]
    shifts = torch.randint(0, 2 * jitter + 1, (b,), generator=gen)
    view = torch.stack([x[i, s : s + window] for i, s in enumerate(shifts.tolist())])
    view = view + (torch.rand(b, 1, 1, generator=gen) * 12 - 6) / 10 * math.log(10)
    return view + 0.1 * torch.randn(view.shape, generator=gen)


def info_nce_with_hard_negative(anchor: torch.Tensor, positive: torch.Tensor, changed: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE over the batch, each anchor's own changed copy one more column it must rank below
    its positive."""
    logits = anchor @ positive.T / temperature
    hard = (anchor * changed).sum(dim=1, keepdim=True) / temperature
    target = torch.arange(anchor.shape[0], device=anchor.device)
    return 0.5 * (F.cross_entropy(torch.cat([logits, hard], dim=1), target) + F.cross_entropy(logits.T, target))
