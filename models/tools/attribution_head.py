"""The attribution head: gradient-boosted trees that say which layer a change belongs to.

The change detector says where the music stops repeating and in which bands; the layer search
says which layers there are. The rules give each change to the layer whose bands overlap the
change's most, that strays most from its own repeats there, the longer of two alike
(`plugin/src/layers/attribution.rs`). Where layers share bands, a hats change goes to a bar-long
layer and a bass change to the drums' as often as not. The head reads 23 numbers per layer and
change, Strata's own (`strata analyze --candidates` writes them to `attributions.jsonl`, so Python
never re-implements them), and is trained on the synthetic truth to give the probability that
the layer is the one that changed; the engine gives each change to the layer it scores highest.

A change is labelled by the true change edges nearest its own start and end (within 3 s, the
tolerance `layer_metrics.py` scores the right layer at): a layer is the one that changed if its
period is within 3 % of the period of a layer changing there. Changes that lie near no true
edge, or where no layer found has the changed layer's period, teach nothing about the choice and
are left out. The training pieces are synthetic seeds 7 to 24, 40 to 59 and 100 to 159; seeds 1
to 6, 25 to 39 and 60 to 99 and the lmms demos stay unseen (60 to 79 chose the trees, see
models/README.md).

    python models/tools/attribution_head.py --strata target/release/strata
        # writes heads/attribution_head.json, lists it in manifest.json
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import shared_metrics  # noqa: E402  (beside this file)
from strata_models import period_head  # noqa: E402

#: The period head's training seeds and 60 more (100 to 159, used nowhere else): 1176 pieces.
#: A head trained on half the period head's seeds chose the right layer for 0.54-0.56 of seeds
#: 60-79's changes, on all of them for 0.58-0.59 (see models/README.md).
TRAIN_SEEDS = period_head.TRAIN_SEEDS + tuple(range(100, 160))
#: How far (seconds) a change's edge may lie from a true edge to be that change's.
MATCH_S = 3.0
#: Trees, leaves per tree and learning rate (seeds 60-79 chose them, see models/README.md).
TREES, LEAVES, LEARNING_RATE = 200, 31, 0.05
HEAD_FILE = period_head.ATTRIBUTION_HEAD_FILE


def labelled(records: list[dict], bounds: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The features of every layer weighed for every change that lies near a true edge and
    could go to a layer with the changed layer's period, and whether it is that layer."""
    changes: dict[int, list[dict]] = {}
    for r in records:
        changes.setdefault(r["change"], []).append(r)
    x, y = [], []
    for rows in changes.values():
        changed = set()
        for edge in {rows[0]["start_s"], rows[0]["end_s"]}:
            near = [b for b in bounds if abs(b[0] - edge) <= MATCH_S and b[1]]
            if near:
                changed.add(min(near, key=lambda b: abs(b[0] - edge))[1])
        labels = [any(period_head.near(r["period_s"], p) for p in changed) for r in rows]
        if any(labels):
            x.extend(r["features"] for r in rows)
            y.extend(labels)
    return np.asarray(x, float), np.asarray(y, bool)


def attributions(strata: Path, models: Path, pieces: list[Path], out: Path, metrics) -> tuple[np.ndarray, np.ndarray]:
    """Analyses every piece with `models` and returns its changes' layers, labelled."""
    def label(rows: list[dict], piece: Path) -> tuple[np.ndarray, np.ndarray]:
        _, bounds = metrics.truth_of(str(piece / "truth.json"))
        return labelled(rows, bounds)

    return period_head.traced(strata, models, pieces, out, "attributions.jsonl", label)


def main() -> None:
    ap = period_head.arguments(__doc__, "attribution_head")
    ap.add_argument("--strata", type=Path, required=True, help="the strata binary (release build)")
    args = ap.parse_args()
    metrics = shared_metrics.load(shared_metrics.DEFAULT_METRICS)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pieces = period_head.training_pieces(args.out, args.pieces or tmp / "pieces", "attribution_head", TRAIN_SEEDS)
        x, y = attributions(args.strata, args.out, pieces, tmp / "analyses", metrics)
    head = period_head.fit(x, y, trees=TREES, leaves=LEAVES, learning_rate=LEARNING_RATE)
    period_head.write_head(args.out, HEAD_FILE, head, "attribution_head_training",
                           {"seeds": list(TRAIN_SEEDS), "pieces": len(pieces), "layers_weighed": int(len(y)),
                            "positive": int(y.sum()), "match_s": MATCH_S})
    print(f"attribution head: {len(y)} layers weighed for changes of {len(pieces)} pieces -> {args.out / HEAD_FILE}")


if __name__ == "__main__":
    main()
