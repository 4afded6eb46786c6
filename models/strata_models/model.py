"""The networks: a shared frame network, one light encoder head per timescale, and the LSTM tower.

    log-mel frame (64) --FrameNet--> frame embedding (32), once per 20 ms frame
    window of W_s frame embeddings --ScaleEncoder[s]--> vector F[s] (32, unit length) + token 0..255
    F[i], output of level i-1, (h, c) --TowerLevel[i]--> prediction of the next F[i], (h', c')

Each encoder pools its window into SEGMENTS equal segments (mean and max per segment), so even the
20 s head sees the order of events inside its window, at a cost that does not grow with the scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import features

SCALES_S = [0.2, 1.0, 2.0, 5.0, 10.0, 20.0]
WINDOW_FRAMES = [10, 50, 100, 250, 500, 1000]
HOP_FRAMES = [5, 10, 25, 50, 100, 200]
SEGMENTS = 10
FRAME_DIM = 32
VECTOR_DIM = 32
CODEBOOK_SIZE = 256
TOWER_HIDDEN = 32
HEAD_HIDDEN = 128

assert all(abs(s * features.FRAME_RATE - w) < 1e-6 for s, w in zip(SCALES_S, WINDOW_FRAMES))
assert all(w % SEGMENTS == 0 for w in WINDOW_FRAMES)


class FrameNet(nn.Module):
    """Per-frame log-mel (normalised per band with training statistics) to a frame embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mel_mean", torch.zeros(features.N_MELS))
        self.register_buffer("mel_std", torch.ones(features.N_MELS))
        self.net = nn.Sequential(
            nn.Linear(features.N_MELS, 64), nn.GELU(), nn.Linear(64, FRAME_DIM), nn.GELU()
        )

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.net((logmel - self.mel_mean) / self.mel_std)


class ScaleEncoder(nn.Module):
    """A window of frame embeddings [B, W, FRAME_DIM] to a unit vector [B, VECTOR_DIM]."""

    def __init__(self, window_frames: int) -> None:
        super().__init__()
        self.window = window_frames
        self.head = nn.Sequential(
            nn.Linear(2 * SEGMENTS * FRAME_DIM, HEAD_HIDDEN), nn.GELU(), nn.Linear(HEAD_HIDDEN, VECTOR_DIM)
        )
        # Filled after training by k-means over training vectors (see train.py).
        self.register_buffer("codebook", F.normalize(torch.randn(CODEBOOK_SIZE, VECTOR_DIM), dim=1))

    def vector(self, frames: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        seg = frames.reshape(b, SEGMENTS, self.window // SEGMENTS, FRAME_DIM)
        pooled = torch.cat([seg.mean(dim=2), seg.amax(dim=2)], dim=2).reshape(b, -1)
        return F.normalize(self.head(pooled), dim=1)

    def token(self, vector: torch.Tensor) -> torch.Tensor:
        # Nearest codebook entry; for unit vectors that is the largest dot product.
        return torch.argmax(vector @ self.codebook.T, dim=1)

    def forward(self, frames: torch.Tensor):
        v = self.vector(frames)
        return v, self.token(v)


class TowerLevel(nn.Module):
    """One level of the tower. `direct` levels take F[i] and the level below; the ablation's pure
    hierarchy (`direct=False`) gives levels above the first only the level below."""

    def __init__(self, level: int, direct: bool, hidden: int = TOWER_HIDDEN, below_dim: int = TOWER_HIDDEN) -> None:
        super().__init__()
        self.level, self.direct, self.hidden, self.below_dim = level, direct, hidden, below_dim
        self.takes_feature = direct or level == 0
        self.takes_below = level > 0
        in_dim = (VECTOR_DIM if self.takes_feature else 0) + (below_dim if self.takes_below else 0)
        self.cell = nn.LSTMCell(in_dim, hidden)
        self.predict = nn.Linear(hidden, VECTOR_DIM)

    def inputs(self, feature: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.takes_feature:
            parts.append(feature)
        if self.takes_below:
            parts.append(below)
        return torch.cat(parts, dim=-1)

    def forward(self, feature, below, h, c):
        """One step; feature [B, VECTOR_DIM], below [B, below_dim], h and c [B, hidden]."""
        h2, c2 = self.cell(self.inputs(feature, below), (h, c))
        return F.normalize(self.predict(h2), dim=1), h2, c2

    def run(self, feature_seq: torch.Tensor, below_seq: torch.Tensor):
        """Whole sequences [B, T, .]: returns predictions [B, T, VECTOR_DIM] and outputs h [B, T, hidden]."""
        b, t, _ = feature_seq.shape
        h = feature_seq.new_zeros(b, self.hidden)
        c = feature_seq.new_zeros(b, self.hidden)
        preds, hs = [], []
        for k in range(t):
            p, h, c = self.forward(feature_seq[:, k], below_seq[:, k], h, c)
            preds.append(p)
            hs.append(h)
        return torch.stack(preds, 1), torch.stack(hs, 1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def hierarchy_hidden_for_budget(level: int) -> int:
    """Hidden size of a pure-hierarchy level whose parameter count is closest to a direct one's."""
    target = count_parameters(TowerLevel(level, True))
    best = min(range(8, 129), key=lambda h: abs(count_parameters(TowerLevel(level, False, h, h)) - target))
    return best
