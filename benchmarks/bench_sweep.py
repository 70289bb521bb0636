"""Sweep benchmark: a 1,000-point sweep of a 64-node R-FAST scenario, end to end.

    python benchmarks/bench_sweep.py [--points 1000] [--workers 2]

10 drop rates x 10 latency means x 10 seeds (points that differ only in the seed run as one
task); every point builds its trace (the vector builder) and replays it. Worker processes share
compiled code through JAX's persistent compilation cache (in the sweep folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rfast_sim.sweeps import run_sweep

SCENARIO = {
    "name": "sweep-bench", "nodes": 64,
    "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"}},
    "timing": {"compute": {"dist": "exponential", "mean": 1.0},
               "latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5}},
    "problem": {"kind": "least_squares", "dim": 20, "samples_per_node": 20, "batch_size": None},
    "algorithm": {"name": "rfast", "step_size": 0.05},
    "run": {"until": 30.0, "sample_every": 3.0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    side = max(1, round((args.points / 10) ** 0.5))
    spec = {"scenario": SCENARIO, "seeds": 10,
            "grid": {"timing.drop_prob": [round(float(v), 4) for v in np.linspace(0, 0.45, side)],
                     "timing.latency.mean": [round(float(v), 4)
                                             for v in np.linspace(0.01, 0.5, side)]}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frame = run_sweep(spec, Path(tmp) / "sweep", workers=args.workers)
        wall = time.perf_counter() - t0
    points = frame["run_id"].nunique()
    print(f"{points} points (64 nodes, {SCENARIO['run']['until']:.0f} s simulated each) on "
          f"{args.workers} workers: {wall:.0f} s, {wall / points * 1e3:.0f} ms per point")


if __name__ == "__main__":
    main()
