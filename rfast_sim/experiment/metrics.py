"""Tidy metrics: one row per (run, sample time), and summaries computed from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rfast_sim.experiment import stats
from rfast_sim.scenario import Compare, Problem
from rfast_sim.scenario.seeding import stream

METRIC_COLUMNS = ("loss", "opt_gap", "grad_norm", "consensus", "accuracy", "dist_opt",
                  "test_loss", "test_accuracy")  # test_*: on the held-out set (NaN: none)
LOWER_IS_BETTER = {"loss": True, "opt_gap": True, "grad_norm": True, "accuracy": False,
                   "test_loss": True, "test_accuracy": False}
COUNTERS = ("updates", "messages", "bytes", "dropped", "superseded")  # cumulative, per sample
DIVERGENCE_FACTOR = 1e6  # a run has diverged once loss or opt_gap grows past this x its start


def divergence(values: np.ndarray) -> np.ndarray:
    """Per sample: has the run diverged by now? From the first sample where loss or opt_gap is
    not finite (though finite at the start) or past DIVERGENCE_FACTOR x its start, on."""
    bad = np.zeros(len(values), dtype=bool)
    for name in ("loss", "opt_gap"):
        v = values[:, METRIC_COLUMNS.index(name)]
        if not len(v) or not np.isfinite(v[0]):
            continue
        with np.errstate(invalid="ignore"):
            bad |= ~np.isfinite(v) | (np.abs(v) > DIVERGENCE_FACTOR * max(abs(v[0]), 1e-12))
    return np.cumsum(bad) > 0


def run_frame(*, algorithm: str, seed: int, step_size: float, sample_time: np.ndarray,
              updates: np.ndarray, messages: np.ndarray, dropped: np.ndarray,
              nbytes: np.ndarray, values: np.ndarray,
              extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The tidy frame of one run. `values[k]` holds METRIC_COLUMNS at `sample_time[k]`; from
    the first diverged sample on, `diverged` is True and the metric values are NaN."""
    diverged = divergence(values)
    values = np.where(diverged[:, None], np.nan, values)
    df = pd.DataFrame({
        "algorithm": algorithm,
        "seed": seed,
        "step_size": step_size,
        "time": sample_time,
        "updates": updates,
        "messages": messages,
        "bytes": nbytes,
        "dropped": dropped,
        "diverged": diverged,
    })
    for j, name in enumerate(METRIC_COLUMNS):
        df[name] = values[:, j]
    for key, value in (extra or {}).items():
        df[key] = value
    return df


def time_to_target(df: pd.DataFrame, metric: str, target: float) -> float:
    """First sample time from which `metric` stays at `target` or better until the end (NaN if
    it never settles). With stochastic gradients a first crossing is luck; settling is not."""
    values = df[metric].to_numpy()
    hit = values <= target if LOWER_IS_BETTER.get(metric, True) else values >= target
    if not len(hit) or not hit[-1]:
        return float("nan")
    misses = np.flatnonzero(~hit)
    first = misses[-1] + 1 if len(misses) else 0
    return float(df["time"].to_numpy()[first])


def run_summaries(df: pd.DataFrame, target: Mapping[str, float] | None = None,
                  by: tuple[str, ...] = ("algorithm", "seed", "step_size")) -> pd.DataFrame:
    """One row per run: final counters and metrics, and the time to each target."""
    rows = []
    for key, g in df.groupby(list(by), sort=False, dropna=False):
        g = g.sort_values("time")
        last = g.iloc[-1]
        row: dict[str, Any] = dict(zip(by, key if isinstance(key, tuple) else (key,),
                                       strict=True))
        for metric, value in (target or {}).items():
            row[f"time_to_{metric}"] = time_to_target(g, metric, value)
        metrics = [c for c in METRIC_COLUMNS if c in g]  # frames written before a column existed
        counters = [c for c in COUNTERS if c in g]
        for col in ("time", *counters, *metrics):
            row[f"final_{col}" if col in METRIC_COLUMNS else col] = last[col]
        row["diverged"] = bool(g["diverged"].any()) if "diverged" in g else False
        rows.append(row)
    return pd.DataFrame(rows)


TTT = "time_to_target"  # the one name of the (first) target's time in every table
# comparison.csv wrote `time_to_<metric>` up to 0.2; Result.save writes both for one release
LEGACY_TTT = "time_to_{metric}"


def _median(values: pd.Series) -> float:
    return float(np.nanmedian(values)) if values.notna().any() else float("nan")


def _per_step(runs: pd.DataFrame, ttt: str, metric: str, seed: int) -> pd.DataFrame:
    """One row per (algorithm, step size): censored time to target over seeds (as `TTT`),
    `reached` as k/n (and as `reached_fraction`), medians over seeds of the counters and of
    the final metrics."""
    rows = []
    for k, ((alg, step), g) in enumerate(runs.groupby(["algorithm", "step_size"], sort=False)):
        c = stats.summarize_times(g[ttt].to_numpy(), stream(seed, "bootstrap", k))
        finals = {f"final_{m}": _median(g[f"final_{m}"]) for m in METRIC_COLUMNS
                  if f"final_{m}" in g}
        rows.append({
            "algorithm": alg, "step_size": step, "seeds": c.seeds,
            "reached": stats.reached_text(c.fraction, c.seeds), "reached_fraction": c.fraction,
            TTT: c.median, f"{TTT}_ci_low": c.ci_low, f"{TTT}_ci_high": c.ci_high,
            "diverged": int(g["diverged"].sum()),
            **{col: _median(g[col]) for col in ("updates", "messages", "bytes", "dropped")},
            **finals,
        })
    return pd.DataFrame(rows)


def _ranked(per_step: pd.DataFrame, ttt: str, metric: str) -> pd.DataFrame:
    """`per_step` best first within each algorithm: no diverged seed, then highest reached,
    then lowest median time to target, then best final value of the target metric, then the
    smaller step (the safer one; where every step diverged, the search goes lower)."""
    sign = 1.0 if LOWER_IS_BETTER.get(metric, True) else -1.0
    ranked = per_step.assign(
        _d=per_step["diverged"] > 0, _r=-per_step["reached_fraction"], _t=per_step[TTT],
        _f=(sign * per_step[f"final_{metric}"]).fillna(np.inf))
    return ranked.sort_values(["_d", "_r", "_t", "_f", "step_size"], kind="stable").drop(
        columns=["_d", "_r", "_t", "_f"])


def _best_steps(per_step: pd.DataFrame, ttt: str, metric: str) -> pd.DataFrame:
    """Per algorithm, its best step (`_ranked`); `step_at_edge` flags a best step at the end
    of a grid of several."""
    best = _ranked(per_step, ttt, metric).groupby("algorithm", sort=False).head(1)
    grid = per_step.groupby("algorithm")["step_size"].agg(["min", "max", "count"])
    g = grid.loc[best["algorithm"]]
    best = best.assign(step_at_edge=((g["count"].to_numpy() > 1)
                                     & ((best["step_size"].to_numpy() == g["min"].to_numpy())
                                        | (best["step_size"].to_numpy() == g["max"].to_numpy()))))
    return best


def _censored_runs(df: pd.DataFrame, target: Mapping[str, float]) -> tuple[pd.DataFrame, str, str]:
    """Per-run summaries with the time to the (first) target censored: a miss or a diverged
    run counts as +inf."""
    runs = run_summaries(df, target)
    metric = next(iter(target))
    ttt = f"time_to_{metric}"
    runs[ttt] = np.where(runs["diverged"], np.inf, stats.as_censored(runs[ttt].to_numpy()))
    return runs, metric, ttt


def step_ranking(df: pd.DataFrame, target: Mapping[str, float], seed: int = 0) -> pd.DataFrame:
    """Every (algorithm, step size) of a frame with its figures over the seeds, best first
    within each algorithm by the comparison table's rule (what `step_size: auto` searches
    with)."""
    runs, metric, ttt = _censored_runs(df, target)
    return _ranked(_per_step(runs, ttt, metric, seed), ttt, metric).reset_index(drop=True)


def counters_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm, medians over its runs of the final counters and their rates per
    simulated second (what a timing-only frame holds)."""
    runs = run_summaries(df)
    cols = [c for c in COUNTERS if c in runs]
    for c in ("updates", "messages"):
        runs[f"{c}_per_s"] = runs[c] / runs["time"].where(runs["time"] > 0)
    table = runs.groupby("algorithm", sort=False)[
        ["time", *cols, "updates_per_s", "messages_per_s"]].median()
    table.insert(0, "seeds", runs.groupby("algorithm", sort=False)["seed"].count())
    return table.reset_index()


def comparison_table(df: pd.DataFrame, baseline: str, target: Mapping[str, float],
                     seed: int = 0) -> pd.DataFrame:
    """Per algorithm at its best step size: reached (k/n seeds that reach the target, and
    `reached_fraction`; a diverged seed is a miss), the median time to the (first) target
    (`time_to_target`) counting misses as +inf with a bootstrap 95% CI, counters and final
    metrics (medians over seeds), and the speed-up over `baseline`
    (ratio of medians, paired bootstrap CI over the seeds both ran). The bootstrap generator is
    seeded from `seed` (the scenario's), so reruns print the same CIs.
    """
    runs, metric, ttt = _censored_runs(df, target)
    best = _best_steps(_per_step(runs, ttt, metric, seed), ttt, metric)
    order = list(dict.fromkeys(runs["algorithm"]))
    table = best.set_index("algorithm").loc[order].reset_index()
    chosen = runs.merge(table[["algorithm", "step_size"]], on=["algorithm", "step_size"])
    times = chosen.pivot_table(index="seed", columns="algorithm", values=ttt, aggfunc="first")
    speedups = []
    for k, alg in enumerate(table["algorithm"]):
        if baseline not in times or alg not in times:
            speedups.append((np.nan, np.nan, np.nan))
            continue
        pair = times[[baseline, alg]].dropna()
        speedups.append(stats.paired_speedup(pair[baseline].to_numpy(), pair[alg].to_numpy(),
                                             stream(seed, "bootstrap-speedup", k)))
    table[["speedup", "speedup_ci_low", "speedup_ci_high"]] = np.array(speedups, dtype=float)
    return table


def default_target(problem: Problem | None, compare: Compare | None) -> dict[str, float]:
    """A scenario's compare.target, or its problem's default (opt_gap 1e-3 where the optimum
    is known, else (test) accuracy 0.9); none for a timing-only run."""
    if compare is not None:
        return {str(k): float(v) for k, v in compare.target.items()}
    return problem.default_target() if problem is not None else {}
