"""Layer truth for real music, from the composers' own lmms project files.

The real-music development set is the top-level lmms demo projects (never their subfolders,
never the shorties), rendered headless with `lmms render` (`data.render_lmms_demos`). What the
composer wrote says what the layers are:

* a **layer** is an instrument track: one in the song editor, or one row of the Beat/Bassline
  editor, played wherever a Beat/Bassline clip places it (a row's pattern loops inside the clip);
* its **period** is the shortest whole number of sixteenth notes, one beat to 16 bars, after
  which what it plays (which keys start on each sixteenth) repeats on at least
  `REPEAT_SHARE` of its playing steps; a layer that repeats at no such period has none;
* its **changes** are stretches of at least a beat where it plays something other than one
  period before *and* one period after (a fill, a variant, a new pattern), and where it stops for
  at least two bars and comes back (the gap is the change). Entries and exits at the very start
  and end of the piece are not changes.

Times are the song's ticks (48 per quarter note) at the project's tempo. A project whose render
does not last as long as its notes say (tempo automation, a long tail) beyond `MAX_DRIFT` is left
out, and said so.

    python -m strata_models.lmms_truth DEST   # renders, then writes DEST/<piece>/{mix.wav,truth.json}
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
import zlib
from collections import defaultdict
from pathlib import Path

import soundfile as sf

TICKS_PER_QUARTER = 48
TICKS_PER_STEP = 12  # a sixteenth note
#: The shortest period: an eighth note.
MIN_PERIOD_STEPS = 2
#: A period must predict what the layer plays on this share of its steps.
REPEAT_SHARE = 0.85
#: The render may outlast the last note by this much (reverb tails, release) and still be kept.
MAX_DRIFT = 0.25


def read_project(path: str | Path) -> ET.Element:
    """The project's XML: `.mmpz` is Qt's qCompress (a 4-byte length, then zlib)."""
    raw = Path(path).read_bytes()
    return ET.fromstring(zlib.decompress(raw[4:]) if str(path).endswith(".mmpz") else raw)


def _notes(pattern: ET.Element) -> list[tuple[int, int]]:
    return [(int(float(n.get("pos", 0))), int(float(n.get("key", 0)))) for n in pattern.findall("note")]


def layer_onsets(root: ET.Element) -> dict[str, list[tuple[int, int]]]:
    """Per instrument track (name made unique), its note onsets in song ticks: (tick, key)."""
    song = root.find("song/trackcontainer")
    layers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    bb_tracks = [t for t in song.findall("track") if t.get("type") == "1"]
    bb_rows = []
    for t in bb_tracks:
        container = t.find("bbtrack/trackcontainer")
        if container is not None:
            bb_rows = [r for r in container.findall("track") if r.get("type") == "0" and r.get("muted", "0") == "0"]
    for i, track in enumerate(song.findall("track")):
        if track.get("type") != "0" or track.get("muted", "0") == "1":
            continue
        name = f"{i:02d} {track.get('name', '')}"
        for p in track.findall("pattern"):
            if p.get("muted", "0") == "1":
                continue
            start, length = int(float(p.get("pos", 0))), int(float(p.get("len", 0)))
            layers[name] += [(start + pos, key) for pos, key in _notes(p) if 0 <= pos < max(length, 1)]
    for j, row in enumerate(bb_rows):
        name = f"bb{j:02d} {row.get('name', '')}"
        patterns = row.findall("pattern")
        for k, bb in enumerate(bb_tracks):
            if k >= len(patterns) or bb.get("muted", "0") == "1":
                continue
            p = patterns[k]
            loop = int(p.get("steps", 16)) * TICKS_PER_STEP
            notes = _notes(p)
            if not notes or loop <= 0:
                continue
            for clip in bb.findall("bbtco"):
                if clip.get("muted", "0") == "1":
                    continue
                start, length = int(float(clip.get("pos", 0))), int(float(clip.get("len", 0)))
                for m in range(0, length, loop):
                    layers[name] += [(start + m + pos, key) for pos, key in notes if m + pos < length]
    return {k: sorted(v) for k, v in layers.items() if len(v) >= 4}


def _grid(onsets: list[tuple[int, int]]) -> dict[int, frozenset]:
    cells: dict[int, set] = defaultdict(set)
    for tick, key in onsets:
        cells[round(tick / TICKS_PER_STEP)].add(key)
    return {s: frozenset(k) for s, k in cells.items()}


def _active_runs(steps: list[int], gap: int) -> list[tuple[int, int]]:
    """Runs of steps with no silence of `gap` steps or more: (first, last + 1)."""
    runs: list[list[int]] = []
    for s in steps:
        if runs and s - runs[-1][1] < gap:
            runs[-1][1] = s + 1
        else:
            runs.append([s, s + 1])
    return [(a, b) for a, b in runs]


def period_steps(grid: dict[int, frozenset], runs: list[tuple[int, int]], steps_per_bar: int) -> int | None:
    """The shortest period (steps) that predicts the layer on `REPEAT_SHARE` of its steps."""
    for p in range(MIN_PERIOD_STEPS, 16 * steps_per_bar + 1):
        agree = total = 0
        for a, b in runs:
            if b - a < 2 * p:
                continue
            for s in range(a + p, b):
                if s in grid or (s - p) in grid:
                    total += 1
                    agree += grid.get(s) == grid.get(s - p)
        if total >= 8 and agree >= REPEAT_SHARE * total:
            return p
    return None


def changes(grid: dict[int, frozenset], runs: list[tuple[int, int]], period: int, min_steps: int) -> list[tuple[int, int]]:
    """Stretches (steps) where the layer differs from one period before and one after."""
    out: list[tuple[int, int]] = []
    for a, b in runs:
        odd = [s for s in range(a, b) if (s in grid or s - period in grid or s + period in grid)
               and grid.get(s) != grid.get(s - period) and grid.get(s) != grid.get(s + period)
               and a <= s - period and s + period < b]
        for x, y in _active_runs(odd, period):
            if y - x >= min_steps:
                out.append((x, y))
    return out


def truth(project: str | Path, duration_s: float) -> dict | str:
    """The truth of one project, or why there is none."""
    root = read_project(project)
    head = root.find("head")
    bpm = float(head.get("bpm", 140))
    num, den = int(head.get("timesig_numerator", 4)), int(head.get("timesig_denominator", 4))
    step_s = TICKS_PER_STEP * 60.0 / bpm / TICKS_PER_QUARTER
    steps_per_bar = round(num * 16 / den)
    layers, bounds = [], []
    last_step = 0
    for name, onsets in layer_onsets(root).items():
        grid = _grid(onsets)
        steps = sorted(grid)
        last_step = max(last_step, steps[-1])
        runs = _active_runs(steps, 2 * steps_per_bar)
        period = period_steps(grid, runs, steps_per_bar)
        if period is None:
            continue
        layers.append({"name": name, "period_s": period * step_s, "period_steps": period})
        for x, y in changes(grid, runs, period, max(1, 16 // den)):
            bounds.append({"layer": name, "kind": "variant", "start_s": x * step_s, "end_s": y * step_s})
        for (_, end), (start, _) in zip(runs, runs[1:]):
            bounds.append({"layer": name, "kind": "dropout", "start_s": end * step_s, "end_s": start * step_s})
    notes_s = (last_step + 1) * step_s
    if not layers:
        return "no track repeats at any period from an eighth note to 16 bars"
    if duration_s < notes_s or duration_s > notes_s * (1 + MAX_DRIFT) + 10.0:
        return f"its render lasts {duration_s:.1f} s, its notes {notes_s:.1f} s (tempo automation?)"
    return {"source": Path(project).name, "bpm": bpm, "timesig": [num, den], "duration_s": duration_s,
            "layers": layers, "changes": sorted(bounds, key=lambda c: c["start_s"])}


def build(dest: Path) -> list[str]:
    """Renders the top-level demos and writes their truth; returns the pieces kept."""
    from . import data

    kept = []
    for wav in data.render_lmms_demos(data.CACHE / "lmms"):
        name = Path(wav).stem
        project = next(Path(data.LMMS_DEMOS).glob(name + ".mmp*"))
        t = truth(project, sf.info(wav).duration)
        if isinstance(t, str):
            print(f"{name}: left out: {t}")
            continue
        piece = dest / name
        piece.mkdir(parents=True, exist_ok=True)
        link = piece / "mix.wav"
        if not link.exists():
            link.symlink_to(Path(wav).resolve())
        (piece / "truth.json").write_text(json.dumps(t, indent=1) + "\n")
        kept.append(name)
    return kept


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1])))
