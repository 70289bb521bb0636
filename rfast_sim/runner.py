"""The one entry point: run every algorithm x seed x step size of a scenario.

Online (:mod:`rfast_sim.online`) calls the jitted update as SimPy fires each event; replay
(:mod:`rfast_sim.replay`, the default) records the trace and runs it in one jitted scan.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable

import pandas as pd

from rfast_sim import budget
from rfast_sim.online import run_online
from rfast_sim.problems import problem_dim
from rfast_sim.replay import run_replay
from rfast_sim.results import Result, Run, run_frame_of
from rfast_sim.scenario import Scenario
from rfast_sim.setup import prepare, scenario_graphs


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def run(sc: Scenario, *, mode: str | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        max_memory: float | None = None) -> Result:
    """Run every algorithm x seed x step size of a scenario; return runs and the tidy frame.

    The run is refused (ScenarioError) before anything is allocated when its memory estimate
    passes `max_memory` bytes (default: most of the available memory).
    """
    budget.check(sc, max_memory, dim=problem_dim(sc.problem, sc.nodes, sc.seed))
    mode = mode or sc.run.mode
    graphs = scenario_graphs(sc, [a.name for a in sc.algorithm_list])
    total = sum(len(a.step_sizes) for a in sc.algorithm_list) * sc.seeds
    runs: list[Run] = []
    for spec in sc.algorithm_list:
        setups = [prepare(sc, spec.name, s, graphs) for s in sc.seed_list]
        if mode == "online":
            new = []
            for setup in setups:
                for h in spec.step_sizes:
                    new.append(run_online(setup, h))
                    if progress:
                        progress(len(runs) + len(new), total, spec.name)
        else:
            new = run_replay(setups, spec.step_sizes)
            if progress:
                progress(len(runs) + len(new), total, spec.name)
        by_seed = {s.seed: s for s in setups}
        for r in new:
            r.extra["straggler_nodes"] = by_seed[r.seed].straggler_nodes
            r.extra["peak_rss_bytes"] = peak_rss_bytes()
        runs.extend(new)
    frames = []
    for r in runs:
        t0 = time.perf_counter()
        frames.append(run_frame_of(r))
        r.timings["metrics_s"] = time.perf_counter() - t0
    return Result(sc, runs, pd.concat(frames, ignore_index=True))
