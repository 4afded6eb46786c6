"""ONNX export, the manifest the Rust side reads, and the parity fixtures.

Files written under models/:
  onnx/frontend.onnx            logmel [T, 64] -> frame_embedding [T, 32]
  onnx/encoder_<i>.onnx         frames [B, W_i, 32] -> vector [B, 32], token [B] (int64)
  onnx/tower_<i>.onnx           feature [B, 32], below [B, Db], h [B, H], c [B, H]
                                -> prediction [B, 32], h_out [B, H], c_out [B, H]
  manifest.json                 scales, hops, dims, front-end constants, sha256 of every file,
                                training data summary, metrics
  fixtures/                     audio, and what PyTorch computes from it, for the Rust parity test
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import evaluate, features, period_head
from .tower import aligned_below, step_times
from .model import (
    CODEBOOK_SIZE,
    FRAME_DIM,
    HOP_FRAMES,
    SCALES_S,
    SEGMENTS,
    VECTOR_DIM,
    WINDOW_FRAMES,
)

OPSET = 17
TOWER_FIXTURE_STEPS = 8


class _Encoder(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, frames):
        v = self.enc.vector(frames)
        return v, self.enc.token(v)


class _TowerStep(nn.Module):
    def __init__(self, level):
        super().__init__()
        self.level = level

    def forward(self, feature, below, h, c):
        # Both inputs always exist so every level has one interface; a level that does not use
        # one multiplies it by zero (kept in the graph, costs nothing measurable).
        feature = feature + 0.0 * below.sum(dim=1, keepdim=True) if not self.level.takes_below else feature
        below = below + 0.0 * feature.sum(dim=1, keepdim=True) if not self.level.takes_feature else below
        return self.level(feature, below, h, c)


def _export(module, args, path: Path, inputs, outputs, dynamic):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module, args, str(path), input_names=inputs, output_names=outputs,
        dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_all(out: Path, frame_net, encoders, tower, variant: str, corpus: dict, results: dict, dev_items, seed: int) -> None:
    onnx_dir = out / "onnx"
    _export(frame_net, (torch.zeros(12, features.N_MELS),), onnx_dir / "frontend.onnx",
            ["logmel"], ["frame_embedding"], {"logmel": {0: "frames"}, "frame_embedding": {0: "frames"}})
    for i, enc in enumerate(encoders):
        _export(_Encoder(enc), (torch.zeros(2, enc.window, FRAME_DIM),), onnx_dir / f"encoder_{i}.onnx",
                ["frames"], ["vector", "token"], {"frames": {0: "batch"}, "vector": {0: "batch"}, "token": {0: "batch"}})
    for i, level in enumerate(tower):
        args = (torch.zeros(1, VECTOR_DIM), torch.zeros(1, level.below_dim), torch.zeros(1, level.hidden), torch.zeros(1, level.hidden))
        _export(_TowerStep(level), args, onnx_dir / f"tower_{i}.onnx",
                ["feature", "below", "h", "c"], ["prediction", "h_out", "c_out"],
                {n: {0: "batch"} for n in ["feature", "below", "h", "c", "prediction", "h_out", "c_out"]})

    manifest = {
        "format": 1,
        "sample_rate": features.SAMPLE_RATE,
        "frontend": {
            "n_fft": features.N_FFT, "hop": features.HOP, "n_mels": features.N_MELS,
            "f_min": features.F_MIN, "f_max": features.F_MAX, "log_floor": features.LOG_FLOOR,
            "window": "hann-periodic", "mel_scale": "htk", "power": "abs(X)^2 / n_fft",
            "file": "onnx/frontend.onnx",
        },
        "frame_rate": features.FRAME_RATE,
        "frame_dim": FRAME_DIM,
        "vector_dim": VECTOR_DIM,
        "codebook_size": CODEBOOK_SIZE,
        "segments": SEGMENTS,
        "scales": [
            {"scale_s": s, "window_frames": w, "hop_frames": h, "encoder": f"onnx/encoder_{i}.onnx", "tower": f"onnx/tower_{i}.onnx"}
            for i, (s, w, h) in enumerate(zip(SCALES_S, WINDOW_FRAMES, HOP_FRAMES))
        ],
        "tower": {"variant": variant, "hidden": tower[0].hidden, "below_dim": tower[0].below_dim},
        "change_detection": {
            "surprise_history": evaluate.SURPRISE_HISTORY, "surprise_z": evaluate.SURPRISE_Z,
            "min_history": evaluate.SURPRISE_MIN_HISTORY, "merge_window_s": evaluate.MERGE_WINDOW_S,
        },
        "files": {},  # filled by period_head.list_files, with the period head if the folder has one
        "training": {"seed": seed, "corpus": corpus},
        "metrics": results,
    }
    period_head.list_files(manifest, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_fixtures(out / "fixtures", frame_net, encoders, tower, dev_items)


def write_fixtures(folder: Path, frame_net, encoders, tower, dev_items) -> None:
    """22 s of a development piece and PyTorch's outputs for it."""
    import soundfile as sf


    folder.mkdir(parents=True, exist_ok=True)
    source = next(it for it in dev_items if it.truth)
    audio, rate = sf.read(source.audio_path, dtype="float32")
    assert rate == features.SAMPLE_RATE
    audio = audio[: 22 * rate]
    sf.write(folder / "audio.wav", audio, rate, subtype="FLOAT")
    mel = features.logmel(audio)
    mel.astype("<f4").tofile(folder / "logmel.f32")
    with torch.no_grad():
        emb = frame_net(torch.from_numpy(mel))
    emb.numpy().astype("<f4").tofile(folder / "frame_embedding.f32")
    fixture = {"source": source.name, "frames": int(len(mel)), "n_mels": features.N_MELS, "frame_dim": FRAME_DIM, "scales": []}
    seqs = []
    with torch.no_grad():
        for i, enc in enumerate(encoders):
            ends = list(range(enc.window, len(mel) + 1, HOP_FRAMES[i]))
            ends = [e for e in ends if e % HOP_FRAMES[i] == 0]
            wins = torch.stack([emb[e - enc.window : e] for e in ends])
            v = enc.vector(wins)
            seqs.append(v.numpy())
            fixture["scales"].append({"window_ends": ends, "vectors": v.numpy().round(7).tolist(), "tokens": enc.token(v).tolist()})
        outs = []
        fixture["tower"] = []
        for i, level in enumerate(tower):
            n = min(TOWER_FIXTURE_STEPS, len(seqs[i]))
            if i == 0:
                below = np.zeros((len(seqs[i]), level.below_dim), np.float32)
            else:
                below = aligned_below(step_times(len(seqs[i - 1]), i - 1), outs[i - 1], step_times(len(seqs[i]), i), level.below_dim)
            h = torch.zeros(1, level.hidden)
            c = torch.zeros(1, level.hidden)
            steps = []
            hs = []
            for k in range(len(seqs[i])):
                p, h, c = level(torch.from_numpy(seqs[i][k : k + 1]), torch.from_numpy(below[k : k + 1]), h, c)
                hs.append(h[0].numpy().copy())
                if k < n:
                    steps.append({
                        "feature": seqs[i][k].round(7).tolist(), "below": below[k].round(7).tolist(),
                        "prediction": p[0].numpy().round(7).tolist(), "h": h[0].numpy().round(7).tolist(), "c": c[0].numpy().round(7).tolist(),
                    })
            outs.append(np.array(hs, dtype=np.float32))
            fixture["tower"].append({"steps": steps})
    (folder / "expected.json").write_text(json.dumps(fixture) + "\n")
