"""The change detector's features, ablated: Strata's novel stretches on log-mel bands against the
same detector on a frontend's learned frame embeddings, and on both; with and without the bass
view (`--bass`: a 256 ms spectrum from 30 to 250 Hz at 2 kHz, bins pooled in pairs, in four bands
beside the log-mel's, as `plugin/src/dsp/bass.rs` makes it); and the detector's second look at
several margins.

    python models/tools/novelty_features.py TRUTH_DIR [--bass] [--frontend NAME=ONNX ...] [--second-look S ...]

TRUTH_DIR/<piece>/ holds mix.wav and truth.json (a synthetic seed as `eval_layers` writes it, or
the lmms demos as `lmms_truth` does). For every piece and feature set, a replica of `plugin/src/layers/novelty.rs`'s novel
stretches (its level steps left out, for every feature set alike) finds the changes: frames pooled
to 10 moments a second, 16 bands (log-mel: 4 adjacent bins each, each bin's quiet raised to 20 dB
under its loud level; embeddings: 2 dimensions each), each moment's 1 s window against the
closest window 10 to 90 s away, a robust z per band, the mean of the two most novel bands,
stretches entering at z 3 and staying above 1.5 for at least 3 s, edges pulled in by 0.2 s
(start) and 0.45 s (end), each split where the bands it is novel in shift (the cosine of the
bands' mean novelty over 2 s either side, 0.5 s away, under 0.5; parts at least 2 s), the short
bursts over z 6 at least 3 s from them as instants, and no edge within 1 s of the piece's start
or end (the first look; the feature rows all use it), and with `--second-look` the same again
with matches inside a found stretch, widened by the margin, not counted. Change F1 at 0.5 s and at 3 s by the shared
`layer_metrics.py`. On the validation seeds 60-79 the first look scores 0.345 / 0.484 (Strata
before the second look, with its level steps: 0.356 / 0.495) and the second look at 5 s 0.355 /
0.501; with `--bass` (2026-12-07) the first look 0.379 / 0.553 and the second look at 5 s 0.372
/ 0.550 (the engine, with its level steps: 0.366 / 0.510 without the bass view, 0.383 / 0.561
with it). Those figures are from before the bursts, the end's 0.45 s pull (both 0.2 s then),
the splits and the ends; the engine's figures with them are in the README's Quality.

Needs numpy, scipy and soundfile, and onnxruntime for `--frontend`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from strata_models import data, features  # noqa: E402

import shared_metrics  # noqa: E402  (beside this file)

POOL_FRAMES = 5  # 50 frames a second pooled to 10 moments
BANDS = 16
CONTEXT_MOMENTS = 5  # ±0.5 s
EXCLUSION_MOMENTS = 100  # 10 s
REACH_MOMENTS = 900  # 90 s
FLOOR_BELOW_DB = 20.0
MIN_SPREAD_DB = 0.25
Z_ENTER, Z_STAY, MIN_STRETCH_S, JOIN_GAP_S, START_PULL_S, END_PULL_S = 3.0, 1.5, 3.0, 2.0, 0.2, 0.45
Z_BURST, BURST_MIN_MOMENTS, BURST_SEPARATION_S = 6.0, 2, 3.0
SHIFT_WINDOW_S, SHIFT_GAP_S, SHIFT_BELOW_COSINE, SHIFT_SEPARATION_S = 2.0, 0.5, 0.5, 2.0
ENDS_S = 1.0
FULL_Z = 12.0
MOMENT_RATE_HZ = features.FRAME_RATE / POOL_FRAMES


def logmel_db(logmel: np.ndarray) -> np.ndarray:
    """Log-mel in dB with each bin's quiet raised to its floor, as the detector sees it."""
    db = logmel * (10 / math.log(10))
    return np.maximum(db, np.quantile(db, 0.99, axis=0, method="closest_observation") - FLOOR_BELOW_DB)


BASS_N_FFT, BASS_MIN_HZ, BASS_MAX_HZ, BASS_BINS_PER_VALUE, BASS_BANDS = 4096, 30.0, 250.0, 2, 4
BASS_DECIMATION, BASS_TAPS_PER_DECIMATION = 8, 8


def bass_low_pass() -> np.ndarray:
    """The low-pass before the bass view's decimation: a Hann-windowed sinc cut at the decimated
    Nyquist frequency, 65 taps, unit gain at 0 Hz (`low_pass` in `plugin/src/dsp/bass.rs`)."""
    n = BASS_TAPS_PER_DECIMATION * BASS_DECIMATION + 1
    x = np.arange(n) - (n - 1) / 2
    cutoff = 0.5 / BASS_DECIMATION
    taps = np.sinc(2 * cutoff * x) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1)))
    return taps / taps.sum()


def bass_view(mono: np.ndarray, frames: int) -> np.ndarray:
    """The bass view in dB, one frame per log-mel frame, each heard around its log-mel frame: frame
    t's 256 ms end where log-mel frame t + lag ends (silence before the start), lag the window's
    extra half in hops (6), as `plugin/src/dsp/bass.rs` and the detector align them. Like it, the
    stream is low-passed and decimated by 8 first and the spectrum taken at 2 kHz."""
    hop, frame_len, d = features.HOP, features.N_FFT, BASS_DECIMATION
    n_fft = BASS_N_FFT // d
    lead = BASS_N_FFT - frame_len
    lag = round((lead / 2 + (BASS_TAPS_PER_DECIMATION * d) / 2) / hop)
    filtered = np.convolve(mono.astype(np.float64), bass_low_pass())[: len(mono)]
    decimated = filtered[d - 1 :: d]
    padded = np.concatenate([np.zeros(lead // d), decimated])
    count = max(0, min(frames, (len(padded) - n_fft) // (hop // d) + 1 - lag))
    starts = (np.arange(count) + lag) * (hop // d)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spectrum = np.abs(np.fft.rfft(padded[starts[:, None] + np.arange(n_fft)] * window, axis=1)) ** 2 * d * d / BASS_N_FFT
    hz_per_bin = features.SAMPLE_RATE / BASS_N_FFT
    first, last = math.ceil(BASS_MIN_HZ / hz_per_bin), math.floor(BASS_MAX_HZ / hz_per_bin)
    values = (last + 1 - first) // BASS_BINS_PER_VALUE
    kept = spectrum[:, first : first + values * BASS_BINS_PER_VALUE]
    pooled = kept.reshape(len(kept), values, BASS_BINS_PER_VALUE).mean(axis=2)
    return logmel_db(np.log(pooled + features.LOG_FLOOR))


def band_novelty(frames: np.ndarray, min_spread: float, regions: list[tuple[float, float]] = (), bands: int = BANDS) -> np.ndarray:
    """Per moment and band, the robust z of the distance to the closest far window; two moments
    inside the same one of `regions` (seconds) are not compared (the detector's second look).
    Band k holds bins k * bins // bands to (k + 1) * bins // bands."""
    n = len(frames) // POOL_FRAMES
    region = np.zeros(n, dtype=np.int64)
    for k, (start, end) in enumerate(regions):
        region[max(0, int(np.floor(start * MOMENT_RATE_HZ))) : max(0, int(np.ceil(end * MOMENT_RATE_HZ)))] = k + 1
    moments = frames[: n * POOL_FRAMES].reshape(n, POOL_FRAMES, -1).mean(axis=1)
    edges = [k * moments.shape[1] // bands for k in range(bands + 1)]
    nearest = np.full((n, bands), np.inf)
    for lag in range(EXCLUSION_MOMENTS + 1, min(REACH_MOMENTS, n - 1) + 1):
        pairs = n - lag
        diff = (moments[:pairs] - moments[lag:]) ** 2
        squared = np.stack([diff[:, a:b].mean(axis=1) for a, b in zip(edges, edges[1:])], axis=1)
        running = np.vstack([np.zeros((1, bands)), np.cumsum(squared, axis=0)])
        t = np.arange(pairs)
        lo, hi = np.maximum(t - CONTEXT_MOMENTS, 0), np.minimum(t + CONTEXT_MOMENTS + 1, pairs)
        window = (running[hi] - running[lo]) / (hi - lo)[:, None]
        window[(region[:pairs] != 0) & (region[:pairs] == region[lag:])] = np.inf
        nearest[:pairs] = np.minimum(nearest[:pairs], window)
        nearest[lag:] = np.minimum(nearest[lag:], window)
    distance = np.sqrt(nearest)
    z = np.zeros_like(distance)
    for k in range(bands):
        known = np.isfinite(distance[:, k])
        if known.sum() < 2:
            continue
        v = distance[known, k]
        median = np.median(v)
        z[known, k] = (v - median) / max(1.4826 * np.median(np.abs(v - median)), min_spread, 1e-9)
    return z


def top_two(band_z: np.ndarray) -> np.ndarray:
    """Each moment's score: the mean of its two most novel bands."""
    return np.sort(band_z, axis=1)[:, -2:].mean(axis=1)


def runs_above(score: np.ndarray, bar: float):
    """Each longest run of `score` above `bar`, as its first and last index, in order."""
    i = 0
    while i < len(score):
        if score[i] <= bar:
            i += 1
            continue
        first = i
        while i + 1 < len(score) and score[i + 1] > bar:
            i += 1
        yield first, i
        i += 1


def stretches(score: np.ndarray) -> list[tuple[float, float]]:
    """Runs above Z_STAY that pass Z_ENTER, at least MIN_STRETCH_S long, edges pulled in, joined
    where less than JOIN_GAP_S lies between them."""
    out: list[tuple[float, float]] = []
    start_pull, end_pull = START_PULL_S * MOMENT_RATE_HZ, END_PULL_S * MOMENT_RATE_HZ
    for a, b in runs_above(score, Z_STAY):
        if b - a + 1 < MIN_STRETCH_S * MOMENT_RATE_HZ or not (score[a : b + 1] > Z_ENTER).any():
            continue
        start, end = (a + start_pull) / MOMENT_RATE_HZ, (b + 1 - end_pull) / MOMENT_RATE_HZ
        if out and start - out[-1][1] < JOIN_GAP_S:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def bursts(score: np.ndarray, found: list[tuple[float, float]]) -> list[float]:
    """The peaks (seconds) of runs of at least two moments over Z_BURST, at least
    BURST_SEPARATION_S from every stretch in `found` and from the burst before."""
    out: list[float] = []
    for a, b in runs_above(score, Z_BURST):
        at = (a + int(np.argmax(score[a : b + 1])) + 0.5) / MOMENT_RATE_HZ
        apart = all(at <= s - BURST_SEPARATION_S or at >= e + BURST_SEPARATION_S for s, e in found)
        if b + 1 - a >= BURST_MIN_MOMENTS and apart and (not out or at - out[-1] > BURST_SEPARATION_S):
            out.append(at)
    return out


def split_where_bands_shift(found: list[tuple[float, float]], band_z: np.ndarray) -> list[tuple[float, float]]:
    """Each stretch split where the bands it is novel in shift: the cosine of each band's mean
    positive z over SHIFT_WINDOW_S before and after a moment (SHIFT_GAP_S away) under
    SHIFT_BELOW_COSINE, the lowest first, parts at least SHIFT_SEPARATION_S long."""
    sums = np.vstack([np.zeros((1, band_z.shape[1])), np.cumsum(np.clip(band_z, 0, None), axis=0)])
    window, gap = round(SHIFT_WINDOW_S * MOMENT_RATE_HZ), round(SHIFT_GAP_S * MOMENT_RATE_HZ)
    n = len(band_z)

    def cosine(x: np.ndarray, y: np.ndarray) -> float:
        norms = np.linalg.norm(x) * np.linalg.norm(y)
        return float(x @ y / norms) if norms > 0 else 1.0

    out: list[tuple[float, float]] = []
    for start, end in found:
        a, b = min(max(round(start * MOMENT_RATE_HZ), 0), n), min(max(round(end * MOMENT_RATE_HZ), 0), n)
        shifts = sorted(
            (cosine(sums[m - gap] - sums[m - gap - window], sums[m + gap + window] - sums[m + gap]), m)
            for m in range(a + gap + window, b - gap - window)
        )
        cuts: list[float] = []
        for c, m in shifts:
            if c >= SHIFT_BELOW_COSINE:
                break
            at = m / MOMENT_RATE_HZ
            if at - start >= SHIFT_SEPARATION_S and end - at >= SHIFT_SEPARATION_S and all(abs(at - u) >= SHIFT_SEPARATION_S for u in cuts):
                cuts.append(at)
        edges = [start, *sorted(cuts), end]
        out.extend(zip(edges, edges[1:]))
    return out


def away_from_ends(edges: list[float], duration_s: float) -> list[float]:
    """The change edges that lie at least ENDS_S from the start and the end of the piece (a
    stretch from the very start keeps its end, one to the very end its start)."""
    return [t for t in edges if ENDS_S <= t <= duration_s - ENDS_S]


SECOND_LOOK_MARGIN_S = 5.0
#: The change head's windows (moments) and its feature count, as `plugin/src/layers/novelty.rs`
#: computes them (`moment_features` there).
SCORE_WINDOWS, SHIFT_WINDOWS, LEVEL_WINDOWS = (3, 10, 30), (10, 20), (5, 10, 20)
POSITION_CAP_S = 10.0
#: The moments before and after whose look features a moment's row repeats (0.5 s either side).
CONTEXT_OFFSETS = (-5, 5)
LOOK_FEATURES = 2 * (4 + 3 * len(SCORE_WINDOWS))
CHANGE_FEATURES = (1 + len(CONTEXT_OFFSETS)) * LOOK_FEATURES + len(SHIFT_WINDOWS) + 4 * len(LEVEL_WINDOWS) + 2


def looks(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's per-band novelty at its first and its final look (log-mel bands, then the
    bass view's; the second look's when the first found stretches) and its moments in dB (each
    bin's quiet raised to its floor, `POOL_FRAMES` frames pooled), as the engine keeps them."""
    mono = data.to_model_rate(audio, rate)
    logmel = features.logmel(mono)
    db = logmel_db(logmel)
    bass = bass_view(mono, len(logmel))

    def with_bass(regions=()) -> np.ndarray:
        mel_z = band_novelty(db, MIN_SPREAD_DB, regions)
        below = np.zeros((len(mel_z), BASS_BANDS))  # no distance past the bass view's end
        scored = band_novelty(bass, MIN_SPREAD_DB, regions, BASS_BANDS)[: len(mel_z)]
        below[: len(scored)] = scored
        return np.hstack([mel_z, below])

    first = with_bass()
    found = stretches(top_two(first))
    final = with_bass([(a - SECOND_LOOK_MARGIN_S, b + SECOND_LOOK_MARGIN_S) for a, b in found]) if found else first
    n = len(first)
    moments = db[: n * POOL_FRAMES].reshape(n, POOL_FRAMES, -1).mean(axis=1)
    return first, final, moments


def before_after(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of `x` (moments first) over the `w` moments before each moment and over it and
    the `w - 1` after, each over the moments there are (0 before the first)."""
    n = len(x)
    sums = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    i = np.arange(n)
    lo, hi = np.maximum(i - w, 0), np.minimum(i + w, n)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (sums[i] - sums[lo]) / np.maximum(i - lo, 1).reshape(shape), (sums[hi] - sums[i]) / np.maximum(hi - i, 1).reshape(shape)


def moment_features(first: np.ndarray, final: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """The change head's `CHANGE_FEATURES` numbers for each moment: for each look, the most novel
    band, the mean of the two and of the four most novel and of all bands, and the two-band score
    over 0.3, 1 and 3 s before and after and their difference; the cosine of each band's mean
    positive novelty (first look) over 1 and 2 s before and after; the loudness of 16 bands over
    0.5, 1 and 2 s before and after (the largest change, the sum of the rises and of the falls,
    and the change of the mean power); the seconds from the start and to the end, capped; and the
    looks' numbers again for the moments `CONTEXT_OFFSETS` away (the first or last moment past
    the ends)."""
    n = len(first)
    cols = []
    for z in (first, final):
        ranked = np.sort(z, axis=1)
        score = ranked[:, -2:].mean(axis=1)
        cols += [ranked[:, -1], score, ranked[:, -4:].mean(axis=1), z.mean(axis=1)]
        for w in SCORE_WINDOWS:
            before, after = before_after(score, w)
            cols += [before, after, after - before]
    for w in SHIFT_WINDOWS:
        before, after = before_after(np.clip(first, 0, None), w)
        norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
        cols.append(np.where(norms > 0, (before * after).sum(axis=1) / np.maximum(norms, 1e-300), 1.0))
    bands = moments.reshape(n, BANDS, -1).mean(axis=2)
    for w in LEVEL_WINDOWS:
        before, after = before_after(bands, w)
        diff = after - before
        power = lambda x: 10 * np.log10(np.mean(10 ** (x / 10), axis=1) + 1e-12)
        cols += [np.abs(diff).max(axis=1), np.clip(diff, 0, None).sum(axis=1), np.clip(-diff, 0, None).sum(axis=1),
                 power(after) - power(before)]
    t = (np.arange(n) + 0.5) / MOMENT_RATE_HZ
    cols += [np.minimum(t, POSITION_CAP_S), np.minimum(t[-1] - t, POSITION_CAP_S)] if n else [t, t]
    looks = np.stack(cols[:LOOK_FEATURES], axis=1).reshape(n, LOOK_FEATURES)
    context = [looks[np.clip(np.arange(n) + offset, 0, max(n - 1, 0))] for offset in CONTEXT_OFFSETS]
    return np.hstack([np.stack(cols, axis=1).reshape(n, -1), *context]).reshape(n, CHANGE_FEATURES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--frontend", action="append", default=[], metavar="NAME=ONNX",
                        help="a frontend.onnx whose frame embeddings are tried (repeatable)")
    parser.add_argument("--bass", action="store_true",
                        help="also the rows with the bass view's bands beside the log-mel's (first look, and "
                             "each second look)")
    parser.add_argument("--second-look", type=float, action="append", default=[], metavar="SECONDS",
                        help="also the log-mel row with the detector's second look, found stretches widened "
                             "by SECONDS (repeatable; the shipped detector uses 5)")
    parser.add_argument("--metrics", type=Path, default=shared_metrics.DEFAULT_METRICS)
    args = parser.parse_args()
    lm = shared_metrics.load(args.metrics)
    frontends = {}
    for named in args.frontend:
        import onnxruntime as ort

        name, sep, path = named.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"--frontend wants NAME=path/to/frontend.onnx, got {named!r}")
        frontends[name] = ort.InferenceSession(path)
    pieces = sorted(p for p in args.truth.iterdir() if (p / "truth.json").exists() and (p / "mix.wav").exists())
    if not pieces:
        raise SystemExit(f"no piece in {args.truth} has mix.wav and truth.json")
    scores: dict[str, list] = {}
    for piece in pieces:
        audio, rate = sf.read(piece / "mix.wav", dtype="float32", always_2d=True)
        logmel = features.logmel(data.to_model_rate(audio, rate))
        db = logmel_db(logmel)
        z = {"log-mel bands (first look)": band_novelty(db, MIN_SPREAD_DB)}
        first = stretches(top_two(z["log-mel bands (first look)"]))
        for margin in args.second_look:
            z[f"log-mel bands, second look widened {margin:g} s"] = (
                band_novelty(db, MIN_SPREAD_DB, [(a - margin, b + margin) for a, b in first]) if first else z["log-mel bands (first look)"]
            )
        if args.bass:
            bass = bass_view(data.to_model_rate(audio, rate), len(logmel))

            def with_bass(mel_z: np.ndarray, regions=()) -> np.ndarray:
                below = np.zeros((len(mel_z), BASS_BANDS))  # no distance past the bass view's end
                scored = band_novelty(bass, MIN_SPREAD_DB, regions, BASS_BANDS)[: len(mel_z)]
                below[: len(scored)] = scored
                return np.hstack([mel_z, below])

            z["log-mel and bass-view bands (first look)"] = with_bass(z["log-mel bands (first look)"])
            first_with_bass = stretches(top_two(z["log-mel and bass-view bands (first look)"]))
            for margin in args.second_look:
                regions = [(a - margin, b + margin) for a, b in first_with_bass]
                z[f"log-mel and bass-view bands, second look widened {margin:g} s"] = (
                    with_bass(band_novelty(db, MIN_SPREAD_DB, regions), regions) if first_with_bass
                    else z["log-mel and bass-view bands (first look)"]
                )
        for name, session in frontends.items():
            emb = band_novelty(session.run(None, {"logmel": logmel})[0], 0.0)
            z[f"{name} embeddings"] = emb
            z[f"log-mel and {name} embeddings"] = np.hstack([z["log-mel bands (first look)"], emb])
        _, truth = lm.truth_of(str(piece / "truth.json"))
        for name, bands in z.items():
            score = top_two(bands)
            found = stretches(score)
            instants = bursts(score, found)
            edges = [t for span in split_where_bands_shift(found, bands) for t in span] + instants
            estimated = sorted({(round(t, 3), None) for t in away_from_ends(edges, len(score) / MOMENT_RATE_HZ)})
            scores.setdefault(name, []).append(lm.change_scores(truth, estimated)[:2])
    print(f"{len(pieces)} pieces; change F1 at 0.5 s / at 3 s")
    for name, per_piece in scores.items():
        print(f"{name}: " + " / ".join(f"{v:.3f}" for v in np.mean(per_piece, axis=0)))


if __name__ == "__main__":
    main()
