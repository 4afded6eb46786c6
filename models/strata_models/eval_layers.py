"""Layer quality of the whole engine (`strata analyze` and `strata export`, the Rust code the
plugin runs) on synthetic pieces never trained or tuned on, beside baselines in the same run,
scored by the metrics Strata is judged by (`layer_metrics.py`, from the shared eval folder).

    python -m strata_models.eval_layers --strata target/release/strata \\
        [--seed 3 --count 12] [--previous OLD_STRATA] [--stems] [--out models/layers_eval.json]
    python -m strata_models.eval_layers --strata target/release/strata --seeds 30-39 \\
        [--previous OLD_STRATA] [--out models/layers_eval_seeds30_39.json]   # the mean of ten seeds
    python -m strata_models.eval_layers --strata target/release/strata --truth .cache/lmms_truth

Systems, each scored on the same pieces:
* `strata`: the binary given.
* `previous`: another Strata binary (say, the last release) for a before/after table.
* `tempo+foote`: librosa's tempo estimate, reporting the beat and the bar (4 beats) as periods,
  and Foote novelty (a checkerboard kernel on the log-mel self-similarity) as change times.
* stems: single-period REPET (the repeating part and the rest) beside Strata's stems, and the
  ideal-ratio-mask ceiling that `layer_metrics.py` computes from the true stems.

Seeds 1 and 2 are the training and tuning pieces (`data.build_corpus`, and the development set
the discovery's constants were chosen on); report on another seed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from . import baselines, data, features, synth

#: Where `layer_metrics.py` is found when not given: the shared folder beside the checkout.
DEFAULT_METRICS = Path(__file__).resolve().parents[3] / "shared" / "eval" / "layer_metrics.py"


def pieces(seed: int, count: int, root: Path | None = None, stems: bool = True) -> Path:
    """Writes (once) `count` synthetic pieces of `seed` under `root` (the evaluation cache by
    default), with their stems unless told not to, and returns their folder."""
    folder = (root or data.CACHE / "eval") / f"synth_{seed}"
    rng = np.random.default_rng(seed)
    for i in range(count):
        piece = folder / f"synth_{seed:04d}_{i:03d}"
        p = synth.make_piece(rng)  # always drawn, so piece i is the same whatever the count
        if not (piece / "truth.json").exists():
            synth.write_piece(p, piece, stems)
    return folder


def run_strata(binary: Path, truth: Path, out: Path, stems: bool) -> float:
    """Analyses (or exports) every piece into out/<piece>/; returns audio seconds per second."""
    audio_s = wall_s = 0.0
    for piece in sorted(p for p in truth.iterdir() if (p / "truth.json").exists()):
        command = "export" if stems else "analyze"
        extra = ["--replace"] if stems else []
        t0 = time.perf_counter()
        subprocess.run([str(binary), command, "--quiet", *extra, "--out", str(out / piece.name), str(piece / "mix.wav")],
                       check=True, capture_output=True)
        wall_s += time.perf_counter() - t0
        audio_s += json.loads((piece / "truth.json").read_text())["duration_s"]
    return audio_s / max(wall_s, 1e-9)


def run_tempo_foote(truth: Path, out: Path, stems: bool) -> None:
    """The baseline's results in `strata.json`'s shape (and REPET stems), one folder per piece."""
    import librosa

    from .eval_stems import repet

    for piece in sorted(p for p in truth.iterdir() if (p / "truth.json").exists()):
        y, sr = sf.read(piece / "mix.wav", dtype="float32")
        y = y.mean(axis=1) if y.ndim > 1 else y
        beat = 60.0 / float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[0])
        audio = y if sr == features.SAMPLE_RATE else data.to_model_rate(y, sr)
        changes = [{"time_s": t} for t in baselines.foote_novelty(features.logmel(audio))]
        layers = [{"period_s": beat, "changes": changes}, {"period_s": 4 * beat, "changes": []}]
        dest = out / piece.name
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "strata.json").write_text(json.dumps({"version": 1, "layers": layers}))
        if stems:
            for k, stem in enumerate(repet(y, sr)):
                sf.write(dest / f"stem_{k}.wav", stem, sr, subtype="FLOAT")


def score(metrics: Path, truth: Path, results: Path, stems: bool) -> dict:
    """The mean figures `layer_metrics.py` prints on its last line."""
    cmd = [sys.executable, str(metrics), str(truth), str(results)] + (["--stems", str(results)] if stems else [])
    last = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in (kv.split("=") for kv in last.split())}


def evaluate(systems: list[tuple[str, Path]], truth: Path, work: Path, metrics: Path, stems: bool) -> dict:
    """Every system's mean figures on the pieces of `truth`, tempo + Foote last."""
    table = {}
    for name, binary in systems:
        speed = run_strata(binary, truth, work / name, stems)
        table[name] = score(metrics, truth, work / name, stems) | {"x_real_time": round(speed, 1)}
    run_tempo_foote(truth, work / "tempo+foote", stems)
    table["tempo+foote"] = score(metrics, truth, work / "tempo+foote", stems)
    return table


def results_folder(name) -> Path:
    """Where the systems' results on one seed (or one truth folder) are written."""
    return data.CACHE / "eval" / f"results_{name}"


def seed_table(seed: int, count: int, systems: list[tuple[str, Path]], metrics: Path, stems: bool) -> dict:
    """`evaluate` on the first `count` synthetic pieces of `seed`."""
    return evaluate(systems, pieces(seed, count), results_folder(seed), metrics, stems)


def mean_table(tables: list[dict]) -> dict:
    """Each system's figures averaged over several seeds' tables (a figure missing from one is left out)."""
    return {system: {k: round(float(np.mean([t[system][k] for t in tables])), 4)
                     for k in tables[0][system] if all(k in t[system] for t in tables)}
            for system in tables[0]}


def seed_list(text: str) -> list[int]:
    """`30-39`, `3,4,25` or a mix of both, as a list of seeds."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            span = list(range(int(first), int(last or first) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a seed or a range of seeds: {part!r}") from None
        if not span:
            raise argparse.ArgumentTypeError(f"an empty range of seeds: {part!r}")
        seeds += span
    return seeds


def print_table(table: dict) -> None:
    names = [k for k in next(iter(table.values())) if k not in ("pieces",)]
    print("| system | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for system, row in table.items():
        print(f"| {system} | " + " | ".join(f"{row.get(n, float('nan')):.3f}" if n != "x_real_time" else str(row.get(n, "")) for n in names) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", type=Path, required=True, help="the strata binary")
    ap.add_argument("--previous", type=Path, help="another strata binary, scored beside it")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--seeds", type=seed_list,
                    help="several seeds (`30-39`, `3,4,25`): each scored as --seed is, the table their mean")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--stems", action="store_true", help="also export stems and score them")
    ap.add_argument("--metrics", type=Path, default=DEFAULT_METRICS, help="layer_metrics.py")
    ap.add_argument("--out", type=Path, help="write the table as JSON here")
    ap.add_argument("--truth", type=Path,
                    help="score these pieces (<piece>/mix.wav and truth.json, e.g. the lmms set of "
                         "`python -m strata_models.lmms_truth`) instead of synthetic ones")
    args = ap.parse_args()
    if not args.metrics.exists():
        sys.exit(f"eval_layers: no layer_metrics.py at {args.metrics} (give --metrics)")
    systems = [("strata", args.strata)] + ([("previous", args.previous)] if args.previous else [])
    if args.seeds:
        if args.truth:
            sys.exit("eval_layers: give --seeds or --truth, not both")
        per_seed = {}
        for seed in args.seeds:
            per_seed[seed] = seed_table(seed, args.count, systems, args.metrics, args.stems)
            print(f"seed {seed}: " + ", ".join(f"{k} {v.get('change_f1_3', float('nan')):.3f}" for k, v in per_seed[seed].items()),
                  "(change F1 at 3 s)")
        table = mean_table(list(per_seed.values()))
        print_table(table)
        if args.out:
            where = {"seeds": args.seeds, "pieces": args.count * len(args.seeds), "mean_of": "the seeds' figures"}
            args.out.write_text(json.dumps(where | {"systems": table, "per_seed": per_seed}, indent=1) + "\n")
        return
    if args.truth:
        if args.stems:
            sys.exit("eval_layers: --stems needs the true stems, which only synthetic pieces have")
        table = evaluate(systems, args.truth, results_folder(args.truth.name), args.metrics, args.stems)
    else:
        table = seed_table(args.seed, args.count, systems, args.metrics, args.stems)
    print_table(table)
    if args.out:
        where = {"truth": args.truth.name} if args.truth else {"seed": args.seed, "pieces": args.count}
        args.out.write_text(json.dumps(where | {"systems": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
