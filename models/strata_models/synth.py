"""Synthetic multi-layer pieces with exact ground truth.

Each piece stacks four to six layers, each repeating at its own period: hats every beat or half
beat, drums every bar (or two), a bass riff every one to three bars, an arpeggio every three or
six beats (a polymeter against the bar), chords every four or eight bars, and free-running layers
whose period owes nothing to the tempo (a drone swelling every 5 to 12 s, a noise texture drifting
every 10 to 40 s). Tempi run from 80 to 160 BPM, so periods span about 0.2 s to 40 s.

A few times per piece one layer changes its parameters for a while, as producers do: its pitch,
its filter, its density (hits or notes added or removed), its timbre, its loudness; it drops out
and comes back; or it switches to a variant or a new pattern. Changes of tempo-locked layers
start and end on bar lines; free layers change anywhere. The truth records every layer's period
and every change's layer, kind, start and end, and each layer's stem is kept (stems sum to the
mix exactly).

    python -m strata_models.synth --out DIR --count N --seed S
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16_000

#: Every kind of change a layer can go through.
CHANGE_KINDS = ("pitch", "filter", "density", "timbre", "loudness", "dropout", "pattern")


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
    if at >= len(out) or at < 0:
        return
    n = min(len(sound), len(out) - at)
    out[at : at + n] += sound[:n]


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """One-pole low-pass."""
    a = np.exp(-2 * np.pi * cutoff_hz / SAMPLE_RATE)
    return lfilter([1 - a], [1, -a], x)


def _osc(kind: int, f: float, n: int) -> np.ndarray:
    """Oscillator `kind`: 0 saw, 1 square, 2 triangle-ish (sine with a touch of 3rd harmonic)."""
    t = np.arange(n) / SAMPLE_RATE
    ph = (t * f) % 1.0
    if kind == 0:
        return 2 * ph - 1
    if kind == 1:
        return np.where(ph < 0.5, 1.0, -1.0)
    return np.sin(2 * np.pi * f * t) + 0.2 * np.sin(6 * np.pi * f * t)


@dataclass
class Variant:
    """A layer's parameters at one moment; a change swaps the normal variant for another."""

    transpose: int = 0
    cutoff: float = 1.0  # multiplies the layer's filter cutoff
    density: float = 1.0  # < 1 drops hits or notes, > 1 adds some
    timbre: int = 0  # oscillator or noise colour
    gain: float = 1.0
    pattern: int = 0  # which of the layer's patterns


def changed_variant(kind: str, rng: np.random.Generator) -> Variant:
    if kind == "pitch":
        return Variant(transpose=int(rng.choice([-7, -5, -3, 3, 5, 7])))
    if kind == "filter":
        return Variant(cutoff=float(rng.choice([0.25, 0.4, 2.5, 4.0])))
    if kind == "density":
        return Variant(density=float(rng.choice([0.4, 1.8])))
    if kind == "timbre":
        return Variant(timbre=1)
    if kind == "loudness":
        return Variant(gain=float(rng.choice([0.35, 2.2])))
    if kind == "dropout":
        return Variant(gain=0.0)
    return Variant(pattern=1)


class Layers:
    """Generators for each layer kind. Each returns the layer's audio for the whole piece, given a
    function telling which variant of its parameters is active at a time."""

    def __init__(self, rng: np.random.Generator, n: int, beat_s: float, root: int):
        self.rng, self.n, self.beat_s, self.root = rng, n, beat_s, root
        self.bar_s = 4 * beat_s

    def _steps(self, period_s: float, steps: int, variant_at, hit) -> np.ndarray:
        """Calls `hit(out, at_sample, step_index, variant)` on a grid of `steps` per period.
        Density changes drop or add hits deterministically per step, so the layer still repeats
        within a changed stretch."""
        out = np.zeros(self.n)
        keep = self.rng.random(steps)
        k = 0
        while (t := k * period_s / steps) < self.n / SAMPLE_RATE:
            v = variant_at(t)
            j = k % steps
            if v.density >= 1.0 or keep[j] < v.density:
                hit(out, int(t * SAMPLE_RATE), j, v, False)
            if v.density > 1.0 and keep[j] < v.density - 1.0:
                hit(out, int((t + 0.5 * period_s / steps) * SAMPLE_RATE), j, v, True)
            k += 1
        return out

    def hats(self, period_s: float, variant_at) -> np.ndarray:
        rng = self.rng
        steps = int(rng.choice([2, 4]))
        pats = [rng.uniform(0.2, 1.0, steps) * (rng.random(steps) < 0.85) + 0.05 for _ in range(2)]
        bright = rng.uniform(4500, 7000)
        m = int(0.04 * SAMPLE_RATE)
        bursts = [rng.standard_normal(m) * _env(m, 0.001, d) for d in (0.012, 0.03)]

        def hit(out, at, j, v, extra):
            burst = bursts[v.timbre]
            # A high-pass: the burst less its low-passed part. The corner sits well below
            # Nyquist (a one-pole low-pass near 8 kHz passes nearly everything, and the hats
            # would vanish).
            burst = burst - _lowpass(burst, min(bright * v.cutoff, 7500) / 4)
            amp = 0.3 if extra else pats[v.pattern][j]
            _place(out, 0.5 * v.gain * amp * burst, at)

        return self._steps(period_s, steps, variant_at, hit)

    def drums(self, period_s: float, variant_at) -> np.ndarray:
        rng = self.rng
        steps = 16 * max(1, round(period_s / self.bar_s))
        pats = []
        for _ in range(2):
            kick = rng.random(steps) < 0.25
            kick[0] = True
            snare = rng.random(steps) < 0.15
            snare[4::16] = snare[12::16] = True
            pats.append((kick, snare))
        klen, slen = int(0.25 * SAMPLE_RATE), int(0.15 * SAMPLE_RATE)
        tk = np.arange(klen) / SAMPLE_RATE
        kicks = [np.sin(2 * np.pi * (f0 * tk + 60 * (1 - np.exp(-tk * 30)) / 30)) * _env(klen, 0.002, 0.09) for f0 in (50, 75)]
        snares = [rng.standard_normal(slen) * _env(slen, 0.001, d) for d in (0.04, 0.08)]

        def hit(out, at, j, v, extra):
            kick, snare = pats[v.pattern]
            if kick[j] and not extra:
                _place(out, 0.9 * v.gain * kicks[v.timbre], at)
            if snare[j] or (extra and j % 4 == 2):
                s = snares[v.timbre]
                _place(out, 0.35 * v.gain * (_lowpass(s, 3000 * v.cutoff) if v.cutoff != 1.0 else s), at)

        return self._steps(period_s, steps, variant_at, hit)

    def _melodic(self, period_s: float, variant_at, notes: int, octave: int, cutoff_hz: float, level: float, legato: float, pitches) -> np.ndarray:
        rng = self.rng
        timbres = [int(rng.integers(0, 3)), 0]
        timbres[1] = (timbres[0] + 1) % 3
        step = period_s / notes

        def hit(out, at, j, v, extra):
            pitch = pitches[v.pattern][j]
            if pitch is None:
                return
            dur = step * (0.5 if extra else legato)
            n = int(dur * SAMPLE_RATE)
            tone = _osc(timbres[v.timbre], _midi_hz(pitch + octave + v.transpose), n)
            tone = _lowpass(_lowpass(tone, cutoff_hz * v.cutoff), cutoff_hz * v.cutoff)
            _place(out, level * v.gain * tone * _env(n, 0.005, dur * 0.6), at)

        return self._steps(period_s, notes, variant_at, hit)

    def _riff(self, notes: int, rest: float) -> list[list]:
        rng, scale = self.rng, [0, 2, 3, 5, 7, 8, 10]
        pats = []
        for _ in range(2):
            p = [self.root + scale[i] if rng.random() > rest else None for i in rng.integers(0, 7, notes)]
            p[0] = self.root
            pats.append(p)
        return pats

    def bass(self, period_s: float, variant_at) -> np.ndarray:
        notes = 8 * max(1, round(period_s / self.bar_s))
        return self._melodic(period_s, variant_at, notes, -24, 700, 0.35, 0.9, self._riff(notes, 0.2))

    def arp(self, period_s: float, variant_at) -> np.ndarray:
        notes = 2 * max(1, round(period_s / self.beat_s))
        return self._melodic(period_s, variant_at, notes, 12, 3000, 0.12, 0.7, self._riff(notes, 0.1))

    def chords(self, period_s: float, variant_at) -> np.ndarray:
        rng = self.rng
        bars = max(1, round(period_s / self.bar_s))
        degrees = [0, 5, 3, 7, 8, 10]
        progs = []
        for _ in range(2):
            prog = [self.root + int(rng.choice(degrees)) for _ in range(bars)]
            prog[0] = self.root
            progs.append(prog)
        timbres = [2, 0]
        step = period_s / bars

        def hit(out, at, j, v, extra):
            n = int(step * (0.5 if extra else 1.0) * SAMPLE_RATE)
            t = np.arange(n) / SAMPLE_RATE
            f = [_midi_hz(progs[v.pattern][j] + iv + v.transpose) for iv in (0, 3, 7, 12)]
            tone = sum(_osc(timbres[v.timbre], fi, n) for fi in f)
            tone = _lowpass(tone, 2500 * v.cutoff)
            env = np.minimum(1, t / 0.3) * np.minimum(1, (n / SAMPLE_RATE - t) / 0.3)
            _place(out, 0.05 * v.gain * tone * env, at)

        return self._steps(period_s, bars, variant_at, hit)

    def _free(self, period_s: float, variant_at, source) -> np.ndarray:
        """A sustained layer shaped by a slow cycle of `period_s` seconds: its loudness swells and
        its filter opens once a period. Variants apply per 0.1 s block."""
        rng = self.rng
        t = np.arange(self.n) / SAMPLE_RATE
        phase = rng.uniform(0, 1)
        cyc = ((t / period_s + phase) % 1.0)
        swell = np.clip(np.minimum(cyc / 0.15, (1 - cyc) / 0.5), 0, 1) ** 1.5  # fast rise, slow fall
        block = SAMPLE_RATE // 10
        vs = [variant_at(x) for x in t[::block]]
        gain = np.repeat([v.gain for v in vs], block)[: self.n]
        out = source(Variant())
        for changed in {repr(v): v for v in vs if v != Variant()}.values():
            sel = np.repeat([v == changed for v in vs], block)[: self.n]
            out = np.where(sel, source(changed), out)
        return out * (0.15 + swell) * gain

    def drone(self, period_s: float, variant_at) -> np.ndarray:
        rng = self.rng
        base = self.root - 12 + int(rng.choice([0, 7]))

        def source(v: Variant):
            kind = 2 if v.timbre == 0 else 0
            tone = sum(_osc(kind, _midi_hz(base + iv + v.transpose), self.n) for iv in (0, 7))
            return 0.08 * _lowpass(tone, 1200 * v.cutoff)

        return self._free(period_s, variant_at, source)

    def texture(self, period_s: float, variant_at) -> np.ndarray:
        noise = self.rng.standard_normal(self.n)

        def source(v: Variant):
            lo = _lowpass(noise, 400 * v.cutoff)
            return 0.25 * (lo if v.timbre == 0 else _lowpass(noise, 2500 * v.cutoff))

        return self._free(period_s, variant_at, source)


#: Which changes make sense for which layer.
LAYER_CHANGES = {
    "hats": ("filter", "density", "timbre", "loudness", "dropout", "pattern"),
    "drums": ("filter", "density", "timbre", "loudness", "dropout", "pattern"),
    "bass": ("pitch", "filter", "density", "timbre", "loudness", "dropout", "pattern"),
    "arp": ("pitch", "filter", "density", "timbre", "loudness", "dropout", "pattern"),
    "chords": ("pitch", "filter", "timbre", "loudness", "dropout", "pattern"),
    "drone": ("pitch", "filter", "timbre", "loudness", "dropout"),
    "texture": ("filter", "timbre", "loudness", "dropout"),
}


def layer_periods(rng: np.random.Generator, beat: float) -> dict[str, float]:
    bar = 4 * beat
    return {
        "hats": beat * float(rng.choice([0.5, 1.0])),
        "drums": bar * float(rng.choice([1, 1, 2])),
        "bass": bar * float(rng.choice([1, 2, 2, 3])),
        "arp": beat * float(rng.choice([3, 6])),
        "chords": bar * float(rng.choice([4, 8])),
        "drone": float(rng.uniform(5, 12)),
        "texture": float(rng.uniform(10, 40)),
    }


def make_piece(rng: np.random.Generator, duration_s: float | None = None) -> Piece:
    """One random piece with its truth."""
    tempo = float(rng.uniform(80, 160))
    beat = 60.0 / tempo
    bar = 4 * beat
    periods = layer_periods(rng, beat)
    # Long enough for the longest layer to repeat at least twice.
    duration = duration_s or float(rng.uniform(60, 120))
    n = int(duration * SAMPLE_RATE)
    root = int(rng.integers(45, 57))
    gen = Layers(rng, n, beat, root)

    kinds = list(periods)
    count = int(rng.integers(4, 7))
    present = [str(k) for k in rng.choice(kinds, size=count, replace=False)]
    present = [k for k in kinds if k in present and 2 * periods[k] <= duration - 4]

    changes: list[Change] = []
    for _ in range(int(rng.integers(1, 5))):
        layer = str(rng.choice(present))
        p = periods[layer]
        locked = layer not in ("drone", "texture")
        # A change lasts at least one period (at least 4 s) and leaves time to hear the layer before.
        length = max(p, 4.0) * float(rng.uniform(1.0, 2.5))
        earliest, latest = max(2 * p, 6.0), duration - length - 3.0
        if latest <= earliest:
            continue
        start = float(rng.uniform(earliest, latest))
        if locked:
            start = bar * round(start / bar)
            length = bar * max(1, round(length / bar))
        end = min(start + length, duration - 2.0)
        if end - start < 2.0 or any(c.layer == layer and start < c.end_s + p and c.start_s < end + p for c in changes):
            continue
        kind = str(rng.choice(LAYER_CHANGES[layer]))
        changes.append(Change(layer, round(start, 4), round(end, 4), kind))

    stems = {}
    for layer in present:
        spans = [(c.start_s, c.end_s, changed_variant(c.kind, rng)) for c in changes if c.layer == layer]

        def variant_at(t, spans=spans):
            return next((v for a, b, v in spans if a <= t < b), Variant())

        stems[layer] = getattr(gen, layer)(periods[layer], variant_at)
    mix = sum(stems.values())
    peak = np.max(np.abs(mix)) + 1e-9
    gain = 0.8 / peak
    stems = {k: (v * gain).astype(np.float32) for k, v in stems.items()}
    mix = sum(stems.values()).astype(np.float32)
    changes.sort(key=lambda c: c.start_s)
    return Piece(mix, stems, {k: periods[k] for k in present}, changes, tempo)


def write_piece(piece: Piece, folder: Path, stems: bool = True) -> None:
    """The mix, its truth and (with `stems`) every layer's stem, into `folder`."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "mix.wav", piece.mix, SAMPLE_RATE, subtype="FLOAT")
    for name, stem in piece.stems.items() if stems else ():
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
