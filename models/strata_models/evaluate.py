"""Evaluation on development data the models were not trained on.

* Prediction loss per tower level: squared distance between a level's prediction and the next F[i].
* Change detection from the tower's surprise, as boundary F1 at 0.5 s and 3 s tolerance against the
  synthetic pieces' true change boundaries; the baseline is Foote novelty on a log-mel
  self-similarity matrix, computed here on the same pieces.
* Token consistency: windows one true period apart with no change between them should get the
  same token; reported against the chance that two random windows share a token.

`detect_changes` is the same rule the Rust engine applies (plugin/src/layers/), so the figures are
Strata's own.
"""
from __future__ import annotations

import numpy as np
import torch

from . import features
from .baselines import foote_novelty
from .model import HOP_FRAMES, SCALES_S, WINDOW_FRAMES
from .tower import run_tower

# Change detection from surprise (mirrored in Rust): a robust z-score of each step's surprise
# against the previous SURPRISE_HISTORY steps; a change where it exceeds SURPRISE_Z.
SURPRISE_HISTORY = 24
SURPRISE_Z = 4.0
SURPRISE_MIN_HISTORY = 6
MERGE_WINDOW_S = 1.0


def surprise(preds: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """s[k] = ||pred[k-1] - F[k]||^2; s[0] = 0 (nothing predicted it)."""
    s = np.zeros(len(seq), dtype=np.float64)
    if len(seq) > 1:
        s[1:] = ((preds[:-1] - seq[1:]) ** 2).sum(-1)
    return s


def robust_z(s: np.ndarray, history: int = SURPRISE_HISTORY) -> np.ndarray:
    z = np.zeros_like(s)
    for k in range(len(s)):
        hist = s[max(0, k - history) : k]
        if len(hist) < SURPRISE_MIN_HISTORY:
            continue
        med = np.median(hist)
        mad = np.median(np.abs(hist - med)) * 1.4826 + 1e-3
        z[k] = (s[k] - med) / mad
    return z


def detect_changes(s: np.ndarray, level: int, threshold: float | None = None, history: int | None = None) -> list[tuple[float, float]]:
    """(time_s, z) of changes at one level. A change at step k is placed at the middle of the
    newest hop of its window (where the new material entered)."""
    threshold = SURPRISE_Z if threshold is None else threshold
    z = robust_z(s, SURPRISE_HISTORY if history is None else history)
    hop, win = HOP_FRAMES[level], WINDOW_FRAMES[level]
    k0 = int(np.ceil(win / hop)) - 1
    out = []
    for k in range(len(z)):
        if z[k] > threshold and (k + 1 >= len(z) or z[k] >= z[k + 1]) and (k == 0 or z[k] > z[k - 1]):
            t = ((k + k0 + 1) * hop - hop / 2) / features.FRAME_RATE
            out.append((t, float(z[k])))
    return out


def merge_changes(per_level: list[list[tuple[float, float]]]) -> list[float]:
    """Strongest first, dropping any within MERGE_WINDOW_S of a kept one."""
    events = sorted((e for lvl in per_level for e in lvl), key=lambda e: -e[1])
    kept: list[float] = []
    for t, _ in events:
        if all(abs(t - k) > MERGE_WINDOW_S for k in kept):
            kept.append(t)
    return sorted(kept)


def boundary_f1(reference: list[float], estimated: list[float], tolerance: float) -> tuple[float, float, float]:
    """Precision, recall, F1 with one-to-one matching (greedy by distance)."""
    pairs = sorted((abs(r - e), i, j) for i, r in enumerate(reference) for j, e in enumerate(estimated) if abs(r - e) <= tolerance)
    used_r, used_e, hits = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
            hits += 1
    p = hits / len(estimated) if estimated else 0.0
    r = hits / len(reference) if reference else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def run_levels(tower, seqs):
    return run_tower(tower, seqs)


def token_consistency(frame_net, encoders, items) -> dict:
    """Per scale: how often windows one true period apart (no change between or inside them) share
    a token, against how often two random windows of the same piece do."""
    rng = np.random.default_rng(0)
    out = {}
    for i, enc in enumerate(encoders):
        same, chance = [], []
        for it in items:
            if not it.truth:
                continue
            locked = [l["period_s"] for l in it.truth["layers"] if l["name"] != "texture"]
            if not locked:
                continue
            period = int(round(max(locked) * features.FRAME_RATE))
            spans = [(c["start_s"] * features.FRAME_RATE, c["end_s"] * features.FRAME_RATE) for c in it.truth["changes"]]
            w = enc.window
            n = len(it.logmel)
            with torch.no_grad():
                emb = frame_net(torch.from_numpy(it.logmel))
            ends, pairs = [], []
            for e in range(w, n - period, max(1, HOP_FRAMES[i])):
                a, b = e - w, e + period
                if any(not (b <= s or a >= t) for s, t in spans):
                    continue
                pairs.append((e, e + period))
            if not pairs:
                continue
            pairs = [pairs[k] for k in rng.choice(len(pairs), size=min(60, len(pairs)), replace=False)]
            ends = [e for p in pairs for e in p]
            with torch.no_grad():
                v = enc.vector(torch.stack([emb[e - w : e] for e in ends]))
                tok = enc.token(v).numpy()
            same += list(tok[0::2] == tok[1::2])
            perm = rng.permutation(len(tok))
            chance += list(tok == tok[perm])
        out[f"{SCALES_S[i]:g}s"] = {
            "one_period_apart": round(float(np.mean(same)), 3) if same else None,
            "random_pairs": round(float(np.mean(chance)), 3) if chance else None,
            "pairs": len(same),
        }
    return out


def tune_detection(tower, items, seqs, log) -> dict:
    """Chooses the surprise threshold and history on *training* pieces (never the development
    ones the figures are reported on): the pair with the best mean boundary F1 at 3 s."""
    global SURPRISE_Z, SURPRISE_HISTORY
    synth = [(it, s) for it, s in zip(items, seqs) if it.truth][:24]
    surprises = []
    for it, sq in synth:
        preds, _ = run_levels(tower, sq)
        surprises.append([surprise(preds[i], sq[i]) for i in range(len(SCALES_S))])
    best = None
    for history in (16, 24, 48):
        for z in (3.0, 4.0, 6.0, 8.0, 12.0, 16.0):
            f = []
            for (it, _), su in zip(synth, surprises):
                per_level = [detect_changes(su[i], i, z, history) for i in range(len(SCALES_S))]
                f.append(boundary_f1(it.truth["boundaries_s"], merge_changes(per_level), 3.0)[2])
            score = float(np.mean(f))
            if best is None or score > best[0]:
                best = (score, z, history)
    SURPRISE_Z, SURPRISE_HISTORY = best[1], best[2]
    log(f"change detection tuned on {len(synth)} training pieces: z > {SURPRISE_Z}, history {SURPRISE_HISTORY} (train F1@3s {best[0]:.3f})")
    return {"surprise_z": SURPRISE_Z, "surprise_history": SURPRISE_HISTORY, "train_f1_3s": round(best[0], 3)}


def use_detection(params: dict) -> None:
    global SURPRISE_Z, SURPRISE_HISTORY
    SURPRISE_Z, SURPRISE_HISTORY = params["surprise_z"], params["surprise_history"]


def evaluate_all(frame_net, encoders, towers: dict, dev_items, dev_seqs, log, tuned: dict) -> dict:
    results: dict = {"towers": {}, "dev_items": len(dev_items)}
    synth = [(it, s) for it, s in zip(dev_items, dev_seqs) if it.truth]
    for name, tower in towers.items():
        use_detection(tuned[name])
        losses = [[] for _ in SCALES_S]
        f_half, f_three = [], []
        per_level_f3 = [[] for _ in SCALES_S]
        for it, seqs in zip(dev_items, dev_seqs):
            preds, _ = run_levels(tower, seqs)
            for i in range(len(SCALES_S)):
                if len(seqs[i]) > 1:
                    losses[i].append(float(((preds[i][:-1] - seqs[i][1:]) ** 2).sum(-1).mean()))
            if it.truth:
                per_level = [detect_changes(surprise(preds[i], seqs[i]), i) for i in range(len(SCALES_S))]
                ref = it.truth["boundaries_s"]
                est = merge_changes(per_level)
                f_half.append(boundary_f1(ref, est, 0.5)[2])
                f_three.append(boundary_f1(ref, est, 3.0)[2])
                for i in range(len(SCALES_S)):
                    per_level_f3[i].append(boundary_f1(ref, [t for t, _ in per_level[i]], 3.0)[2])
        results["towers"][name] = {
            "prediction_loss": {f"{s:g}s": round(float(np.mean(l)), 4) for s, l in zip(SCALES_S, losses)},
            "boundary_f1_0.5s": round(float(np.mean(f_half)), 3),
            "boundary_f1_3s": round(float(np.mean(f_three)), 3),
            "per_level_boundary_f1_3s": {f"{s:g}s": round(float(np.mean(l)), 3) for s, l in zip(SCALES_S, per_level_f3)},
        }
        log(f"tower {name}: {results['towers'][name]}")
    fh, ft = [], []
    for it, _ in synth:
        est = foote_novelty(it.logmel)
        fh.append(boundary_f1(it.truth["boundaries_s"], est, 0.5)[2])
        ft.append(boundary_f1(it.truth["boundaries_s"], est, 3.0)[2])
    results["baseline_foote"] = {"boundary_f1_0.5s": round(float(np.mean(fh)), 3), "boundary_f1_3s": round(float(np.mean(ft)), 3)}
    log(f"baseline Foote novelty: {results['baseline_foote']}")
    results["token_consistency"] = token_consistency(frame_net, encoders, [it for it, _ in synth])
    log(f"token consistency: {results['token_consistency']}")
    results["synthetic_dev_pieces"] = len(synth)
    return results


def choose_tower(results: dict) -> str:
    """Higher change-detection F1 (3 s, then 0.5 s) wins; lower mean prediction loss breaks ties."""
    def key(name):
        r = results["towers"][name]
        return (r["boundary_f1_3s"], r["boundary_f1_0.5s"], -float(np.mean(list(r["prediction_loss"].values()))))
    return max(results["towers"], key=key)
