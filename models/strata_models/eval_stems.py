"""Stem quality on the synthetic development pieces (which have true per-layer stems), against a
single-period REPET baseline computed in the same run.

    python -m strata_models.eval_stems --strata target/release/strata

For every true layer, the signal-to-distortion ratio SDR = 10 log10(|s|^2 / |s - s_hat|^2) of the
best-matching exported stem (plain SDR, no BSS-eval projections). Baseline: REPET (Rafii & Pardo)
with one period from the beat spectrum, giving a repeating part and the rest; each true layer is
scored against the better of the two.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import istft, stft

from . import data

N_FFT, HOP = 2048, 512


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    n = min(len(ref), len(est))
    ref, est = ref[:n].astype(np.float64), est[:n].astype(np.float64)
    return float(10 * np.log10((np.sum(ref**2) + 1e-12) / (np.sum((ref - est) ** 2) + 1e-12)))


def repet(mix: np.ndarray, sr: int) -> list[np.ndarray]:
    _, _, x = stft(mix, fs=sr, nperseg=N_FFT, noverlap=N_FFT - HOP)
    v = np.abs(x)
    power = v**2
    t = power.shape[1]
    # Beat spectrum: mean autocorrelation of each frequency row over lags.
    ac = np.array([np.mean(np.sum(power[:, : t - lag] * power[:, lag:], axis=1) / (t - lag)) for lag in range(t // 3)])
    lo = int(0.5 * sr / HOP)
    p = lo + int(np.argmax(ac[lo:])) if len(ac) > lo + 1 else max(1, t // 4)
    segments = int(np.ceil(t / p))
    padded = np.pad(v, ((0, 0), (0, segments * p - t)), constant_values=np.nan)
    model = np.nanmedian(padded.reshape(v.shape[0], segments, p), axis=1)
    model = np.tile(model, (1, segments))[:, :t]
    mask = np.minimum(model, v) / (v + 1e-12)
    _, rep = istft(mask * x, fs=sr, nperseg=N_FFT, noverlap=N_FFT - HOP)
    rep = rep[: len(mix)]
    rep = np.pad(rep, (0, len(mix) - len(rep)))
    return [rep, mix - rep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", type=Path, required=True)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    items = data.synthetic("dev", args.count, seed=2)
    strata_scores, base_scores, per_layer = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for it in items:
            folder = Path(it.audio_path).parent
            mix, sr = sf.read(it.audio_path, dtype="float32")
            out = Path(tmp) / it.name
            subprocess.run([str(args.strata), "export", "--quiet", "--out", str(out), it.audio_path], check=True, capture_output=True)
            stems = [sf.read(p, dtype="float32")[0] for p in sorted(out.glob("stem_*.wav"))]
            baseline = repet(mix, sr)
            for layer in it.truth["layers"]:
                ref = sf.read(folder / f"stem_{layer['name']}.wav", dtype="float32")[0]
                s = max(sdr(ref, e) for e in stems)
                b = max(sdr(ref, e) for e in baseline)
                strata_scores.append(s)
                base_scores.append(b)
                per_layer.setdefault(layer["name"], []).append((s, b))
    results = {
        "pieces": len(items),
        "true_layers": len(strata_scores),
        "strata_mean_sdr_db": round(float(np.mean(strata_scores)), 2),
        "repet_mean_sdr_db": round(float(np.mean(base_scores)), 2),
        "per_layer": {k: {"strata": round(float(np.mean([a for a, _ in v])), 2), "repet": round(float(np.mean([b for _, b in v])), 2), "n": len(v)} for k, v in per_layer.items()},
    }
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
