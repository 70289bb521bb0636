"""Running a sweep's tasks: in-process, a local process pool, or a Dask cluster.

Points that differ only in their seed run as one task (one scenario with several seeds).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rfast_sim.scenario import Scenario, ScenarioError
from rfast_sim.scenario.loading import scenario_to_dict
from rfast_sim.scenario.problem_kinds import registered_problems, reregister
from rfast_sim.sweeps.spec import Point, content_hash
from rfast_sim.sweeps.store import write_atomic


@dataclass
class Task:
    """Points that share everything but the seed: one vmapped run."""

    points: list[Point]
    out: str
    # problem kinds registered in the calling process, registered again in a worker
    problems: dict[str, tuple[str, str, tuple[str, ...]]] = field(
        default_factory=registered_problems)

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
        key = content_hash({**scenario_to_dict(p.scenario), "seed": None})
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


def use_compile_cache(folder: Path) -> None:
    """Share compiled replays between the sweep's worker processes through JAX's persistent
    compilation cache (a point compiles once per shape, not once per process): the one the
    user set (``JAX_COMPILATION_CACHE_DIR``), which other runs share too, else `folder`."""
    import jax

    if not jax.config.values.get("jax_compilation_cache_dir"):
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run_task(task: Task) -> list[tuple[str, str | None]]:
    """Run a task's points and write each point's rows atomically; (run_id, error) per point."""
    from rfast_sim.experiment.runner import run

    try:
        res = run(task.scenario)
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
        write_atomic(frame.reset_index(drop=True), folder / f"{p.run_id}.parquet")
        results.append((p.run_id, None))
    return results


def run_task_in_worker(task: Task) -> list[tuple[str, str | None]]:
    """`run_task` in a worker process, which shares compiled code through the cache (in the
    calling process compiled functions are reused anyway)."""
    if task.scenario.problem is not None:  # a timing-only point imports no JAX
        use_compile_cache(Path(task.out) / "jax_cache")
    try:
        reregister(task.problems)
    except Exception as err:
        return [(p.run_id, f"problem.kind: cannot register {', '.join(task.problems)} in a "
                 f"worker ({type(err).__name__}: {err}); register it in an importable module")
                for p in task.points]
    return run_task(task)


def submit_local(tasks: list[Task], workers: int) -> Iterable[list[tuple[str, str | None]]]:
    if workers <= 1:
        for t in tasks:
            yield run_task(t)
        return
    # spawn, not fork: JAX's runtime threads do not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures: list[Future[Any]] = [pool.submit(run_task_in_worker, t) for t in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        except BaseException:  # Ctrl-C: do not start the queued points; --resume runs them
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def submit_dask(tasks: list[Task], workers: int,
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
            futures = [client.submit(run_task_in_worker, t, pure=False) for t in tasks]
            for f in dask_completed(futures):
                yield f.result()
    finally:
        if cluster is not None:
            cluster.close()
