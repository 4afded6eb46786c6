"""Quality of the whole engine (`strata analyze`, the Rust code the plugin runs) on development
pieces never trained on, against a baseline computed in the same run.

    python -m strata_models.eval_engine --strata target/release/strata [--count 12]

* Period recovery: the share of true layer periods that some Strata layer reports within 3%.
  Baseline: librosa's tempo estimate, credited with every period on its grid of
  {1/2, 1, 2, 4, 8, 16} beats (a generous baseline: most true periods are such multiples).
* Change boundaries: F1 at 0.5 s and 3 s of all layers' changes merged (strongest first, one per
  second) against the true boundaries. Changes with strength <= 0.25 (a token change alone, with no
  surprise peak) are left out; with them F1 falls (0.13 and 0.23 when last measured). Baseline: Foote novelty on a log-mel self-similarity
  matrix (evaluate.foote_novelty).
* Speed: seconds of audio per second of wall time for both, on the same files.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from . import data, evaluate, features


def periods_found(true_periods, found, tol=0.03):
    return [any(abs(f - p) <= tol * p for f in found) for p in true_periods]


def lmms_project_tempo(project: str) -> tuple[float, int]:
    """(bpm, beats per bar) from an lmms project (.mmpz is Qt's qCompress: 4-byte length + zlib)."""
    import re
    import zlib

    raw = Path(project).read_bytes()
    xml = zlib.decompress(raw[4:]).decode("utf-8", "replace") if project.endswith(".mmpz") else raw.decode("utf-8", "replace")
    head = re.search(r"<head[^>]*>", xml).group(0)
    bpm = float(re.search(r'bpm="([0-9.]+)"', head).group(1))
    num = int(re.search(r'timesig_numerator="([0-9]+)"', head).group(1))
    return bpm, num


def lmms_dev(strata: Path) -> dict:
    """The lmms demo renders held out as development data: does some layer find the project's
    beat and bar (from its tempo and time signature) within 3%? Baseline: librosa's tempo grid."""
    import glob

    import librosa

    music = data.fetch_debian_music(data.CACHE / "debian")
    files = [(pkg, f) for pkg, fs in music.items() for f in fs]
    projects = sorted(p for p in glob.glob(f"{data.LMMS_DEMOS}/*.mmp*") if Path(p).is_file())
    renders = {str(data.CACHE / "lmms" / (Path(p).name.split(".")[0] + ".wav")): p for p in projects}
    files += [("lmms-demos", f) for f in renders if Path(f).exists()]
    dev = [(f, renders[f]) for i, (pkg, f) in enumerate(files) if pkg == "lmms-demos" and i % 7 == 3]
    out = {"pieces": [], "strata_recovery": None, "baseline_recovery": None}
    found_s, found_b = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for wav, project in dev:
            bpm, num = lmms_project_tempo(project)
            truth = [60.0 / bpm, num * 60.0 / bpm]
            dest = Path(tmp) / Path(wav).stem
            subprocess.run([str(strata), "analyze", "--quiet", "--out", str(dest), wav], check=True, capture_output=True)
            a = json.loads((dest / "strata.json").read_text())
            periods = [l["period_s"] for l in a["layers"] if l["period_s"]]
            y, sr = librosa.load(wav, sr=None, mono=True)
            beat = 60.0 / float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[0])
            grid = [beat * k for k in (0.5, 1, 2, 4, 8, 16)]
            fs, fb = periods_found(truth, periods), periods_found(truth, grid)
            found_s += fs
            found_b += fb
            out["pieces"].append({"file": Path(wav).name, "bpm": bpm, "beats_per_bar": num,
                                  "strata_periods": [round(p, 3) for p in periods], "beat_bar_found": fs, "baseline_found": fb})
    out["strata_recovery"] = round(float(np.mean(found_s)), 3) if found_s else None
    out["baseline_recovery"] = round(float(np.mean(found_b)), 3) if found_b else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", type=Path, required=True, help="the strata binary")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    import librosa

    items = data.synthetic("dev", args.count, seed=2)
    rec_s, rec_b = [], []
    f05_s, f3_s, f05_b, f3_b = [], [], [], []
    t_s = t_b = audio_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for it in items:
            truth = it.truth
            wav = it.audio_path
            t0 = time.time()
            out = Path(tmp) / it.name
            subprocess.run([str(args.strata), "analyze", "--quiet", "--out", str(out), wav], check=True, capture_output=True)
            t_s += time.time() - t0
            a = json.loads((out / "strata.json").read_text())
            audio_s += a["duration_s"]
            found = [l["period_s"] for l in a["layers"] if l["period_s"]]
            true_p = [l["period_s"] for l in truth["layers"]]
            rec_s += periods_found(true_p, found)
            changes = [(c["time_s"], c["strength"]) for l in a["layers"] for c in l["changes"] if c["strength"] > 0.25]
            est = evaluate.merge_changes([changes])
            ref = truth["boundaries_s"]
            f05_s.append(evaluate.boundary_f1(ref, est, 0.5)[2])
            f3_s.append(evaluate.boundary_f1(ref, est, 3.0)[2])

            t0 = time.time()
            y, sr = librosa.load(wav, sr=None, mono=True)
            tempo = float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[0])
            beat = 60.0 / tempo
            grid = [beat * k for k in (0.5, 1, 2, 4, 8, 16)]
            base_est = evaluate.foote_novelty(features.logmel(y if sr == features.SAMPLE_RATE else data.to_model_rate(y, sr)))
            t_b += time.time() - t0
            rec_b += periods_found(true_p, grid)
            f05_b.append(evaluate.boundary_f1(ref, base_est, 0.5)[2])
            f3_b.append(evaluate.boundary_f1(ref, base_est, 3.0)[2])
    lmms = lmms_dev(args.strata)
    results = {
        "lmms_dev": lmms,
        "pieces": len(items),
        "true_periods": len(rec_s),
        "strata": {
            "period_recovery_3pct": round(float(np.mean(rec_s)), 3),
            "boundary_f1_0.5s": round(float(np.mean(f05_s)), 3),
            "boundary_f1_3s": round(float(np.mean(f3_s)), 3),
            "realtime_factor": round(audio_s / t_s, 1),
        },
        "baseline_librosa_tempo_grid_and_foote": {
            "period_recovery_3pct": round(float(np.mean(rec_b)), 3),
            "boundary_f1_0.5s": round(float(np.mean(f05_b)), 3),
            "boundary_f1_3s": round(float(np.mean(f3_b)), 3),
            "realtime_factor": round(audio_s / t_b, 1),
        },
    }
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
