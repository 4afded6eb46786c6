"""Synthetic multi-layer pieces with exact ground truth.

Each piece is a stack of layers that repeat at their own periods (hats every beat, drums every
bar, a bass riff every two bars, chords every eight bars, a texture drifting every 10 to 30 s),
mixed at the model sample rate. One to three times per piece a single layer changes (a new
pattern, or a pitch shift) for a while, starting on a bar line. The truth records every layer's
period and every change's start and end, and each layer's stem is kept, so stems sum to the mix.

    python -m strata_models.synth --out DIR --count N --seed S
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Change:
    layer: str
    start_s: float
    end_s: float
    kind: str


@dataclass
class Piece:
    mix: np.ndarray
    stems: dict[str, np.ndarray]
    periods: dict[str, float]
    changes: list[Change] = field(default_factory=list)
    tempo_bpm: float = 120.0

    def truth(self) -> dict:
        return {
            "sample_rate": SAMPLE_RATE,
            "duration_s": len(self.mix) / SAMPLE_RATE,
            "tempo_bpm": self.tempo_bpm,
            "layers": [{"name": k, "period_s": v} for k, v in self.periods.items()],
            "changes": [c.__dict__ for c in self.changes],
            # Boundaries: every time some layer starts or stops being changed.
            "boundaries_s": sorted({round(t, 4) for c in self.changes for t in (c.start_s, c.end_s)}),
        }


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    a = np.clip(t / max(attack, 1e-4), 0, 1)
    return a * np.exp(-np.maximum(t - attack, 0) / max(decay, 1e-4))


def _place(out: np.ndarray, sound: np.ndarray, at: int) -> None:
    if at >= len(out):
        return
    n = min(len(sound), len(out) - at)
    out[at : at + n] += sound[:n]


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    a = math.exp(-2 * math.pi * cutoff_hz / SAMPLE_RATE)
    y = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):  # one-pole; pieces are short enough
        acc = (1 - a) * v + a * acc
        y[i] = acc
    return y


class Layers:
    """Generators for each layer kind. Each returns the layer's audio for the whole piece, given a
    function telling which pattern variant is active at a time."""

    def __init__(self, rng: np.random.Generator, n: int, beat_s: float):
        self.rng, self.n, self.beat_s = rng, n, beat_s
        self.bar_s = 4 * beat_s

    def hats(self, period_s: float, variant_at) -> np.ndarray:
        rng, out = self.rng, np.zeros(self.n)
        steps = 4
        patterns = [rng.uniform(0.2, 1.0, steps) * (rng.random(steps) < 0.8) + 0.05 for _ in range(2)]
        brightness = [rng.uniform(5000, 7000), rng.uniform(2500, 4000)]
        t, k = 0.0, 0
        while t < self.n / SAMPLE_RATE:
            v = variant_at(t)
            amp = patterns[v][k % steps]
            burst = rng.standard_normal(int(0.04 * SAMPLE_RATE)) * _env(int(0.04 * SAMPLE_RATE), 0.001, 0.012)
            burst = burst - _lowpass(burst, brightness[v])  # high-passed noise
            _place(out, 0.5 * amp * burst, int(t * SAMPLE_RATE))
            t += period_s / steps
            k += 1
        return out

    def drums(self, period_s: float, variant_at) -> np.ndarray:
        rng, out = self.rng, np.zeros(self.n)
        steps = 16
        pats = []
        for _ in range(2):
            kick = rng.random(steps) < 0.3
            kick[0] = True
            snare = rng.random(steps) < 0.2
            snare[4] = snare[12] = True
            pats.append((kick, snare))
        klen = int(0.25 * SAMPLE_RATE)
        tk = np.arange(klen) / SAMPLE_RATE
        kick_snd = np.sin(2 * np.pi * (50 * tk + 60 * (1 - np.exp(-tk * 30)) / 30)) * _env(klen, 0.002, 0.09)
        slen = int(0.15 * SAMPLE_RATE)
        t, k = 0.0, 0
        while t < self.n / SAMPLE_RATE:
            v = variant_at(t)
            kick, snare = pats[v]
            at = int(t * SAMPLE_RATE)
            if kick[k % steps]:
                _place(out, 0.9 * kick_snd, at)
            if snare[k % steps]:
                _place(out, 0.35 * rng.standard_normal(slen) * _env(slen, 0.001, 0.04), at)
            t += period_s / steps
            k += 1
        return out

    def _notes(self, period_s: float, variant_at, notes_per_period: int, pitches, transpose, synth) -> np.ndarray:
        out = np.zeros(self.n)
        t, k = 0.0, 0
        step = period_s / notes_per_period
        while t < self.n / SAMPLE_RATE:
            v = variant_at(t)
            pitch = pitches[v][k % notes_per_period]
            if pitch is not None:
                _place(out, synth(pitch + transpose[v], step), int(t * SAMPLE_RATE))
            t += step
            k += 1
        return out

    def bass(self, period_s: float, variant_at, root: int, change_kind: str) -> np.ndarray:
        rng = self.rng
        scale = [0, 2, 3, 5, 7, 8, 10]
        base = [root - 24 + scale[i] if rng.random() < 0.8 else None for i in rng.integers(0, 7, 8)]
        base[0] = root - 24
        other = [root - 24 + scale[i] for i in rng.integers(0, 7, 8)] if change_kind == "pattern" else base
        transpose = [0, int(rng.choice([-5, -3, 3, 5, 7]))] if change_kind == "pitch" else [0, 0]

        def synth(m, dur):
            n = int(dur * 0.9 * SAMPLE_RATE)
            t = np.arange(n) / SAMPLE_RATE
            f = _midi_hz(m)
            saw = 2 * ((t * f) % 1.0) - 1
            return 0.35 * _lowpass(saw, 900) * _env(n, 0.005, dur * 0.5)

        return self._notes(period_s, variant_at, 8, [base, other], transpose, synth)

    def chords(self, period_s: float, variant_at, root: int, change_kind: str) -> np.ndarray:
        rng = self.rng
        degrees = [0, 5, 3, 7, 8, 10]
        prog = [root + int(rng.choice(degrees)) for _ in range(4)]
        prog[0] = root
        other = [root + int(rng.choice(degrees)) for _ in range(4)] if change_kind == "pattern" else prog
        transpose = [0, int(rng.choice([-2, 2, 5]))] if change_kind == "pitch" else [0, 0]

        def synth(m, dur):
            n = int(dur * SAMPLE_RATE)
            t = np.arange(n) / SAMPLE_RATE
            tone = sum(np.sin(2 * np.pi * _midi_hz(m + iv) * t) for iv in (0, 3, 7, 12))
            env = np.minimum(1, t / 0.3) * np.minimum(1, (dur - t) / 0.3)
            return 0.06 * tone * env

        return self._notes(period_s, variant_at, 4, [prog, other], transpose, synth)

    def texture(self, period_s: float, variant_at) -> np.ndarray:
        rng = self.rng
        noise = rng.standard_normal(self.n)
        t = np.arange(self.n) / SAMPLE_RATE
        lfo = 0.5 + 0.5 * np.sin(2 * np.pi * t / period_s + rng.uniform(0, 6.28))
        dark = _lowpass(noise, 400)
        bright = _lowpass(noise, 2500)
        v = np.array([variant_at(x) for x in t[:: SAMPLE_RATE // 10]]).repeat(SAMPLE_RATE // 10)[: self.n]
        mix = np.where(v > 0, bright, dark)
        return 0.25 * mix * (0.2 + lfo)


def make_piece(rng: np.random.Generator, duration_s: float | None = None) -> Piece:
    """One random piece with its truth."""
    tempo = float(rng.uniform(85, 150))
    beat = 60.0 / tempo
    bar = 4 * beat
    duration = duration_s or float(rng.uniform(50, 90))
    n = int(duration * SAMPLE_RATE)
    root = int(rng.integers(45, 57))
    gen = Layers(rng, n, beat)

    candidates = ["hats", "drums", "bass", "chords", "texture"]
    present = [c for c in candidates if rng.random() < 0.75]
    while len(present) < 2:
        present.append(str(rng.choice([c for c in candidates if c not in present])))
    periods = {
        "hats": beat * float(rng.choice([0.5, 1.0])),
        "drums": bar,
        "bass": 2 * bar,
        "chords": 8 * bar,
        "texture": float(rng.uniform(10, 30)),
    }
    changeable = [c for c in present if c != "texture" or True]
    changes: list[Change] = []
    for _ in range(int(rng.integers(1, 4))):
        layer = str(rng.choice(changeable))
        start = bar * int(rng.integers(4, max(5, int((duration - 20) / bar))))
        length = bar * int(rng.integers(4, 12))
        end = min(start + length, duration - bar)
        if end - start < 4 or any(c.layer == layer and not (end <= c.start_s or start >= c.end_s) for c in changes):
            continue
        kind = "pitch" if layer in ("bass", "chords") and rng.random() < 0.5 else "pattern"
        changes.append(Change(layer, float(start), float(end), kind))

    stems = {}
    for layer in present:
        spans = [(c.start_s, c.end_s) for c in changes if c.layer == layer]
        kind = next((c.kind for c in changes if c.layer == layer), "pattern")

        def variant_at(t, spans=spans):
            return int(any(a <= t < b for a, b in spans))

        f = getattr(gen, layer)
        if layer in ("bass", "chords"):
            stems[layer] = f(periods[layer], variant_at, root, kind)
        else:
            stems[layer] = f(periods[layer], variant_at)
    mix = sum(stems.values())
    peak = np.max(np.abs(mix)) + 1e-9
    gain = 0.8 / peak
    stems = {k: (v * gain).astype(np.float32) for k, v in stems.items()}
    mix = sum(stems.values()).astype(np.float32)
    changes = [c for c in changes if c.layer in present]
    return Piece(mix, stems, {k: periods[k] for k in present}, changes, tempo)


def write_piece(piece: Piece, folder: Path) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "mix.wav", piece.mix, SAMPLE_RATE, subtype="FLOAT")
    for name, stem in piece.stems.items():
        sf.write(folder / f"stem_{name}.wav", stem, SAMPLE_RATE, subtype="FLOAT")
    (folder / "truth.json").write_text(json.dumps(piece.truth(), indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for i in range(args.count):
        write_piece(make_piece(rng), args.out / f"synth_{args.seed:04d}_{i:03d}")
        print(f"wrote {args.out / f'synth_{args.seed:04d}_{i:03d}'}")


if __name__ == "__main__":
    main()
