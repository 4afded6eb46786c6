"""The data recipe: everything comes from packages, so anyone can rebuild it on a fresh machine.

* Real music from Debian packages, downloaded with `apt-get download` and unpacked with
  `dpkg-deb -x` (no install needed): wesnoth-1.16-music (OGG), asc-music (MP3), drascula-music
  (OGG). fb-music-high holds one tracker module (.xm) that no decoder here reads; it is listed and
  skipped.
* Debian's lmms demo projects, top level of projects/demos only (its subfolders and the shorties
  are kept out for evaluation), rendered headless with `lmms render`; used when lmms is installed.
* Synthetic multi-layer pieces with exact truth (`synth.py`).

Every source is decoded to mono float at 16 kHz and turned into log-mel frames, cached under
`models/.cache/`. Real music and lmms renders are split by file (every seventh file is development
data); synthetic pieces use separate seeds for training and development.
"""
from __future__ import annotations

import glob
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import features, synth

CACHE = Path(__file__).resolve().parents[1] / ".cache"
DEBIAN_MUSIC = {
    "wesnoth-1.16-music": ("GPL-2+", "usr/share/games/wesnoth/1.16/data/core/music/*.ogg"),
    "asc-music": ("GPL-2+", "usr/share/games/asc/music/*.mp3"),
    "drascula-music": ("GPL-2+ (ScummVM's Drascula freeware release)", "usr/share/scummvm/drascula/audio/*.ogg"),
    "fb-music-high": ("GPL-2+", "usr/share/games/frozen-bubble/snd/*.xm"),
}
LMMS_DEMOS = "/usr/share/lmms/projects/demos"
MAX_SECONDS_PER_FILE = 240.0


@dataclass
class Item:
    name: str
    source: str
    split: str  # "train" or "dev"
    logmel: np.ndarray  # [T, 64]
    truth: dict | None = None  # synthetic pieces only
    audio_path: str | None = None


def to_model_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if rate == features.SAMPLE_RATE:
        return audio.astype(np.float32)
    g = np.gcd(rate, features.SAMPLE_RATE)
    return resample_poly(audio, features.SAMPLE_RATE // g, rate // g).astype(np.float32)


def load_audio(path: str) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True, frames=int(MAX_SECONDS_PER_FILE * 48_000))
    audio = audio[: int(MAX_SECONDS_PER_FILE * rate)]
    return to_model_rate(audio, rate)


def fetch_debian_music(dest: Path) -> dict[str, list[str]]:
    """Downloads and unpacks the music packages; returns decodable files per package."""
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    for package, (_licence, pattern) in DEBIAN_MUSIC.items():
        root = dest / package
        if not root.exists():
            debs = glob.glob(str(dest / f"{package}_*.deb"))
            if not debs:
                subprocess.run(["apt-get", "download", package], cwd=dest, check=True)
                debs = glob.glob(str(dest / f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", debs[0], str(root)], check=True)
        files = sorted(glob.glob(str(root / pattern)))
        # machine_wars.mp3 is the README's example (assets/): keep it out of training.
        found[package] = [f for f in files if not f.endswith(".xm") and not f.endswith("machine_wars.mp3")]
    return found


def render_lmms_demos(dest: Path) -> list[str]:
    """Renders the top-level lmms demo projects to WAV (skips ones already rendered)."""
    dest.mkdir(parents=True, exist_ok=True)
    projects = sorted(p for p in glob.glob(f"{LMMS_DEMOS}/*.mmp*") if Path(p).is_file())
    out = []
    for project in projects:
        wav = dest / (Path(project).name.split(".")[0] + ".wav")
        if not wav.exists():
            r = subprocess.run(
                ["lmms", "--allowroot", "render", project, "-f", "wav", "-o", str(wav)],
                capture_output=True, timeout=900,
            )
            if r.returncode != 0 or not wav.exists():
                print(f"lmms could not render {project}: {r.stderr[-300:]!r}")
                continue
        out.append(str(wav))
    return out


def _cached_logmel(key: str, make) -> np.ndarray:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".npy")
    if path.exists():
        return np.load(path)
    m = features.logmel(make())
    np.save(path, m)
    return m


def synthetic(split: str, count: int, seed: int) -> list[Item]:
    items = []
    rng = np.random.default_rng(seed)
    for i in range(count):
        name = f"synth_{seed}_{i:03d}"
        folder = CACHE / "synth" / name
        if not (folder / "truth.json").exists():
            synth.write_piece(synth.make_piece(rng), folder)
        else:
            synth.make_piece(rng)  # keep the generator's stream identical
        truth = json.loads((folder / "truth.json").read_text())
        m = _cached_logmel(f"{name}-v1", lambda: load_audio(str(folder / "mix.wav")))
        items.append(Item(name, "synthetic", split, m, truth, str(folder / "mix.wav")))
    return items


def build_corpus(synth_train: int = 48, synth_dev: int = 12, use_lmms: bool = True) -> list[Item]:
    items = synthetic("train", synth_train, seed=1) + synthetic("dev", synth_dev, seed=2)
    music = fetch_debian_music(CACHE / "debian")
    files = [(pkg, f) for pkg, fs in music.items() for f in fs]
    if use_lmms:
        try:
            files += [("lmms-demos", f) for f in render_lmms_demos(CACHE / "lmms")]
        except FileNotFoundError:
            print("lmms is not installed: skipping its demo projects")
    for i, (pkg, f) in enumerate(files):
        split = "dev" if i % 7 == 3 else "train"
        m = _cached_logmel(f"{f}-v1", lambda f=f: load_audio(f))
        if len(m) >= 1000:
            items.append(Item(Path(f).name, pkg, split, m, None, f))
    return items


def summary(items: list[Item]) -> dict:
    out: dict = {}
    for it in items:
        s = out.setdefault(it.source, {"train_files": 0, "dev_files": 0, "train_minutes": 0.0, "dev_minutes": 0.0})
        s[f"{it.split}_files"] += 1
        s[f"{it.split}_minutes"] += round(len(it.logmel) / features.FRAME_RATE / 60, 2)
    for pkg, (licence, _) in DEBIAN_MUSIC.items():
        if pkg in out:
            out[pkg]["licence"] = licence
    if "synthetic" in out:
        out["synthetic"]["licence"] = "generated by models/strata_models/synth.py"
    if "lmms-demos" in out:
        out["lmms-demos"]["licence"] = "Debian lmms-common demo projects (various free licences, see its copyright file)"
    return out
