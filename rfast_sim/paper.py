"""Reproduce the R-FAST paper's claims on the shipped `scenarios/paper/` scenarios.

Each claim is checked by a rule stated next to it, and the table says what the simulator
measured and whether that confirms the paper. A claim the simulator does not confirm is a
finding, reported as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rfast_sim.loading import load_scenario, shipped_dir
from rfast_sim.results import Result
from rfast_sim.runner import run


@dataclass(frozen=True)
class Claim:
    claim: str
    scenario: str
    # (the claim's own result, the untouched base setting) -> (measured, confirmed?)
    check: Callable[[Result, Result], tuple[str, bool]]


def _table(res: Result) -> pd.DataFrame:
    return res.comparison().set_index("algorithm")


def _time(res: Result) -> pd.Series:
    t = _table(res)
    return t[next(c for c in t.columns if c.startswith("time_to_"))]


BASE = "mlp_homogeneous.yaml"


def _speedups_over_sync(res: Result, base: Result) -> tuple[str, bool]:
    t = _time(res)
    s = {b: t[b] / t["rfast"] for b in ("allreduce_sgd", "dpsgd")}
    text = ", ".join(f"{v:.2f}x vs {k}" for k, v in s.items())
    return f"time to target: rfast {t['rfast']:.1f} s; speed-up {text}", all(
        v >= 1.5 for v in s.values())


def _beats_async(res: Result, base: Result) -> tuple[str, bool]:
    t = _time(res)
    text = ", ".join(f"{k} {t[k]:.1f} s" for k in ("rfast", "adpsgd", "osgp"))
    return f"time to target: {text}", bool(t["rfast"] < min(t["adpsgd"], t["osgp"]))


def _robust(what: str) -> Callable[[Result, Result], tuple[str, bool]]:
    """R-FAST loses at most one accuracy point against the same setting without the stress."""

    def check(res: Result, base: Result) -> tuple[str, bool]:
        before = _table(base)["final_accuracy"]["rfast"]
        acc = _table(res)["final_accuracy"]
        others = ", ".join(f"{k} {acc[k]:.3f}" for k in acc.index if k != "rfast")
        return (f"rfast final accuracy {acc['rfast']:.3f} {what} vs {before:.3f} without "
                f"(others {what}: {others})", bool(acc["rfast"] >= before - 0.01))

    return check


def _linear_rate(res: Result, base: Result) -> tuple[str, bool]:
    df = res.metrics
    gap = df["opt_gap"].to_numpy()
    time = df["time"].to_numpy()
    keep = (gap > 1e-13) & (time > 0)
    slope, icpt = np.polyfit(time[keep], np.log10(gap[keep]), 1)
    fit = slope * time[keep] + icpt
    r2 = 1 - np.sum((np.log10(gap[keep]) - fit) ** 2) / np.sum(
        (np.log10(gap[keep]) - np.log10(gap[keep]).mean()) ** 2)
    dist = df["dist_opt"].to_numpy()[-1]
    return (f"log10 opt_gap falls {-slope:.3f} per simulated s (R^2 = {r2:.3f}); final "
            f"max_i |x_i - x*| = {dist:.1e}", bool(slope < 0 and r2 > 0.9 and dist < 1e-6))


CLAIMS = [
    Claim("1.5-2x faster than Ring-AllReduce and D-PSGD in wall-clock time to comparable "
          "accuracy", BASE, _speedups_over_sync),
    Claim("1.5-2x faster than Ring-AllReduce and D-PSGD, with a straggler",
          "mlp_straggler.yaml", _speedups_over_sync),
    Claim("faster than AD-PSGD and OSGP, especially with stragglers", "mlp_straggler.yaml",
          _beats_async),
    Claim("robust to packet loss (20% of packets dropped)", "mlp_packet_loss.yaml",
          _robust("with 20% drops")),
    Claim("robust to data heterogeneity (strong label skew)", "mlp_heterogeneity.yaml",
          _robust("at label skew alpha=0.1")),
    Claim("linear convergence for strongly convex problems (exact optimum, despite loss)",
          "linear_convergence.yaml", _linear_rate),
]


def reproduce(out: str | Path, scenario_dir: Path | None = None,
              overrides: list[str] | None = None,
              progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run every paper scenario once, check each claim, write claims.csv/.md and figures."""
    from rfast_sim import plotting

    out = Path(out)
    scenario_dir = scenario_dir or shipped_dir() / "paper"
    results: dict[str, Result] = {}
    rows = []
    for name in dict.fromkeys(c.scenario for c in CLAIMS):
        if progress:
            progress(name)
        results[name] = res = run(load_scenario(scenario_dir / name, overrides or []))
        folder = res.save(out / Path(name).stem)
        plotting.plot_run(res.metrics, folder, res.target)
    for claim in CLAIMS:
        measured, ok = claim.check(results[claim.scenario], results[BASE])
        rows.append({"claim": claim.claim, "scenario": claim.scenario, "measured": measured,
                     "verdict": "confirmed" if ok else "not confirmed"})
    table = pd.DataFrame(rows)
    table.to_csv(out / "claims.csv", index=False)
    lines = ["| claim | scenario | simulator measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {r.claim} | {r.scenario} | {r.measured} | {r.verdict} |"
              for r in table.itertuples()]
    (out / "claims.md").write_text("\n".join(lines) + "\n")
    return table
