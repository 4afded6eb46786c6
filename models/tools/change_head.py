"""The change head: gradient-boosted trees that say, moment by moment, how likely a change's edge
is there, from the change detector's own novelty and loudness (`plugin/src/layers/novelty.rs`).

The detector's stretches, bursts and level steps say where the music stops repeating; their
edges land late or early where a change fades in or a note starts after the bar line, and a
change under the detector's thresholds is never reported. The head reads 94 numbers per moment
(10 a second: `novelty_features.moment_features`, which the engine computes the same way) and is
trained on the synthetic truth to give the probability that a true change edge lies within
`LABEL_S` of the moment. The engine moves each edge to the head's most likely moment near it,
drops a stretch's edge the head finds nothing near, and adds the head's confident edges where
nothing was reported (`plugin/src/layers/novelty.rs`, "The change head").

The features come from this folder's replica of the detector (`novelty_features.py`), so the
training needs no Strata build. The training pieces are the period head's, synthetic seeds 7 to
24 and 40 to 59; seeds 1 to 6, 25 to 39 and 60 to 99 and the lmms demos stay unseen (60 to 79
chose the features, the trees and the engine's thresholds; see models/README.md).

    python models/tools/change_head.py      # writes heads/change_head.json, lists it in manifest.json
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import novelty_features as nf  # noqa: E402  (beside this file)
import shared_metrics  # noqa: E402
from strata_models import period_head  # noqa: E402

TRAIN_SEEDS = period_head.TRAIN_SEEDS
PIECES_PER_SEED = period_head.PIECES_PER_SEED
#: A moment is labelled an edge if a true change edge lies within this many seconds of it: the
#: tolerance of the tighter of the two boundary F1s.
LABEL_S = 0.5
#: Trees, leaves per tree and learning rate (seeds 60-79 chose 300 at 0.05 over 100 at 0.1, see
#: models/README.md).
TREES, LEAVES, LEARNING_RATE = 300, 31, 0.05
HEAD_FILE = period_head.CHANGE_HEAD_FILE
#: Moments of made-up novelty and levels with their features as computed here, which the Rust
#: side's test computes again (`plugin/src/layers/edges.rs`).
FIXTURE_FILE = "fixtures/change_features.json"
FIXTURE_MOMENTS, FIXTURE_BANDS, FIXTURE_BINS = 48, nf.BANDS + nf.BASS_BANDS, 64


def write_fixture(path: Path) -> None:
    """Random looks and levels (seeded) and their `moment_features`, for the engine's test."""
    rng = np.random.default_rng(0)
    first = rng.normal(0, 2, (FIXTURE_MOMENTS, FIXTURE_BANDS)).round(3)
    last = (first + rng.normal(0, 1, first.shape) * (rng.random(first.shape) < 0.3)).round(3)
    moments = (rng.normal(-40, 8, (FIXTURE_MOMENTS, FIXTURE_BINS)).astype(np.float32)).round(2)
    x = nf.moment_features(first, last, moments.astype(np.float64))
    path.write_text(json.dumps({"first": first.ravel().tolist(), "last": last.ravel().tolist(), "bands": FIXTURE_BANDS,
                                "moments": moments.ravel().tolist(), "bins": FIXTURE_BINS,
                                "features": x.tolist()}, separators=(",", ":")) + "\n")


def labelled(piece: Path) -> tuple[np.ndarray, np.ndarray]:
    """One piece's moments: the head's features and whether a true edge is within `LABEL_S`."""
    audio, rate = sf.read(piece / "mix.wav", dtype="float32", always_2d=True)
    x = nf.moment_features(*nf.looks(audio, rate))
    _, bounds = shared_metrics.load(shared_metrics.DEFAULT_METRICS).truth_of(str(piece / "truth.json"))
    t = (np.arange(len(x)) + 0.5) / nf.MOMENT_RATE_HZ
    y = np.zeros(len(x), bool)
    for edge in {b for b, _ in bounds}:
        y |= np.abs(t - edge) <= LABEL_S
    return x, y


def main() -> None:
    args = period_head.arguments(__doc__, "change_head").parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pieces = period_head.training_pieces(args.out, args.pieces or Path(tmp) / "pieces", "change_head")
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            parts = list(pool.map(labelled, pieces))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    head = period_head.fit(x, y, trees=TREES, leaves=LEAVES, learning_rate=LEARNING_RATE)
    write_fixture(args.out / FIXTURE_FILE)
    period_head.write_head(args.out, HEAD_FILE, head, "change_head_training",
                           {"seeds": list(TRAIN_SEEDS), "pieces": len(pieces), "moments": int(len(y)),
                            "positive": int(y.sum()), "label_s": LABEL_S})
    print(f"change head: {len(y)} moments from {len(pieces)} pieces -> {args.out / HEAD_FILE}")


if __name__ == "__main__":
    main()
