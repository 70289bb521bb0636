"""Regenerate docs/_static/timeline_quickstart.png, the "Look at a run" page's figure: the
static timeline of the quickstart's R-FAST run (seed 0), over the window that the page opens
in Perfetto (``rfast-sim timeline runs/quick --until 6``).

    python docs/figures/timeline.py        # a second: timing only, no maths
"""

from __future__ import annotations

from pathlib import Path

import rfast_sim
from rfast_sim.experiment import budget
from rfast_sim.experiment.plan import packet_trace
from rfast_sim.plotting import plot_timeline

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "timeline_quickstart.png"


def main() -> None:
    sc = rfast_sim.load_scenario("quickstart", ["run.until=10", "seeds=1"])
    # re-derived as the command does: a window's length past its end (computations and
    # packets under way at 6 s show where they end)
    trace = packet_trace(sc, "rfast", sc.seed, until=10.0, dim=budget.model_dim(sc))
    ax = plot_timeline(trace, start=0.0, until=6.0)
    ax.set_title("quickstart, R-FAST, seed 0: computations (bars) and every packet from its "
                 "sender to its receiver (red: lost)")
    ax.figure.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
