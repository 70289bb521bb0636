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

import copy
import difflib
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rfast_sim import metrics as metrics_mod
from rfast_sim.scenario import (
    Scenario,
    ScenarioError,
    format_validation_error,
    parse_scenario,
    read_yaml,
    scenario_to_dict,
    set_path,
)

Executor = Literal["local", "dask"]


class SweepSpec(BaseModel):
    """A sweep file, validated (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | None = Field(None, description="scenario file, relative to the sweep file")
    scenario: dict[str, Any] | None = Field(None, description="inline base scenario")
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    seeds: int = Field(1, ge=1)
    name: str | None = None

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"{key}: an empty list of values gives no points")
        return v


# ---------------------------------------------------------------------------------------------
# keys


def schema_keys(model: type[BaseModel] = Scenario, prefix: str = "") -> list[str]:
    """Every dotted key of the scenario schema; `KEY.*` marks a free-form mapping (e.g.
    `compare.target.*`), whose entries the schema checks when the point is validated."""
    from rfast_sim.scenario import _model_in

    keys = []
    for name, f in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        sub = _model_in(f.annotation)
        if sub is not None:
            keys.extend(schema_keys(sub, dotted + "."))
        elif getattr(f.annotation, "__origin__", None) is dict:
            keys.append(dotted + ".*")
    return keys


def check_key(key: str, valid: list[str]) -> None:
    parts = key.split(".")
    if key in valid or any(".".join(parts[:k]) + ".*" in valid for k in range(1, len(parts))):
        return
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    raise ScenarioError(f"grid key {key!r} is not a scenario key{hint}")


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key; `algorithm.X` sets X in every entry of an `algorithms` list."""
    if key.startswith("algorithm.") and isinstance(data.get("algorithms"), list):
        for entry in data["algorithms"]:
            set_path(entry, key.split(".", 1)[1], copy.deepcopy(value))
    else:
        set_path(data, key, copy.deepcopy(value))


# ---------------------------------------------------------------------------------------------
# expansion


@dataclass
class Point:
    """One run of a sweep: the swept values, the seed and the resolved scenario (or why not)."""

    params: dict[str, Any]
    seed: int
    run_id: str
    scenario: Scenario | None
    error: str | None = None


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_spec(spec: str | Path | dict[str, Any] | SweepSpec) -> SweepSpec:
    """Validate a sweep spec (file, dict or SweepSpec) and inline its base scenario, so the
    spec alone (as stored in the manifest) defines every point."""
    where = Path(".")
    if isinstance(spec, str | Path):
        where = Path(spec).resolve().parent
        raw = read_yaml(spec)
        if not isinstance(raw, dict):
            raise ScenarioError(f"{spec}: a sweep file must be a YAML mapping")
        spec = raw
    if isinstance(spec, dict):
        try:
            spec = SweepSpec.model_validate(spec)
        except ValidationError as err:
            raise ScenarioError("sweep " + format_validation_error(err)) from None
    if (spec.base is None) == (spec.scenario is None):
        raise ScenarioError("sweep: give exactly one of 'base' (a scenario file) or 'scenario'")
    if spec.base is not None:
        base = read_yaml(where / spec.base)
        if not isinstance(base, dict):
            raise ScenarioError(f"base: {spec.base} is not a scenario mapping")
        spec = spec.model_copy(update={"base": None, "scenario": base})
    if not spec.grid and not spec.zip and spec.seeds == 1:
        raise ScenarioError("grid: the sweep is empty; give 'grid', 'zip' or 'seeds' > 1")
    valid = schema_keys()
    for key in [*spec.grid, *spec.zip]:
        check_key(key, valid)
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in spec.zip.items())
        raise ScenarioError(f"zip: all lists must have the same length (got {sizes})")
    return spec


def expand(spec: str | Path | dict[str, Any] | SweepSpec) -> list[Point]:
    """All points: cartesian product of `grid` x the rows of `zip` x seeds, in a fixed order."""
    spec = load_spec(spec)
    base = spec.scenario or {}
    grid_keys = list(spec.grid)
    zip_rows: list[dict[str, Any]] = (
        [dict(zip(spec.zip, row, strict=True)) for row in zip(*spec.zip.values(), strict=True)]
        if spec.zip else [{}])
    base_seed = int(base.get("seed", 0)) if isinstance(base.get("seed", 0), int) else 0
    points = []
    for combo in itertools.product(*spec.grid.values()):
        for zrow in zip_rows:
            params = {**dict(zip(grid_keys, combo, strict=True)), **zrow}
            for k in range(spec.seeds):
                data = copy.deepcopy(base)
                for key, value in params.items():
                    set_key(data, key, value)
                data["seed"] = base_seed + k
                data["seeds"] = 1
                try:
                    sc: Scenario | None = parse_scenario(data)
                    error = None
                    run_id = _hash(scenario_to_dict(sc))  # type: ignore[arg-type]
                except ScenarioError as err:
                    sc, error, run_id = None, str(err), _hash(data)
                points.append(Point(params, base_seed + k, run_id, sc, error))
    return points


# ---------------------------------------------------------------------------------------------
# running one task (in a worker process)


@dataclass
class Task:
    """Points that share everything but the seed: one vmapped run."""

    points: list[Point]
    out: str

    @property
    def scenario(self) -> Scenario:
        first = self.points[0].scenario
        assert first is not None
        seeds = [p.seed for p in self.points]
        return first.model_copy(update={"seed": seeds[0], "seeds": len(seeds)})


def make_tasks(points: list[Point], out: Path) -> list[Task]:
    """Group runnable points whose scenarios differ only in consecutive seeds."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        assert p.scenario is not None
        key = _hash({**scenario_to_dict(p.scenario), "seed": None})
        groups.setdefault(key, []).append(p)
    tasks = []
    for pts in groups.values():
        pts.sort(key=lambda p: p.seed)
        run: list[Point] = []
        for p in pts:
            if run and p.seed != run[-1].seed + 1:
                tasks.append(Task(run, str(out)))
                run = []
            run.append(p)
        tasks.append(Task(run, str(out)))
    return tasks


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def run_task(task: Task) -> list[tuple[str, str | None]]:
    """Run a task's points and write each point's rows atomically; (run_id, error) per point."""
    import rfast_sim

    try:
        res = rfast_sim.run(task.scenario)
    except Exception as err:  # a failing point must never stop the sweep
        msg = f"{type(err).__name__}: {err}" if not isinstance(err, ScenarioError) else str(err)
        return [(p.run_id, msg) for p in task.points]
    folder = Path(task.out) / "points"
    results: list[tuple[str, str | None]] = []
    for p in task.points:
        frame = res.metrics[res.metrics["seed"] == p.seed].copy()
        frame.insert(0, "run_id", p.run_id)
        for key, value in p.params.items():
            frame[key] = value if not isinstance(value, list | dict) else json.dumps(value)
        _write_atomic(frame.reset_index(drop=True), folder / f"{p.run_id}.parquet")
        results.append((p.run_id, None))
    return results


# ---------------------------------------------------------------------------------------------
# the sweep


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        tmp = self.path.with_name(".manifest.json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def mark(self, run_id: str, state: str, error: str | None = None) -> None:
        entry = self.data["points"][run_id]
        entry["state"] = state
        entry["error"] = error
        if state == "done":
            entry["runs"] = entry.get("runs", 0) + 1


def _submit_local(tasks: list[Task], workers: int) -> Iterable[list[tuple[str, str | None]]]:
    if workers <= 1:
        for t in tasks:
            yield run_task(t)
        return
    # spawn, not fork: JAX's runtime threads do not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures: list[Future[Any]] = [pool.submit(run_task, t) for t in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        except BaseException:  # Ctrl-C: do not start the queued points; --resume runs them
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _submit_dask(tasks: list[Task], workers: int,
                 address: str | None) -> Iterable[list[tuple[str, str | None]]]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:  # pragma: no cover - the dask extra is missing
        raise ScenarioError("--executor dask: install the dask extra "
                            "(pip install -e '.[dask]')") from None
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(address or cluster) as client:
            futures = [client.submit(run_task, t, pure=False) for t in tasks]
            for f in dask_completed(futures):
                yield f.result()
    finally:
        if cluster is not None:
            cluster.close()


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
        out = Path("runs") / f"{name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(out).resolve()
    (out / "points").mkdir(parents=True, exist_ok=True)
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
    else:
        from rfast_sim import __version__

        manifest.data = {
            "spec": spec_obj.model_dump(mode="json"),
            "version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "points": {p.run_id: {"params": p.params, "seed": p.seed, "state": "pending",
                                  "error": None} for p in points},
        }
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
    done = len(done_ids & {p.run_id for p in points})
    total = len(points)
    if progress:
        progress(done, failed, total)
    tasks = make_tasks(todo, out)
    workers = workers or os.cpu_count() or 1
    stream = (_submit_dask(tasks, workers, address) if executor == "dask"
              else _submit_local(tasks, workers))
    for results in stream:
        for run_id, error in results:
            manifest.mark(run_id, "failed" if error else "done", error)
            done += error is None
            failed += error is not None
        manifest.save()
        if progress:
            progress(done, failed, total)
    return load_results(out)


def load_results(out: str | Path) -> pd.DataFrame:
    """The tidy frame of every finished point of a sweep folder."""
    files = sorted((Path(out) / "points").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def failures(out: str | Path) -> dict[str, str]:
    """run_id -> error message of every failed point."""
    data = json.loads((Path(out) / "manifest.json").read_text())
    return {k: v["error"] for k, v in data["points"].items() if v["state"] == "failed"}


# ---------------------------------------------------------------------------------------------
# summaries


def _ci95(values: pd.Series) -> float:
    from scipy import stats

    v = values.dropna().to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def summarize(out: str | Path) -> pd.DataFrame:
    """Per swept point and algorithm: time to target, final metrics and speed-up over the
    scenario's `compare.baseline` (per seed), as mean and 95% CI over seeds."""
    out = Path(out)
    if not (out / "manifest.json").exists():
        raise ScenarioError(f"{out}: no manifest.json here (give the --out folder of a sweep)")
    df = load_results(out)
    if df.empty:
        raise ScenarioError(f"{out}: no finished points yet")
    spec = load_spec(json.loads((out / "manifest.json").read_text())["spec"])
    keys = [*spec.grid, *spec.zip]
    sc = next((p.scenario for p in expand(spec) if p.scenario is not None), None)
    from rfast_sim.runner import default_target

    target = default_target(sc) if sc is not None else {"opt_gap": 1e-3}
    metric = next(iter(target))
    baseline = sc.compare.baseline if sc is not None and sc.compare else None
    rows = []
    for run_id, g in df.groupby("run_id", sort=False):
        per_alg = metrics_mod.comparison_table(g, baseline or str(g["algorithm"].iloc[0]),
                                               target)
        for r in per_alg.to_dict("records"):
            rows.append({**{k: g[k].iloc[0] for k in keys}, "seed": g["seed"].iloc[0],
                         "run_id": run_id, **r})
    runs = pd.DataFrame(rows).rename(columns={f"time_to_{metric}": "time_to_target"})
    values = ["time_to_target", "speedup", "updates", "messages", "final_loss",
              "final_opt_gap", "final_accuracy"]
    values = [v for v in values if v in runs and (v in ("time_to_target", "speedup")
                                                   or runs[v].notna().any())]
    order = list(dict.fromkeys(runs["algorithm"]))
    runs = runs.sort_values(keys, kind="stable") if keys else runs
    grouped = runs.groupby([*keys, "algorithm"], sort=False, dropna=False)[values]
    summary = grouped.mean().add_suffix("_mean")
    ci = grouped.agg(_ci95).add_suffix("_ci95")
    counts = grouped.size().rename("seeds")
    table = pd.concat([summary, ci, counts], axis=1).reset_index()
    table = table.sort_values([*keys, "algorithm"], key=lambda c: c.map(order.index)
                              if c.name == "algorithm" else c, kind="stable", ignore_index=True)
    table.attrs["keys"] = keys
    table.attrs["target"] = target
    table.attrs["baseline"] = baseline
    return table
