"""Reproduce the R-FAST paper's claims on the shipped `scenarios/paper/` scenarios.

Every scenario runs several seeds (at least 5) with the network model's contention on. Each
claim is checked by a rule stated next to it, on a 95% bootstrap CI: a claim is confirmed only
when the lower end of its CI clears the claim's bar. The speed-up claims are also measured with
contention off (``timing.nic: null``), so a reader sees what the contention-free model
flattered, and R-FAST's communication designs (``queue: latest``, two spanning trees) are
measured against Ring-AllReduce. A claim the simulator does not confirm is a finding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rfast_sim.experiment import stats
from rfast_sim.experiment.metrics import comparison_table
from rfast_sim.experiment.results import Result
from rfast_sim.experiment.runner import run
from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.loading import load_scenario, shipped_dir
from rfast_sim.scenario.seeding import stream

BASE, STRAGGLER = "mlp_homogeneous.yaml", "mlp_straggler.yaml"
NO_CONTENTION = ["timing.nic=null"]
STEPS = "[0.2, 0.4, 0.8, 1.6]"
TREE_STEPS = "[0.025, 0.05, 0.1, 0.2, 0.4]"  # trees mix slowly: they need smaller steps
MIN_SEEDS = 5  # a claim is confirmed over at least this many seeds, never fewer
TREES = ["graphs.pull.kind=binary_tree", "graphs.push.kind=binary_tree"]
DESIGNS = {  # R-FAST's communication designs on the homogeneous scenario: (overrides, steps)
    "exponential graphs, fifo NIC queue": (["timing.nic.queue=fifo"], STEPS),
    "exponential graphs, queue: latest (the paper scenarios' setting)":
        (["timing.nic.queue=latest"], STEPS),
    "two spanning trees (binary, root 0), fifo": ([*TREES, "timing.nic.queue=fifo"], TREE_STEPS),
    "two spanning trees, queue: latest": ([*TREES, "timing.nic.queue=latest"], TREE_STEPS),
}


def speedup(res: Result, alg: str, base: str) -> tuple[float, float, float]:
    """Median-ratio speed-up of `alg` over `base` with its paired 95% CI."""
    table = comparison_table(res.metrics, base, res.target, res.scenario.seed)
    row = table.set_index("algorithm").loc[alg]
    return float(row["speedup"]), float(row["speedup_ci_low"]), float(row["speedup_ci_high"])


def _fmt(s: tuple[float, float, float]) -> str:
    if np.isnan(s[0]):
        return "n/a (both missed the target)"
    point = "inf (the other missed)" if np.isinf(s[0]) else f"{s[0]:.2f}x"
    return f"{point} [{s[1]:.2f}, {s[2]:.2f}]"


def _speedups_over(bar: float, bases: tuple[str, ...]) -> Callable[[Result], tuple[str, bool]]:
    def check(res: Result) -> tuple[str, bool]:
        s = {b: speedup(res, "rfast", b) for b in bases}
        table = res.comparison().set_index("algorithm")
        reached = "; ".join(
            f"{a} {table.loc[a, 'reached']}"
            for a in ("rfast", *bases))
        text = "; ".join(f"{_fmt(v)} vs {k}" for k, v in s.items())
        return f"R-FAST speed-up (median ratio, 95% CI) {text} (reached: {reached})", all(
            v[1] >= bar for v in s.values())
    return check


def _finals(res: Result, column: str = "test_accuracy") -> dict[str, pd.Series]:
    """Per algorithm and seed: the final value of `column` at the algorithm's best step."""
    best = res.comparison().set_index("algorithm")["step_size"]
    m = res.metrics
    chosen = m[m.step_size == m.algorithm.map(best)].sort_values("time")
    return {str(a): g.groupby("seed")[column].last() for a, g in chosen.groupby("algorithm")}


def _robust(what: str, base: Result) -> Callable[[Result], tuple[str, bool]]:
    """R-FAST loses at most one point of test accuracy against the setting without the stress:
    the lower end of the paired bootstrap CI of the median difference is >= -0.01."""

    def check(res: Result) -> tuple[str, bool]:
        finals = _finals(res)
        diff = (finals["rfast"] - _finals(base)["rfast"]).dropna().to_numpy()
        rng = stream(res.scenario.seed, "claims")
        meds = np.median(diff[rng.integers(0, len(diff), (stats.RESAMPLES, len(diff)))], 1)
        low, high = np.quantile(meds, [0.025, 0.975])
        others = ", ".join(f"{a} {v.median():.3f}" for a, v in finals.items() if a != "rfast")
        return (f"R-FAST test accuracy {what}: median {finals['rfast'].median():.3f}, change vs "
                f"no stress {np.median(diff):+.3f} [{low:+.3f}, {high:+.3f}] (others: {others})",
                bool(low >= -0.01))

    return check


def _linear_rate(res: Result) -> tuple[str, bool]:
    fits = []
    for _, g in res.metrics.groupby("seed"):
        gap, time = g["opt_gap"].to_numpy(), g["time"].to_numpy()
        keep = (gap > 1e-13) & (time > 0)
        slope, icpt = np.polyfit(time[keep], np.log10(gap[keep]), 1)
        resid = np.log10(gap[keep]) - (slope * time[keep] + icpt)
        r2 = 1 - np.sum(resid**2) / np.sum((np.log10(gap[keep]) - np.log10(gap[keep]).mean())**2)
        fits.append((slope, r2, g["dist_opt"].to_numpy()[-1]))
    ok = [s < 0 and r2 > 0.9 and d < 1e-6 for s, r2, d in fits]
    slopes = [-f[0] for f in fits]
    return (f"log10 opt_gap falls {np.median(slopes):.3f} per simulated s (median; range "
            f"{min(slopes):.3f}-{max(slopes):.3f}), R^2 >= {min(f[1] for f in fits):.3f}; "
            f"max_i |x_i - x*| < 1e-6 in {sum(ok)}/{len(ok)} seeds", all(ok))


@dataclass(frozen=True)
class Claim:
    claim: str
    scenario: str
    check: Callable[[dict[str, Result]], Callable[[Result], tuple[str, bool]]]
    contention_matters: bool = False
    needs: tuple[str, ...] = ()  # the other scenarios its check compares against


CLAIMS = [
    Claim("1.5-2x faster than Ring-AllReduce and D-PSGD in wall-clock time to comparable "
          "accuracy", BASE, lambda r: _speedups_over(1.5, ("allreduce_sgd", "dpsgd")), True),
    Claim("1.5-2x faster than Ring-AllReduce and D-PSGD, with a straggler", STRAGGLER,
          lambda r: _speedups_over(1.5, ("allreduce_sgd", "dpsgd")), True),
    Claim("faster than AD-PSGD and OSGP, especially with stragglers", STRAGGLER,
          lambda r: _speedups_over(1.0, ("adpsgd", "osgp")), True),
    Claim("robust to packet loss (20% of packets dropped)", "mlp_packet_loss.yaml",
          lambda r: _robust("with 20% drops", r[BASE]), needs=(BASE,)),
    Claim("robust to data heterogeneity (strong label skew)", "mlp_heterogeneity.yaml",
          lambda r: _robust("at label skew alpha=0.1", r[BASE]), needs=(BASE,)),
    Claim("linear convergence for strongly convex problems (exact optimum, despite loss)",
          "linear_convergence.yaml", lambda r: _linear_rate),
]


def _run(scenario_dir: Path, name: str, overrides: list[str], out: Path | None,
         progress: Callable[[str], None] | None) -> Result:
    if progress:
        progress(name + (f" ({', '.join(overrides)})" if overrides else ""))
    res = run(load_scenario(scenario_dir / name, overrides))
    if out is not None:
        from rfast_sim import plotting

        folder = res.save(out)
        plotting.plot_run(res.metrics, folder, res.target)
    return res


def _designs(scenario_dir: Path, base: Result, out: Path, overrides: list[str],
             progress: Callable[[str], None] | None) -> pd.DataFrame:
    """R-FAST alone under each design, against the base run's Ring-AllReduce (same seeds, same
    timing draws; all-reduce uses neither the graphs nor the queue discipline)."""
    rows = []
    ring = base.metrics[base.metrics.algorithm == "allreduce_sgd"]
    for label, (extra, steps) in DESIGNS.items():
        only = f"algorithms=[{{name: rfast, step_size: {steps}}}]"
        res = _run(scenario_dir, BASE, [*overrides, only, "compare.baseline=rfast", *extra],
                   None, progress)
        frame = pd.concat([res.metrics, ring], ignore_index=True)
        table = comparison_table(frame, "allreduce_sgd", res.target, res.scenario.seed)
        rf = table.set_index("algorithm").loc["rfast"]
        rows.append({"design": label, "reached": rf["reached"],
                     "step_size": rf["step_size"],
                     "speedup": rf["speedup"], "speedup_ci_low": rf["speedup_ci_low"],
                     "speedup_ci_high": rf["speedup_ci_high"],
                     "mean_queueing_delay": float(np.mean([
                         r.trace.network["mean_queueing_delay"] for r in res.runs]))})
    table = pd.DataFrame(rows)
    table.to_csv(out / "designs.csv", index=False)
    return table


def _scenarios_of(claims: list[Claim]) -> list[str]:
    """The scenario files the claims run on, and those their checks compare against (the
    robustness claims read the homogeneous run), each once."""
    return list(dict.fromkeys([*(c.scenario for c in claims),
                               *(n for c in claims for n in c.needs)]))


def select_claims(only: list[str] | None) -> list[Claim]:
    """The claims on the named paper scenarios (`--only`; a name with or without ``.yaml``),
    or all of them."""
    if not only:
        return CLAIMS
    names = {c.scenario.removesuffix(".yaml") for c in CLAIMS}
    unknown = [n for n in only if Path(n).stem not in names]
    if unknown:
        raise ScenarioError(f"--only: no paper scenario {', '.join(map(repr, unknown))}; give "
                            f"one of {', '.join(sorted(names))}")
    wanted = {Path(n).stem for n in only}
    return [c for c in CLAIMS if c.scenario.removesuffix(".yaml") in wanted]


def reproduce(out: str | Path, scenario_dir: Path | None = None,
              overrides: list[str] | None = None,
              progress: Callable[[str], None] | None = None,
              only: list[str] | None = None) -> pd.DataFrame:
    """Run every paper scenario over its seeds, check each claim (with and without network
    contention), measure R-FAST's communication designs; write claims.csv/.md, designs.csv and
    figures under `out`. `only`: the claims on these paper scenarios alone (and the runs their
    checks compare against), without the contention-free reruns and the design variants: a
    smoke reproduction."""
    out = Path(out)
    scenario_dir = scenario_dir or shipped_dir() / "paper"
    overrides = overrides or []
    claims = select_claims(only)
    results = {name: _run(scenario_dir, name, overrides, out / Path(name).stem, progress)
               for name in _scenarios_of(claims)}
    free = {} if only else {
        name: _run(scenario_dir, name, [*overrides, *NO_CONTENTION], None, progress)
        for name in dict.fromkeys(c.scenario for c in claims if c.contention_matters)}
    rows = []
    for claim in claims:
        res = results[claim.scenario]
        measured, ok = claim.check(results)(res)
        off = claim.check(results)(free[claim.scenario])[0] if claim.scenario in free and \
            claim.contention_matters else ""
        rows.append({"claim": claim.claim, "scenario": claim.scenario,
                     "seeds": res.scenario.seeds, "measured": measured,
                     "without_contention": off,
                     "verdict": verdict(ok, res, load_scenario(
                         scenario_dir / claim.scenario).run.until)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "claims.csv", index=False)
    designs = None if only else _designs(scenario_dir, results[BASE], out, overrides, progress)
    _write_markdown(out / "claims.md", table, designs)
    return table


def verdict(ok: bool, res: Result, designed_until: float | None) -> str:
    """'confirmed' (the CI clears the bar over at least MIN_SEEDS seeds), 'not confirmed', or
    'inconclusive (N seeds, T s)' for a run with too few seeds, or shorter than the
    scenario's own `run.until` (`designed_until`), to tell: a smoke run refutes nothing."""
    sc = res.scenario
    few = sc.seeds < MIN_SEEDS
    short = designed_until is not None and (sc.run.until is None or
                                            sc.run.until < designed_until)
    if (ok and not few) or (not ok and not few and not short):
        return "confirmed" if ok else "not confirmed"
    until = f"{sc.run.until:g} s" if sc.run.until is not None else "max_updates"
    return f"inconclusive ({sc.seeds} seeds, {until})"


def md_cell(value: object) -> str:
    """A markdown table cell: `|` escaped and line breaks folded, so the row stays a row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _write_markdown(path: Path, table: pd.DataFrame, designs: pd.DataFrame | None) -> None:
    lines = ["| claim | seeds | simulator measured (contention on) | without contention | "
             "verdict |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(md_cell(v) for v in (
        r.claim, r.seeds, r.measured, r.without_contention or "-", r.verdict)) + " |"
        for r in table.itertuples()]
    if designs is None:
        path.write_text("\n".join(lines) + "\n")
        return
    lines += ["", "R-FAST's communication designs on the homogeneous scenario (speed-up over "
              "Ring-AllReduce, median ratio [95% CI]):", "",
              "| design | R-FAST reached | best step | speed-up | mean queueing delay (s) |",
              "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(md_cell(v) for v in (
        r.design, r.reached, f"{r.step_size:g}",
        _fmt((r.speedup, r.speedup_ci_low, r.speedup_ci_high)),
        f"{r.mean_queueing_delay:.3g}")) + " |" for r in designs.itertuples()]
    path.write_text("\n".join(lines) + "\n")
