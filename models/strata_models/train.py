"""Trains Strata's models, evaluates them against a baseline, and exports them.

    python -m strata_models.train --out models/   (from the repository root: models/run.sh)

Stages, all seeded:
1. corpus (data.py) and per-band log-mel statistics;
2. encoders: self-supervised contrastive learning per scale (a window and an augmented copy of it
   must find each other among the batch: gain change, a few frames of shift, another window mixed
   in quietly, noise), then a 256-entry k-means codebook per scale for the tokens;
3. the tower, trained twice at the same parameter budget: every level fed F[i] and the level
   below ("direct"), and a pure hierarchy (only level 0 sees F[0]); the better on development
   data is shipped;
4. evaluation on development data (evaluate.py) and export (export.py).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data, evaluate, export, features, hard_negatives
from .tower import aligned_below, run_tower, step_times
from .model import (
    HOP_FRAMES,
    SCALES_S,
    VECTOR_DIM,
    WINDOW_FRAMES,
    FrameNet,
    ScaleEncoder,
    TowerLevel,
    count_parameters,
)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sample_windows(items, window: int, batch: int, rng: np.random.Generator, jitter: int):
    """Random windows [B, window + 2*jitter, 64] from items long enough to hold them."""
    long_enough = [it for it in items if len(it.logmel) >= window + 2 * jitter + 1]
    weights = np.array([len(it.logmel) for it in long_enough], dtype=np.float64)
    picks = rng.choice(len(long_enough), size=batch, p=weights / weights.sum())
    out = np.empty((batch, window + 2 * jitter, features.N_MELS), dtype=np.float32)
    for b, k in enumerate(picks):
        m = long_enough[k].logmel
        start = rng.integers(0, len(m) - window - 2 * jitter)
        out[b] = m[start : start + window + 2 * jitter]
    return torch.from_numpy(out)


def augment(x: torch.Tensor, other: torch.Tensor, window: int, jitter: int, gen: torch.Generator) -> torch.Tensor:
    """A positive view of each window: shifted by up to `jitter` frames, gain ±6 dB, another
    window mixed in 6 to 20 dB down, a few mel bands masked, a little noise."""
    b = x.shape[0]
    shifts = torch.randint(0, 2 * jitter + 1, (b,), generator=gen)
    view = torch.stack([x[i, s : s + window] for i, s in enumerate(shifts.tolist())])
    gain_db = (torch.rand(b, 1, 1, generator=gen) * 12 - 6)
    view = view + gain_db / 10 * math.log(10)
    mix_db = torch.rand(b, 1, 1, generator=gen) * 14 + 6
    view = torch.logaddexp(view, other[:, :window] - mix_db / 10 * math.log(10))
    band = torch.randint(0, features.N_MELS - 6, (b,), generator=gen)
    mask = torch.ones_like(view)
    for i, lo in enumerate(band.tolist()):
        mask[i, :, lo : lo + 6] = 0.0
    floor = math.log(features.LOG_FLOOR)
    view = view * mask + floor * (1 - mask)
    return view + 0.1 * torch.randn(view.shape, generator=gen)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_encoders(frame_net, encoders, items, steps: int, batch: int, seed: int, log, device: str = "cpu", stem_pieces=None) -> list[float]:
    """Trains on `device` ("cpu" or "cuda"); the modules are back on the CPU afterwards. With
    `stem_pieces` (hard_negatives.StemPowers), each scale also gets a quarter batch of synthetic
    windows that must tell themselves from a copy with one layer changed."""
    rng = np.random.default_rng(seed)
    frame_net.to(device)
    for e in encoders:
        e.to(device)
    gen = torch.Generator().manual_seed(seed)
    params = list(frame_net.parameters()) + [p for e in encoders for p in e.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    jitter = 3
    history = []
    for step in range(steps):
        total = 0.0
        losses = []
        for enc in encoders:
            # Long windows are costly: fewer of them per batch.
            b = batch if enc.window <= 100 else max(32, batch * 100 // enc.window * 2)
            x = sample_windows(items, enc.window, b, rng, jitter)
            other = sample_windows(items, enc.window, b, rng, 0)
            anchor = x[:, jitter : jitter + enc.window].to(device)
            positive = augment(x, other, enc.window, jitter, gen).to(device)
            va = enc.vector(frame_net(anchor))
            vp = enc.vector(frame_net(positive))
            loss = info_nce(va, vp)
            if stem_pieces:
                same, changed = hard_negatives.sample(stem_pieces, enc.window, max(16, b // 4), rng, jitter)
                vs = enc.vector(frame_net(same[:, jitter : jitter + enc.window].to(device)))
                vsp = enc.vector(frame_net(hard_negatives.light_view(same, enc.window, jitter, gen).to(device)))
                vsc = enc.vector(frame_net(hard_negatives.light_view(changed, enc.window, jitter, gen).to(device)))
                loss = loss + hard_negatives.info_nce_with_hard_negative(vs, vsp, vsc)
            losses.append(loss)
        loss = torch.stack(losses).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total = float(loss.detach())
        history.append(total)
        if step % 50 == 0 or step == steps - 1:
            log(f"encoders step {step}/{steps}: loss {total:.3f} ({' '.join(f'{float(l.detach()):.2f}' for l in losses)})")
    frame_net.cpu()
    for e in encoders:
        e.cpu()
    return history


@torch.no_grad()
def encode_sequence(frame_net, enc: ScaleEncoder, hop: int, logmel: np.ndarray, chunk: int = 256) -> np.ndarray:
    """F[s] at every hop of a whole item: [N, VECTOR_DIM]; step k's window ends at frame (k+1)*hop."""
    emb = frame_net(torch.from_numpy(logmel))
    ends = list(range(enc.window, len(logmel) + 1, hop))
    ends = [e for e in ends if e % hop == 0]
    out = []
    for i in range(0, len(ends), chunk):
        wins = torch.stack([emb[e - enc.window : e] for e in ends[i : i + chunk]])
        out.append(enc.vector(wins))
    return torch.cat(out).numpy() if out else np.zeros((0, VECTOR_DIM), np.float32)


def kmeans(x: np.ndarray, k: int, iters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), size=k, replace=len(x) < k)].copy()
    for _ in range(iters):
        assign = np.argmax(x @ centres.T, axis=1)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c = members.mean(axis=0)
                centres[j] = c / (np.linalg.norm(c) + 1e-9)
            else:  # re-seed empty clusters on the worst-fit points
                centres[j] = x[rng.integers(len(x))]
    return centres.astype(np.float32)


def train_tower(levels, train_seqs, epochs: int, seed: int, log, name: str) -> None:
    """Teacher-forced next-vector prediction, level by level (a level's input from below is the
    trained level below's output)."""
    torch.manual_seed(seed)
    for i, lvl in enumerate(levels):
        opt = torch.optim.Adam(lvl.parameters(), lr=3e-3)
        seqs = [s for s in train_seqs if len(s[i]) > 8]
        # Inputs from below come from the already-trained lower levels.
        belows = []
        for s in seqs:
            if i == 0:
                belows.append(np.zeros((len(s[0]), lvl.below_dim), np.float32))
            else:
                _, outs = run_tower(levels[:i], s[:i])
                belows.append(aligned_below(step_times(len(s[i - 1]), i - 1), outs[i - 1], step_times(len(s[i]), i), lvl.below_dim))
        max_len = 400
        for epoch in range(epochs):
            order = np.random.default_rng(seed + epoch).permutation(len(seqs))
            total, count = 0.0, 0
            for k in order:
                f = torch.from_numpy(seqs[k][i])
                b = torch.from_numpy(belows[k])
                start = 0 if len(f) <= max_len else np.random.default_rng(seed + k + epoch).integers(0, len(f) - max_len)
                f, b = f[start : start + max_len][None], b[start : start + max_len][None]
                pred, _ = lvl.run(f, b)
                loss = ((pred[:, :-1] - f[:, 1:]) ** 2).sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(lvl.parameters(), 1.0)
                opt.step()
                total += float(loss.detach())
                count += 1
            if epoch == epochs - 1:
                log(f"tower {name} level {i}: train prediction loss {total / max(count, 1):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--encoder-steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--tower-epochs", type=int, default=6)
    ap.add_argument("--no-lmms", action="store_true", help="leave out the lmms demo renders")
    ap.add_argument("--device", default="cpu", help="where the encoders train: cpu (default) or cuda")
    ap.add_argument("--hard-negatives", action="store_true",
                    help="also train the encoders to tell synthetic windows from copies with one layer changed "
                         "(measured and not shipped: see README.md, Training)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seed_everything(args.seed)
    t0 = time.time()
    log_lines: list[str] = []

    def log(msg: str) -> None:
        line = f"[{time.time() - t0:7.1f}s] {msg}"
        print(line, flush=True)
        log_lines.append(line)

    items = data.build_corpus(use_lmms=not args.no_lmms)
    train_items = [it for it in items if it.split == "train"]
    dev_items = [it for it in items if it.split == "dev"]
    corpus = data.summary(items)
    log(f"corpus: {json.dumps(corpus)}")

    frame_net = FrameNet()
    all_frames = np.concatenate([it.logmel for it in train_items])
    frame_net.mel_mean.copy_(torch.from_numpy(all_frames.mean(0)))
    frame_net.mel_std.copy_(torch.from_numpy(all_frames.std(0) + 1e-3))
    encoders = [ScaleEncoder(w) for w in WINDOW_FRAMES]
    stem_pieces = hard_negatives.load_stem_powers(train_items) if args.hard_negatives else None
    if stem_pieces is not None:
        log(f"hard negatives from the stems of {len(stem_pieces)} synthetic pieces")
    train_encoders(frame_net, encoders, train_items, args.encoder_steps, args.batch, args.seed, log, args.device, stem_pieces)
    frame_net.eval()
    for e in encoders:
        e.eval()

    log("encoding every item at every scale")
    def sequences(it):
        return [encode_sequence(frame_net, enc, hop, it.logmel) for enc, hop in zip(encoders, HOP_FRAMES)]
    train_seqs = [sequences(it) for it in train_items]
    dev_seqs = [sequences(it) for it in dev_items]

    for i, enc in enumerate(encoders):
        vecs = np.concatenate([s[i] for s in train_seqs])
        rng = np.random.default_rng(args.seed + i)
        if len(vecs) > 20_000:
            vecs = vecs[rng.choice(len(vecs), 20_000, replace=False)]
        enc.codebook.copy_(torch.from_numpy(kmeans(vecs, enc.codebook.shape[0], 25, args.seed + i)))
    log("codebooks fitted")

    # The tower, both ways, at the same parameter budget.
    direct = [TowerLevel(i, True) for i in range(len(SCALES_S))]
    budget = sum(count_parameters(l) for l in direct)
    hier_hidden = min(range(8, 129), key=lambda h: abs(sum(count_parameters(TowerLevel(i, False, h, h)) for i in range(len(SCALES_S))) - budget))
    hierarchy = [TowerLevel(i, False, hier_hidden, hier_hidden) for i in range(len(SCALES_S))]
    train_tower(direct, train_seqs, args.tower_epochs, args.seed, log, "direct")
    train_tower(hierarchy, train_seqs, args.tower_epochs, args.seed, log, "hierarchy")

    tuned = {name: evaluate.tune_detection(t, train_items, train_seqs, log) for name, t in (("direct", direct), ("hierarchy", hierarchy))}
    results = evaluate.evaluate_all(frame_net, encoders, {"direct": direct, "hierarchy": hierarchy}, dev_items, dev_seqs, log, tuned)
    results["detection_tuning"] = tuned
    results["parameters"] = {"direct": budget, "hierarchy": sum(count_parameters(l) for l in hierarchy), "hierarchy_hidden": hier_hidden}
    chosen = evaluate.choose_tower(results)
    log(f"shipping the '{chosen}' tower")
    evaluate.use_detection(tuned[chosen])
    tower = direct if chosen == "direct" else hierarchy
    results["training_seconds"] = round(time.time() - t0, 1)
    export.export_all(args.out, frame_net, encoders, tower, chosen, corpus, results, dev_items, args.seed)
    (args.out / "training_log.txt").write_text("\n".join(log_lines) + "\n")
    log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
