"""`step_size: auto`: find each algorithm's best step by the comparison table's own rule.

A log-spaced bracket is run on the scenario's own seeds and traces; while the best step sits at
an edge of the steps tried, the grid is continued past that edge (half a bracket at a time);
then the best step is refined (log-spaced steps between it and its neighbours) until the spacing
is fine or the budget is spent. Every algorithm gets the same rule and budget. The search is
deterministic: its inputs are the runs' figures, which the scenario's seed fixes. The caller
supplies `evaluate` (steps -> runs on every seed), so the search knows nothing of replay or online.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rfast_sim.experiment.metrics import step_ranking
from rfast_sim.experiment.results import Run, run_frame_of
from rfast_sim.scenario import AutoStep

# refinement stops once the best step's neighbours are this close (ratio): a finer step
# rarely changes a time to target by more than its seed-to-seed noise
FINEST_RATIO = 1.4


@dataclass
class Tuning:
    """One algorithm's search: its settings, the steps of each round, the pick and its cost."""

    algorithm: str
    settings: AutoStep
    rounds: list[tuple[str, list[float]]] = field(default_factory=list)  # (why, steps)
    chosen: float = math.nan
    at_edge: bool = False  # the budget ran out while the best step was still at an edge
    seconds: float = 0.0
    ranking: pd.DataFrame | None = None  # every step tried, best first (`step_ranking`)

    @property
    def tried(self) -> list[float]:
        return sorted(h for _, steps in self.rounds for h in steps)

    def summary(self) -> dict[str, Any]:
        """What summary.json records: settings, rounds, the pick and every step's figures."""
        figures = [] if self.ranking is None else [
            {k: v for k, v in row.items() if k != "algorithm"}
            for row in self.ranking.sort_values("step_size").to_dict("records")]
        return {"settings": self.settings.model_dump(), "chosen": self.chosen,
                "at_edge": self.at_edge, "seconds": self.seconds,
                "rounds": [{"why": why, "steps": steps} for why, steps in self.rounds],
                "tried": figures}


def bracket(settings: AutoStep) -> list[float]:
    """The initial log-spaced steps (rounded to 6 significant digits, so they print as they
    are)."""
    return [_round(h) for h in np.geomspace(settings.low, settings.high, settings.points)]


def _round(h: float) -> float:
    return float(f"{h:.6g}")


def next_steps(tried: list[float], best: float, settings: AutoStep) -> tuple[str, list[float]]:
    """The next round given the steps tried and the best so far: ("widen up" / "widen down",
    steps past an edge), ("refine", steps between the best and its neighbours), or ("", [])
    when the search is done (budget spent, or spacing finer than FINEST_RATIO)."""
    left = settings.budget - len(tried)
    if left <= 0:
        return "", []
    ratio = (settings.high / settings.low) ** (1.0 / max(settings.points - 1, 1))
    lo, hi = min(tried), max(tried)
    # half a bracket per widening: past a good edge most steps diverge or crawl, and the
    # budget they would take is better spent refining
    half = max(2, math.ceil(settings.points / 2))
    count = min(half, left)
    if best >= hi:
        return "widen up", [_round(hi * ratio ** k) for k in range(1, count + 1)]
    if best <= lo:
        return "widen down", [_round(lo / ratio ** k) for k in range(1, count + 1)]
    below = max(h for h in tried if h < best)
    above = min(h for h in tried if h > best)
    # each neighbour interval in `half` equal log parts: one round takes the spacing from the
    # bracket's ratio to about its `half`-th root (few rounds: a replay's cost is mostly per
    # round, a vmapped step costs less)
    mids = [_round(best * (h / best) ** (j / half)) for h in (below, above)
            if max(best, h) / min(best, h) > FINEST_RATIO for j in range(1, half)]
    # where the budget cannot take them all, the ones nearest the best first
    mids = sorted((h for h in dict.fromkeys(mids) if h not in tried and h != best),
                  key=lambda h: abs(math.log(h / best)))[:left]
    return ("refine", sorted(mids)) if mids else ("", [])


def tune(name: str, settings: AutoStep, evaluate: Callable[[list[float]], list[Run]],
         target: Mapping[str, float], seed: int) -> tuple[list[Run], Tuning]:
    """Search `name`'s step: every run made (all steps tried, on every seed) and the record of
    the search. `evaluate(steps)` runs those steps on every seed."""
    t0 = time.perf_counter()
    record = Tuning(name, settings)
    runs: list[Run] = []
    frames: list[pd.DataFrame] = []
    why, steps = "bracket", bracket(settings)
    while steps:
        record.rounds.append((why, steps))
        new = evaluate(steps)
        for r in new:  # kept for the result's frame (`extra["frame"]`), made once
            t1 = time.perf_counter()
            r.extra["frame"] = run_frame_of(r)
            r.timings["metrics_s"] = time.perf_counter() - t1
        runs += new
        frames += [r.extra["frame"] for r in new]
        record.ranking = step_ranking(pd.concat(frames, ignore_index=True), target, seed)
        record.chosen = float(record.ranking["step_size"].iloc[0])
        why, steps = next_steps(record.tried, record.chosen, settings)
    tried = record.tried
    record.at_edge = record.chosen in (tried[0], tried[-1])
    record.seconds = time.perf_counter() - t0
    return runs, record
