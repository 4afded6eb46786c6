"""How fast the encoders train on the CPU and on a CUDA GPU: seconds per training step.

    python models/tools/train_speed.py [--steps 20] [--batch 128]

Runs `train.train_encoders` (the real step: every scale's encoder, the front end, InfoNCE,
AdamW) on each device this machine has, over random log-mel items of the corpus's typical
length (a step's cost does not depend on what the frames hold), after twenty warm-up steps, and
prints one line per device and the ratio. Needs numpy and torch only.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from strata_models import features  # noqa: E402
from strata_models.model import WINDOW_FRAMES, FrameNet, ScaleEncoder  # noqa: E402
from strata_models.train import train_encoders  # noqa: E402

#: Frames per item: three minutes at 50 frames a second, about a training piece's length.
ITEM_FRAMES = 9000


@dataclass
class Item:
    logmel: np.ndarray


def seconds_per_step(device: str, steps: int, batch: int) -> float:
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    items = [Item(rng.normal(-6.0, 2.0, (ITEM_FRAMES, features.N_MELS)).astype(np.float32)) for _ in range(24)]
    frame_net = FrameNet()
    encoders = [ScaleEncoder(w) for w in WINDOW_FRAMES]
    quiet = lambda _msg: None  # noqa: E731
    train_encoders(frame_net, encoders, items, 20, batch, 7, quiet, device)  # warm-up (OneCycleLR needs 20 steps at least)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_encoders(frame_net, encoders, items, steps, batch, 7, quiet, device)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: {torch.cuda.is_available()}")
    cpu = seconds_per_step("cpu", args.steps, args.batch)
    print(f"CPU: {cpu:.3f} s per encoder training step (1500 steps: {1500 * cpu / 60:.1f} min)")
    if torch.cuda.is_available():
        gpu = seconds_per_step("cuda", args.steps, args.batch)
        print(f"CUDA ({torch.cuda.get_device_name(0)}): {gpu:.3f} s per step (1500 steps: {1500 * gpu / 60:.1f} min); "
              f"CPU / CUDA: {cpu / gpu:.1f}x")


if __name__ == "__main__":
    main()
