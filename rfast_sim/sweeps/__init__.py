"""Parameter sweeps (`rfast_sim.sweep` is `run_sweep`): grids over any scenario key, content-hashed
points, a resumable parquet store, local and Dask executors.

A sweep file names a base scenario and the keys to vary::

    base: compare_stragglers.yaml        # relative to the sweep file
    grid: {timing.drop_prob: [0.0, 0.1], nodes: [8, 16]}   # cartesian product
    zip: {algorithm.step_size: [0.05, 0.02], problem.batch_size: [16, 64]}  # varied together
    seeds: 5

Every point (grid x zip x seed) is a fully resolved scenario whose hash is its run id. Each
finished point is written atomically to ``OUT/points/<run_id>.parquet`` (temporary name, then
rename), so a killed sweep loses at most the points in progress and ``resume`` runs only the
points without a file. ``OUT/manifest.json`` records the spec, the package version and every
point's state (done / failed with its message / pending).

Points that differ only in their seed run as one task: one vmapped replay over the seeds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from rfast_sim.scenario import ScenarioError, slug
from rfast_sim.sweeps.executors import make_tasks, submit_dask, submit_local
from rfast_sim.sweeps.spec import Executor, Point, SweepSpec, expand, load_spec
from rfast_sim.sweeps.store import Manifest, failures, load_results
from rfast_sim.sweeps.summary import summarize

__all__ = ["expand", "failures", "load_results", "load_spec", "run_sweep", "summarize"]


def _open_manifest(out: Path, spec: SweepSpec, points: list[Point], resume: bool) -> Manifest:
    """The folder's manifest: a new one, or (with `resume`) the one of the same sweep."""
    manifest = Manifest(out / "manifest.json")
    if manifest.path.exists():
        old = json.loads(manifest.path.read_text())
        if not resume:
            raise ScenarioError(f"--out {out}: holds a sweep already; add --resume to finish it "
                                "or choose another folder")
        if set(old["points"]) != {p.run_id for p in points}:
            raise ScenarioError(f"--resume: the sweep in {out} has other points than this spec "
                                "(was the spec changed?); use another --out")
        manifest.data = old
        return manifest
    from rfast_sim._version import __version__

    manifest.data = {
        "spec": spec.model_dump(mode="json"),
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "points": {p.run_id: {"params": p.params, "seed": p.seed, "state": "pending",
                              "error": None} for p in points},
    }
    return manifest


def _pending(out: Path, points: list[Point], manifest: Manifest) -> tuple[list[Point], int, int]:
    """Mark done (a parquet file exists) and invalid points; return (to run, done, failed)."""
    for tmp in (out / "points").glob(".*.tmp"):  # left by a point killed while writing
        tmp.unlink()
    done_ids = {f.stem for f in (out / "points").glob("*.parquet")}
    failed = 0
    todo = []
    for p in points:
        if p.run_id in done_ids:
            manifest.data["points"][p.run_id]["state"] = "done"
        elif p.error is not None:
            manifest.mark(p.run_id, "failed", p.error)
            failed += 1
        else:
            manifest.data["points"][p.run_id]["state"] = "pending"
            todo.append(p)
    manifest.save()
    return todo, len(done_ids & {p.run_id for p in points}), failed


def run_sweep(spec: str | Path | dict[str, Any] | SweepSpec, out: str | Path | None = None, *,
              executor: Executor = "local", workers: int | None = None,
              address: str | None = None, resume: bool = False,
              progress: Callable[[int, int, int], None] | None = None) -> pd.DataFrame:
    """Run every point not already done under `out` (default: a new folder under runs/);
    return the tidy frame of all finished points.

    `progress(done, failed, total)` is called as points finish.
    """
    spec_obj = load_spec(spec)
    points = expand(spec_obj)
    if out is None:
        name = spec_obj.name or str((spec_obj.scenario or {}).get("name", "sweep"))
        out = Path("runs") / f"{slug(name)}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(out).resolve()
    (out / "points").mkdir(parents=True, exist_ok=True)
    manifest = _open_manifest(out, spec_obj, points, resume)
    todo, done, failed = _pending(out, points, manifest)
    total = len(points)
    if progress:
        progress(done, failed, total)
    tasks = make_tasks(todo, out)
    workers = workers or os.cpu_count() or 1
    stream = (submit_dask(tasks, workers, address) if executor == "dask"
              else submit_local(tasks, workers))
    for results in stream:
        for run_id, error in results:
            manifest.mark(run_id, "failed" if error else "done", error)
            done += error is None
            failed += error is not None
        manifest.save()
        if progress:
            progress(done, failed, total)
    return load_results(out)
