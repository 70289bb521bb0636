"""Regenerate docs/_static/quickstart_flip.csv: the quickstart as shipped (one 5x straggler)
and with the one line that flips its verdict, a milder or no straggler, which Getting started
shows and explains.

    python docs/figures/quickstart_flip.py          # 4 runs of the quickstart, about a minute

Each row is ``rfast-sim run quickstart --set timing.stragglers.slowdown=S`` (3 seeds, the
quickstart's, each algorithm at its best of three steps): R-FAST's and Ring-AllReduce's median
times to the target with their 95% bootstrap CIs, R-FAST's speed-up with its paired CI, the
best steps, and how often the slowest node updates (R-FAST) and the ring completes a round.
``tests/test_docs_reader.py`` checks that the figures Getting started quotes are this file's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import rfast_sim

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "quickstart_flip.csv"
SLOWDOWNS = (5.0, 3.0, 2.0, 1.0)  # 5: the shipped quickstart


def _ci(median: float, low: float, high: float, unit: str = "") -> str:
    return f"{median:.3g}{unit} [{low:.3g}, {high:.3g}]"


def row(slowdown: float) -> dict[str, object]:
    """One variant of the quickstart: its figures, formatted as the page shows them."""
    change = [] if slowdown == SLOWDOWNS[0] else [f"timing.stragglers.slowdown={slowdown:g}"]
    res = rfast_sim.run(rfast_sim.load_scenario("quickstart", change))
    table = res.comparison().set_index("algorithm")
    rates = res.network().set_index("algorithm")
    rf, ring = table.loc["rfast"], table.loc["allreduce_sgd"]
    t = "time_to_target"
    return {
        "--set": change[0].removeprefix("timing.") if change else "(as shipped)",
        "straggler": f"{slowdown:g}x" if slowdown != 1 else "none",
        "R-FAST t→target (s)": _ci(rf[t], rf[f"{t}_ci_low"], rf[f"{t}_ci_high"]),
        "Ring-AllReduce t→target (s)": _ci(ring[t], ring[f"{t}_ci_low"], ring[f"{t}_ci_high"]),
        "R-FAST speed-up": _ci(rf["speedup"], rf["speedup_ci_low"], rf["speedup_ci_high"], "x"),
        "best step R-FAST / ring": f"{rf['step_size']:g} / {ring['step_size']:g}",
        "slowest node, updates/s (R-FAST)": f"{rates.loc['rfast', 'node_rate_min']:.2f}",
        "ring rounds/s": f"{rates.loc['allreduce_sgd', 'node_rate_min']:.2f}",
    }


def main() -> None:
    pd.DataFrame([row(s) for s in SLOWDOWNS]).to_csv(OUT, index=False)
    print(OUT.read_text())


if __name__ == "__main__":
    main()
