"""Catalog-scale analysis on Ray: every file analysed in a Ray task, locally or on a cluster.

    strata-batch INPUT... --out DIR [--address ADDR]
    python -m strata.batch INPUT... --out DIR [--address ADDR]

INPUT is a file or a folder (searched recursively for WAV, FLAC, MP3 and OGG). For each file,
``DIR/results/<path relative to its input>/strata.json`` (the document ``strata analyze``
writes) and one part of the Parquet dataset ``DIR/layers.parquet/`` (one row per pattern layer
and per change, with the source file: :func:`strata.table_rows`).

Without ``--address`` a Ray instance is started in this process and ends with it (the embedded
default; ``--num-cpus`` bounds it). With ``--address`` (``ray start --head`` prints it, or
``auto``) the same run goes to an existing cluster, whose nodes need this package installed.

Resuming: each file's outputs are written by its own task, whole or not at all (written aside
and renamed into place, the Parquet part first and ``strata.json`` last). A file whose
``strata.json`` exists is skipped, so a run stopped by a crash or Ctrl-C goes on where it
stopped when started again. A task whose worker dies is run again (Ray retries it); a file that
cannot be analysed is named with its reason and the run goes on. The exit status is 0 when
every file is done, 1 when some failed, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga"}
#: A task whose worker process dies (killed, out of memory, its node lost) is run again this
#: many times; a file Strata cannot read is not retried (it would fail the same way).
TASK_RETRIES = 3
#: Tasks kept in flight per CPU of the cluster.
IN_FLIGHT_PER_CPU = 4
RESULTS_DIR = "results"
DATASET_DIR = "layers.parquet"


@dataclass(frozen=True)
class Job:
    """One file to analyse and where its outputs go."""

    path: str
    #: Folder for its strata.json.
    dest: str
    #: Its part of the Parquet dataset.
    part: str


def collect(inputs: list[str], out: Path) -> list[Job]:
    """The files named or found under the folders named, each with its destinations: results
    keep the path relative to the folder given (a file given by itself keeps its name)."""
    jobs: dict[str, Job] = {}
    for given in inputs:
        root = Path(given)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            rels = [(f, Path(root.name) / f.relative_to(root)) for f in files]
        elif root.exists():
            rels = [(root, Path(root.name))]
        else:
            raise SystemExit(f"strata-batch: {given}: no such file or folder")
        for f, rel in rels:
            key = str(rel)
            if key in jobs and jobs[key].path != str(f.resolve()):
                # Two inputs with one relative name (a/x.wav and b/x.wav given as files): the
                # second is told apart by a hash of its full path.
                key = f"{key}-{hashlib.sha1(str(f.resolve()).encode()).hexdigest()[:8]}"
            part_name = hashlib.sha1(key.encode()).hexdigest()[:20] + ".parquet"
            jobs[key] = Job(str(f.resolve()), str(out / RESULTS_DIR / key), str(out / DATASET_DIR / part_name))
    return list(jobs.values())


def is_done(job: Job) -> bool:
    return os.path.isfile(os.path.join(job.dest, "strata.json"))


#: Marks a file being written: ``.<name>.partial-<pid>`` beside its final name. The leading dot
#: keeps Parquet readers (pyarrow and others skip names starting with "." or "_") from taking a
#: half-written part for data while a run is going.
PARTIAL_MARK = ".partial-"


def _write_aside(path: str, write) -> None:
    """Writes `path` through a hidden temporary name beside it and renames it into place. A
    worker killed mid-write leaves the temporary behind; :func:`sweep_partials` removes it."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}{PARTIAL_MARK}{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sweep_partials(jobs: list[Job]) -> int:
    """Removes what killed workers left half-written beside these jobs' outputs; returns how
    many. Called when no task of the run is writing (before it starts and after it ends)."""
    folders = {os.path.dirname(j.part) for j in jobs} | {j.dest for j in jobs}
    removed = 0
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # not created yet
        for name in names:
            if name.startswith(".") and PARTIAL_MARK in name:
                try:
                    os.remove(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass  # gone already, or not ours to remove: it stays hidden either way
    return removed


def analyse_job(job: Job) -> tuple[str, str | None, str]:
    """Analyses one file and writes its outputs; returns (path, error or None, node). Runs in a
    Ray worker, and in this process for the serial run (``--serial``)."""
    import json

    import pyarrow.parquet as pq

    import strata

    node = os.uname().nodename
    node = _ray_node_id() or node
    try:
        analysis = strata.analyze(job.path)
        os.makedirs(job.dest, exist_ok=True)
        os.makedirs(os.path.dirname(job.part), exist_ok=True)
        table = strata.to_table(analysis)
        _write_aside(job.part, lambda tmp: pq.write_table(table, tmp))
        text = json.dumps(analysis, indent=2)
        _write_aside(os.path.join(job.dest, "strata.json"), lambda tmp: Path(tmp).write_text(text))
    except (strata.StrataError, OSError) as e:
        # The file cannot be read, or its outputs cannot be written (a full disk): this file
        # fails, named, and the run goes on. A dying worker is not caught here: Ray retries it.
        return job.path, str(e), node
    return job.path, None, node


def _ray_node_id() -> str | None:
    if "ray" not in sys.modules:
        return None
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


@dataclass
class Summary:
    done: int = 0
    #: Files already done by an earlier run.
    skipped: int = 0
    #: (path, reason) of each file that failed.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Files analysed per node (its Ray node id, or the host name for a serial run).
    nodes: dict[str, int] = field(default_factory=dict)


class Progress:
    """One line on stderr, redrawn in place on a terminal, a line every 10 % otherwise."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.count, self.t0 = total, quiet, 0, time.monotonic()
        self.tty = sys.stderr.isatty()
        self.next_pct = 10

    def step(self, failed: int) -> None:
        self.count += 1
        if self.quiet or self.total == 0:
            return
        pct = 100 * self.count // self.total
        rate = self.count / max(time.monotonic() - self.t0, 1e-9)
        line = f"{self.count}/{self.total} files ({pct}%), {rate:.1f} files/s, {failed} failed"
        if self.tty:
            print(f"\r{line}", end="" if self.count < self.total else "\n", file=sys.stderr, flush=True)
        elif pct >= self.next_pct or self.count == self.total:
            print(line, file=sys.stderr, flush=True)
            self.next_pct = pct - pct % 10 + 10


def run(jobs: list[Job], address: str | None = None, num_cpus: int | None = None, serial: bool = False, quiet: bool = False) -> Summary:
    """Analyses every job not done yet; see the module docs."""
    summary = Summary()
    sweep_partials(jobs)
    try:
        _run(jobs, summary, address, num_cpus, serial, quiet)
    finally:
        # A worker killed mid-write (Ray then runs its task again) leaves its temporary behind.
        sweep_partials(jobs)
    return summary


def _run(jobs: list[Job], summary: Summary, address: str | None, num_cpus: int | None, serial: bool, quiet: bool) -> None:
    todo = [j for j in jobs if not is_done(j)]
    summary.skipped = len(jobs) - len(todo)
    progress = Progress(len(todo), quiet)

    def record(path: str, error: str | None, node: str) -> None:
        if error is None:
            summary.done += 1
            summary.nodes[node] = summary.nodes.get(node, 0) + 1
        else:
            summary.failed.append((path, error))
            # On a terminal the progress line is redrawn in place: the failure goes on a line
            # of its own.
            lead = "\n" if progress.tty and not quiet else ""
            print(f"{lead}strata-batch: {path}: {error}", file=sys.stderr)
        progress.step(len(summary.failed))

    if serial:
        for job in todo:
            record(*analyse_job(job))
        return
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(analyse_job)
        # A bounded window of tasks in flight, refilled as they finish: a catalog of 100,000
        # files is not 100,000 tasks queued at once, and each wait looks at the window only.
        window = max(IN_FLIGHT_PER_CPU * int(ray.cluster_resources().get("CPU", 1)), 8)
        queue = iter(todo)
        pending: dict = {}

        def refill() -> None:
            for job in queue:
                pending[task.remote(job)] = job
                if len(pending) >= window:
                    break

        refill()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    record(*ray.get(ref))
                except ray.exceptions.RayError as e:
                    # The task failed for good: its worker died more than TASK_RETRIES times.
                    record(job.path, f"{type(e).__name__}: {str(e).splitlines()[0]}", "")
            refill()
    finally:
        if started_here:
            ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="strata-batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--address", help="a Ray cluster's address (default: a local Ray instance in this process)")
    ap.add_argument("--num-cpus", type=int, help="CPUs for the local Ray instance (default: all)")
    ap.add_argument("--serial", action="store_true", help="no Ray: one file after another in this process")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    args = ap.parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        ap.error(f"--num-cpus {args.num_cpus} must be at least 1")
    jobs = collect(args.inputs, args.out)
    if not jobs:
        print(f"strata-batch: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    summary = run(jobs, args.address, args.num_cpus, args.serial, args.quiet)
    seconds = time.monotonic() - t0
    print(
        f"strata-batch: {summary.done} done, {summary.skipped} skipped (done before), {len(summary.failed)} failed, "
        f"in {seconds:.1f} s on {len(summary.nodes)} node{'s' if len(summary.nodes) != 1 else ''}; "
        f"results in {args.out / RESULTS_DIR}, the table in {args.out / DATASET_DIR}",
        file=sys.stderr,
    )
    for path, reason in summary.failed:
        print(f"strata-batch: failed: {path}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
