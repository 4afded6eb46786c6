"""The period head: gradient-boosted trees scoring the candidate periods Strata's layer sieve weighs.

Each round, the sieve (`plugin/src/layers/patterns.rs`) groups its channels' votes into
candidate periods and takes the shortest that its rules accept as the next layer. The rules lose
quiet layers nested in louder ones' bands and accept multiples and divisors of true periods; the
head, trained on the synthetic truth, adds the candidates they pass over that look like a layer's
period and refuses those they accept that do not. Its features are Strata's own
(`strata analyze --candidates` writes them), so Python never re-implements the sieve.

Training is two passes (the second on the rounds the head itself leads to, so it learns from
the situations it creates, as in DAgger):

1. analyse the training pieces with the rules alone and note every candidate;
2. fit the head on them; analyse again with it; fit again on both passes' candidates.

A candidate is labelled a period if it lies within 3 % of a true layer period that no layer found
in an earlier round already matches (the figure `layer_metrics.py` scores). The training pieces
are synthetic seeds 7 to 24 and 40 to 59; seeds 1 to 6, 25 to 39 and 60 to 79 and the lmms demos
stay unseen.

    python -m strata_models.period_head --strata ../target/release/strata
        # writes heads/period_head.json and lists it in manifest.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

#: Synthetic seeds the head is trained on: 456 pieces. The evaluation uses 1 to 6 and 25 to 39;
#: seeds 60 to 79 chose this set, the model and its thresholds (see models/README.md, "The period
#: head").
TRAIN_SEEDS = tuple(range(7, 25)) + tuple(range(40, 60))
PIECES_PER_SEED = 12
#: Boosting rounds (trees) and leaves per tree: scikit-learn's defaults, which gave the best
#: ranking of the validation seeds' candidates of those tried (see models/README.md).
TREES = 100
LEAVES = 31
#: Training rows written beside the trees with scikit-learn's probabilities, for the Rust test.
CHECK_ROWS = 16
#: Periods within this relative distance are the same (as in layer_metrics.py).
SAME_PERIOD = 0.03
HEAD_FILE = "heads/period_head.json"
#: The change head's file (`models/tools/change_head.py`), listed beside the period head's.
CHANGE_HEAD_FILE = "heads/change_head.json"
#: The attribution head's file (`models/tools/attribution_head.py`), listed beside them.
ATTRIBUTION_HEAD_FILE = "heads/attribution_head.json"
MODELS = Path(__file__).resolve().parents[1]


def near(a: float, b: float) -> bool:
    return abs(a - b) <= SAME_PERIOD * b


def labelled(candidates: list[dict], true_periods: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of one piece's candidates (`candidates.jsonl` rows)."""
    found_before: dict[int, list[float]] = {}
    for c in candidates:
        found_before.setdefault(c["round"], [])
    for c in candidates:
        if c["chosen"]:
            for r in found_before:
                if r > c["round"]:
                    found_before[r].append(c["period_s"])
    x, y = [], []
    for c in candidates:
        unfound = [p for p in true_periods if not any(near(f, p) for f in found_before[c["round"]])]
        x.append(c["features"])
        y.append(any(near(c["period_s"], p) for p in unfound))
    return np.asarray(x, float).reshape(-1, len(candidates[0]["features"]) if candidates else 0), np.asarray(y, bool)


def fit(x: np.ndarray, y: np.ndarray, trees: int = TREES, leaves: int = LEAVES, learning_rate: float = 0.1) -> dict:
    """A head's trees, as `plugin/src/layers/heads.rs` reads them, with rows of `x` and
    scikit-learn's probabilities for them (`check`), which the Rust side's test reproduces. The
    change head (`models/tools/change_head.py`) is fitted here too, with its own sizes."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=trees, max_leaf_nodes=leaves, learning_rate=learning_rate,
                                           random_state=0).fit(x, y)
    exported = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        exported.append({
            "feature": [int(f) if not l else 0 for f, l in zip(nodes["feature_idx"], leaf)],
            "threshold": [float(t) if not l else 0.0 for t, l in zip(nodes["num_threshold"], leaf)],
            "left": [int(c) for c in nodes["left"]],
            "right": [int(c) for c in nodes["right"]],
            "leaf": leaf.tolist(),
            "value": [float(v) if l else 0.0 for v, l in zip(nodes["value"], leaf)],
        })
    baseline = float(np.ravel(model._baseline_prediction)[0])
    rows = np.random.default_rng(0).choice(len(x), CHECK_ROWS, replace=False)
    head = {"baseline": baseline, "trees": exported,
            "check": [{"features": x[i].tolist(), "probability": float(model.predict_proba(x[i:i + 1])[0, 1])} for i in rows]}
    # The trees walked here as the plugin walks them must give scikit-learn's logits.
    ours = np.array([baseline + sum(walk(t, row) for t in exported) for row in x[rows]])
    theirs = model.decision_function(x[rows])
    if not np.allclose(ours, theirs, atol=1e-9):
        raise RuntimeError(f"fit: the exported trees disagree with scikit-learn ({ours} against {theirs})")
    return head


def walk(tree: dict, x: np.ndarray) -> float:
    """The value of the leaf of `tree` that features `x` reach (as `heads.rs` walks it)."""
    node = 0
    while not tree["leaf"][node]:
        node = tree["left"][node] if x[tree["feature"][node]] <= tree["threshold"][node] else tree["right"][node]
    return tree["value"][node]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def list_files(manifest: dict, folder: Path) -> None:
    """Lists every model file of `folder` in `manifest` with its sha256, and names the set by them."""
    files = sorted(folder.glob("onnx/*.onnx"))
    for key, relative in (("period_head", HEAD_FILE), ("change_head", CHANGE_HEAD_FILE),
                          ("attribution_head", ATTRIBUTION_HEAD_FILE)):
        if (folder / relative).exists():
            files.append(folder / relative)
            manifest[key] = relative
        else:
            manifest.pop(key, None)
    manifest["files"] = {str(f.relative_to(folder)): sha256(f) for f in files}
    manifest["id"] = "strata-" + hashlib.sha256("".join(sha256(f) for f in files).encode()).hexdigest()[:12]


def model_folder(dest: Path, head: dict | None) -> Path:
    """A copy of the committed model folder (ONNX files linked) with `head`, or none."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "onnx").symlink_to(MODELS / "onnx")
    if head is not None:
        (dest / "heads").mkdir()
        (dest / HEAD_FILE).write_text(json.dumps(head))
    manifest = json.loads((MODELS / "manifest.json").read_text())
    list_files(manifest, dest)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dest


def traced(strata: Path, models: Path, pieces: list[Path], out: Path, trace: str,
           label: Callable[[list[dict], Path], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Analyses every piece with `models` (`strata analyze --candidates`, into `out`) and returns
    the rows of its `trace` file (`candidates.jsonl`, `attributions.jsonl`) as `label` labels
    them from the piece's folder, all pieces' together."""
    def one(piece: Path) -> tuple[np.ndarray, np.ndarray]:
        dest = out / piece.parent.name / piece.name
        subprocess.run([str(strata), "analyze", "--quiet", "--candidates", "--models", str(models),
                        "--out", str(dest), str(piece / "mix.wav")], check=True, capture_output=True)
        rows = [json.loads(line) for line in (dest / trace).read_text().splitlines() if line]
        return label(rows, piece)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        parts = [p for p in pool.map(one, pieces) if len(p[1])]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def candidates(strata: Path, models: Path, pieces: list[Path], out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Analyses every piece with `models` and returns its candidates, labelled."""
    def label(rows: list[dict], piece: Path) -> tuple[np.ndarray, np.ndarray]:
        truth = json.loads((piece / "truth.json").read_text())
        return labelled(rows, [l["period_s"] for l in truth["layers"] if l.get("period_s")])

    return traced(strata, models, pieces, out, "candidates.jsonl", label)


def arguments(description: str, name: str) -> argparse.ArgumentParser:
    """The arguments every head's training takes (the model folder, where the pieces are); the
    head's own are added to what this returns. `name` says whose errors they are."""
    ap = argparse.ArgumentParser(prog=name, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=MODELS, help="the model folder to write the head into")
    ap.add_argument("--pieces", type=Path, help="where the training pieces are (written there once if missing; "
                    "default: a temporary folder, mixes and truth only)")
    return ap


def training_pieces(out: Path, root: Path, name: str, seeds: tuple[int, ...] = TRAIN_SEEDS) -> list[Path]:
    """The pieces of `seeds` (the training seeds unless told) under `root` (written there once,
    mixes and truth only: the stems are not needed, and the evaluation cache would hold 14 GB of
    them), after checking that `out` is a model folder to list a head in."""
    from .eval_layers import pieces as synthetic_pieces

    if not (out / "manifest.json").exists():
        sys.exit(f"{name}: {out} has no manifest.json to list the head in (give a model folder)")
    return sorted(p for seed in seeds
                  for p in synthetic_pieces(seed, PIECES_PER_SEED, root, stems=False).iterdir()
                  if (p / "truth.json").exists())


def write_head(out: Path, relative: str, head: dict, training_key: str, training: dict) -> None:
    """Writes `head` to `out/relative` and lists it, with its checksum and `training` (under
    `training_key`), in the folder's manifest."""
    (out / "heads").mkdir(parents=True, exist_ok=True)
    (out / relative).write_text(json.dumps(head, separators=(",", ":")) + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    list_files(manifest, out)
    manifest[training_key] = training
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main() -> None:
    ap = arguments(__doc__, "period_head")
    ap.add_argument("--strata", type=Path, required=True, help="the strata binary (release build)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pieces = training_pieces(args.out, args.pieces or tmp / "pieces", "period_head")
        x1, y1 = candidates(args.strata, model_folder(tmp / "rules", None), pieces, tmp / "pass1")
        head = fit(x1, y1)
        x2, y2 = candidates(args.strata, model_folder(tmp / "head", head), pieces, tmp / "pass2")
        head = fit(np.concatenate([x1, x2]), np.concatenate([y1, y2]))
    write_head(args.out, HEAD_FILE, head, "period_head_training",
               {"seeds": list(TRAIN_SEEDS), "pieces": len(pieces), "candidates": int(len(y1) + len(y2)),
                "positive": int(y1.sum() + y2.sum())})
    print(f"period head: {len(y1) + len(y2)} candidates from {len(pieces)} pieces -> {args.out / HEAD_FILE}")


if __name__ == "__main__":
    main()
