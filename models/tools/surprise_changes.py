"""The tower's surprise as a change detector, against Strata's own changes, on pieces with truth.

    python models/tools/surprise_changes.py TRUTH_DIR RESULT_DIR [--metrics layer_metrics.py]

TRUTH_DIR/<piece>/truth.json is the truth `layer_metrics.py` reads (a synthetic seed, or the
lmms demos written by `strata_models.lmms_truth`); RESULT_DIR/<piece>/strata.json is what
`strata analyze` wrote for that piece's mix.wav. Every lane of strata.json carries the tower's
surprise per step; a step whose surprise stands `z` robust deviations above its lane's median,
and above its two neighbours, is a change at the start of the step's window (the strongest of
any within 2 s), given to the most confident pattern layer of that lane. Printed, each scored by
the same `layer_metrics.py` (change F1 at 0.5 s, at 3 s, and with the right layer):

* Strata's changes as shipped (novel stretches and level steps, `plugin/src/layers/novelty.rs`);
* the tower's surprise alone, at z 3 and 5, from every lane and from the lanes of 2 s and up;
* Strata's changes with the surprise's added where Strata has none within 3 s.

Needs numpy.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import shared_metrics

#: Surprise peaks closer than this (seconds) are one change.
MERGE_S = 2.0
ALL_LANES = (0.2, 1.0, 2.0, 5.0, 10.0, 20.0)
LONG_LANES = (2.0, 5.0, 10.0, 20.0)


def surprise_changes(result: dict, z_min: float, lanes: tuple[float, ...]) -> list[tuple[float, float | None]]:
    """(time, period of the layer it is given to) for every surprise peak of `result`'s lanes."""
    peaks = []
    for lane in result["layers"]:
        if lane["scale_s"] not in lanes:
            continue
        times = np.asarray(lane["frames"]["time_s"], dtype=float)
        surprise = np.asarray(lane["frames"]["surprise"], dtype=float)
        if len(surprise) < 8:
            continue
        median = np.median(surprise)
        spread = 1.4826 * np.median(np.abs(surprise - median)) + 1e-9
        z = (surprise - median) / spread
        own = [p for p in result.get("patterns", []) if abs(p["scale_s"] - lane["scale_s"]) < 1e-9]
        period = max(own, key=lambda p: p["confidence"])["period_s"] if own else lane.get("period_s")
        for i in range(1, len(z) - 1):
            if z[i] > z_min and z[i] >= z[i - 1] and z[i] >= z[i + 1]:
                peaks.append((float(times[i] - lane["hop_s"]), period, float(z[i])))
    peaks.sort(key=lambda p: p[0])
    merged: list[tuple[float, float | None, float]] = []
    for peak in peaks:
        if merged and peak[0] - merged[-1][0] < MERGE_S:
            if peak[2] > merged[-1][2]:
                merged[-1] = peak
        else:
            merged.append(peak)
    return [(round(t, 3), period) for t, period, _ in merged]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--metrics", type=Path, default=shared_metrics.DEFAULT_METRICS)
    args = parser.parse_args()
    lm = shared_metrics.load(args.metrics)

    pieces = sorted(p.name for p in args.truth.iterdir() if (p / "truth.json").exists() and (args.results / p.name / "strata.json").exists())
    if not pieces:
        raise SystemExit(f"no piece has both {args.truth}/<piece>/truth.json and {args.results}/<piece>/strata.json")
    systems = {"Strata's changes": lambda r, ours: ours}
    for z_min in (3.0, 5.0):
        for name, lanes in (("every lane", ALL_LANES), ("lanes of 2 s and up", LONG_LANES)):
            systems[f"surprise alone, z {z_min:g}, {name}"] = lambda r, ours, z=z_min, l=lanes: surprise_changes(r, z, l)
    for z_min in (5.0, 7.0):
        systems[f"Strata's changes + surprise z {z_min:g} (every lane) where none within 3 s"] = (
            lambda r, ours, z=z_min: sorted(ours + [c for c in surprise_changes(r, z, ALL_LANES) if not any(abs(c[0] - t) <= 3.0 for t, _ in ours)])
        )
    scores: dict[str, list] = {name: [] for name in systems}
    for piece in pieces:
        _, truth = lm.truth_of(str(args.truth / piece / "truth.json"))
        path = args.results / piece / "strata.json"
        _, ours = lm.result_of(str(path))
        result = json.loads(path.read_text())
        for name, changes_of in systems.items():
            scores[name].append(lm.change_scores(truth, changes_of(result, ours)))
    print(f"{len(pieces)} pieces; change F1 at 0.5 s / at 3 s / right layer")
    for name, per_piece in scores.items():
        print(f"{name}: " + " / ".join(f"{v:.3f}" for v in np.mean(per_piece, axis=0)))


if __name__ == "__main__":
    main()
