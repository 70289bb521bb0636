"""What `step_size: auto` costs and changes, side by side with each scenario's shipped grid.

    python benchmarks/bench_tuning.py [SCENARIO ...] [--set KEY=VALUE ...]

For each shipped scenario (default: quickstart and the compare_* ones), runs it as shipped and
with every algorithm's step_size set to auto, and prints per algorithm: the grid's pick (and
whether it sits at the grid's edge), auto's pick and the number of steps it tried, both
speed-ups over the baseline, and the wall-clock factor of the tuned run over the shipped one.
"""

from __future__ import annotations

import argparse
import time

import rfast_sim
from rfast_sim.scenario.loading import load_scenario

DEFAULT = ["quickstart", "compare_homogeneous", "compare_stragglers", "compare_packet_loss",
           "compare_heterogeneity"]


def _timed(sc):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    res = rfast_sim.run(sc)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=DEFAULT)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    for name in args.scenarios:
        grid_sc = load_scenario(name, args.overrides)
        auto = [{"name": a.name, "step_size": "auto"} for a in grid_sc.algorithm_list]
        auto_sc = load_scenario(name, [*args.overrides, f"algorithms={auto}"])
        grid, grid_s = _timed(grid_sc)
        tuned, tuned_s = _timed(auto_sc)
        g = grid.comparison().set_index("algorithm")
        t = tuned.comparison().set_index("algorithm")
        print(f"\n{name}: {grid_sc.seeds} seeds; shipped grid {grid_s:.1f} s, auto {tuned_s:.1f} s "
              f"(x{tuned_s / grid_s:.2f} wall clock)")
        print(f"  {'algorithm':<16} {'grid step':>10} {'edge':>5} {'auto step':>10} {'tried':>5} "
              f"{'speed-up (grid)':>16} {'speed-up (auto)':>16}")
        for alg in g.index:
            rec = tuned.tuning[alg]
            print(f"  {alg:<16} {g.loc[alg, 'step_size']:>10.4g} "
                  f"{'yes' if g.loc[alg, 'step_at_edge'] else 'no':>5} {rec.chosen:>10.4g} "
                  f"{len(rec.tried):>5} {g.loc[alg, 'speedup']:>16.3g} "
                  f"{t.loc[alg, 'speedup']:>16.3g}")


if __name__ == "__main__":
    main()
