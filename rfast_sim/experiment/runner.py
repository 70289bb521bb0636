"""The one entry point: run every algorithm x seed x step size of a scenario.

Online (:mod:`rfast_sim.maths.online`) calls the jitted update as SimPy fires each event; replay
(:mod:`rfast_sim.maths.replay`, the default) records the trace and runs it in one jitted scan.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from rfast_sim.experiment.metrics import METRIC_COLUMNS
from rfast_sim.experiment.plan import Plan, build_plan
from rfast_sim.experiment.results import Result, Run, run_frame_of
from rfast_sim.experiment.tuning import Tuning, tune
from rfast_sim.scenario import AlgorithmSpec, Scenario
from rfast_sim.timing.devices import class_counts, class_predictions
from rfast_sim.timing.traces import record_trace

Progress = Callable[[int, int, str], None]


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def device_records(plan: Plan) -> list[dict[str, float | str]]:
    """Per device class: its nodes, the step's FLOPs and bytes, its predicted step time and
    whether compute or memory bounds it (summary.json's ``devices``)."""
    if plan.step_cost is None:
        return []
    counts = class_counts(plan.timing)
    return [{**p.record(), "nodes": counts[name]}
            for name, p in class_predictions(plan.timing, plan.step_cost).items()]


def run(sc: Scenario, *, mode: str | None = None, progress: Progress | None = None,
        max_memory: float | None = None) -> Result:
    """Run every algorithm x seed x step size of a scenario; return runs and the tidy frame.

    The scenario is compiled once (:func:`rfast_sim.experiment.plan.build_plan`); each run's
    setup comes from that plan. `step_size: auto` searches each algorithm's step
    (:mod:`rfast_sim.experiment.tuning`); every step tried is in the result. `problem: null`
    runs the event engine alone (no JAX, no replay): counters and network figures, NaN metric
    columns. The run is refused (ScenarioError) before anything is allocated when its memory
    estimate passes `max_memory` bytes (default: most of the available memory).

    Example (R-FAST against Ring-AllReduce on the quickstart, cut to one seed and 10 s)::

        >>> import rfast_sim
        >>> sc = rfast_sim.load_scenario("quickstart", [
        ...     "seeds=1", "run.until=10", "algorithms=[{name: rfast, step_size: 2.0},"
        ...     " {name: allreduce_sgd, step_size: 2.0}]"])
        >>> res = rfast_sim.run(sc)
        >>> res.comparison()["algorithm"].tolist()
        ['rfast', 'allreduce_sgd']
        >>> sorted(res.metrics["seed"].unique().tolist()), float(res.metrics["time"].max())
        ([0], 10.0)
    """
    plan = build_plan(sc, max_memory, mode)
    runs: list[Run] = []
    frames: list[pd.DataFrame] = []
    tuning: dict[str, Tuning] = {}
    seeds = len(plan.seeds)
    total = seeds * (len(plan.algorithms) if plan.problem is None else
                     sum(a.max_runs_per_seed for a in plan.algorithms))
    for spec in plan.algorithms:
        if progress:  # the total is known now: a bar or a log line from the start
            progress(len(runs), total, spec.name)
        if plan.problem is None:
            new = [_timing_run(plan, spec.name, s) for s in plan.seeds]
        else:
            new, record = _math_runs(plan, spec)
            if record is not None:
                tuning[spec.name] = record
                total += len(record.tried) * seeds - spec.max_runs_per_seed * seeds
        for r in new:
            r.extra["peak_rss_bytes"] = peak_rss_bytes()
            if "frame" not in r.extra:  # a search has made its runs' frames already
                t0 = time.perf_counter()
                r.extra["frame"] = run_frame_of(r)
                r.timings["metrics_s"] = time.perf_counter() - t0
            frames.append(r.extra.pop("frame"))
        runs.extend(new)
        if progress:
            progress(len(runs), total, spec.name)
    return Result(sc, runs, pd.concat(frames, ignore_index=True), tuning,
                  devices=device_records(plan))


def _math_runs(plan: Plan, spec: AlgorithmSpec) -> tuple[list[Run], Tuning | None]:
    """One algorithm's runs on every seed: its steps, or those its search tries."""
    from rfast_sim.maths.online import run_online
    from rfast_sim.maths.replay import run_replay

    setups = [plan.setup(spec.name, s) for s in plan.seeds]
    traces = None  # recorded by the first replay; one trace serves every step of a seed

    def evaluate(steps: list[float]) -> list[Run]:
        nonlocal traces
        if plan.mode == "online":
            new = [run_online(s, h) for s in setups for h in steps]
        else:
            new = run_replay(setups, steps, traces)
            traces = traces or [next(r.trace for r in new if r.seed == s.seed) for s in setups]
        by_seed = {s.seed: s for s in setups}
        for r in new:
            r.extra["straggler_nodes"] = by_seed[r.seed].straggler_nodes
            r.extra["device_nodes"] = by_seed[r.seed].device_nodes
            r.extra["step_cost"] = by_seed[r.seed].step_cost  # re-deriving its trace needs it
        return new

    if spec.auto is None:
        return evaluate(spec.step_sizes), None
    return tune(spec.name, spec.auto, evaluate, plan.target, plan.seed)


def _timing_run(plan: Plan, name: str, seed: int) -> Run:
    """A timing-only run: the trace and its counters; every metric NaN."""
    setup = plan.timing_setup(name, seed)
    t0 = time.perf_counter()
    trace = record_trace(setup)
    wall = time.perf_counter() - t0
    metrics = np.full((len(trace.sample_time), len(METRIC_COLUMNS)), np.nan)
    return Run(name, seed, math.nan, trace, metrics, None, wall, setup.message_bytes,
               extra={"straggler_nodes": setup.straggler_nodes,
                      "device_nodes": setup.device_nodes}, timings={"trace_s": wall})
