"""Tidy metrics: one row per (run, sample time), and summaries computed from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rfast_sim.scenario import Scenario

METRIC_COLUMNS = ("loss", "opt_gap", "grad_norm", "consensus", "accuracy", "dist_opt")
LOWER_IS_BETTER = {"loss": True, "opt_gap": True, "grad_norm": True, "accuracy": False}
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
              message_bytes: float, values: np.ndarray,
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
        "bytes": messages * message_bytes,
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
        for col in ("time", "updates", "messages", "bytes", "dropped", *METRIC_COLUMNS):
            row[f"final_{col}" if col in METRIC_COLUMNS else col] = last[col]
        row["diverged"] = bool(g["diverged"].any()) if "diverged" in g else False
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(df: pd.DataFrame, baseline: str,
                     target: Mapping[str, float]) -> pd.DataFrame:
    """Per algorithm: time to target, counters, final metrics and speed-up over `baseline`.

    Runs are averaged over seeds; where an algorithm ran several step sizes, the row is its
    best one (no diverged seed, then shortest mean time to target, then best final value), so
    every algorithm is compared at its own tuned step. `diverged` counts the diverged seeds.
    """
    runs = run_summaries(df, target)
    metric = next(iter(target))
    ttt = f"time_to_{metric}"
    cols = [ttt, "updates", "messages", "bytes", "dropped", "final_loss", "final_opt_gap",
            "final_accuracy", "final_dist_opt"]
    grouped = runs.groupby(["algorithm", "step_size"], sort=False)
    per_step = grouped[cols].mean().join(grouped["diverged"].sum().astype(int)).reset_index()
    sign = 1.0 if LOWER_IS_BETTER.get(metric, True) else -1.0
    per_step["_rank_d"] = per_step["diverged"] > 0
    per_step["_rank_t"] = per_step[ttt].fillna(np.inf)
    per_step["_rank_f"] = (sign * per_step[f"final_{metric}"]).fillna(np.inf)
    ranks = ["_rank_d", "_rank_t", "_rank_f"]
    best = per_step.sort_values(ranks, kind="stable").groupby("algorithm", sort=False).head(1)
    order = list(dict.fromkeys(runs["algorithm"]))
    table = best.set_index("algorithm").loc[order].drop(columns=ranks)
    base = table.loc[baseline, ttt] if baseline in table.index else float("nan")
    table["speedup"] = base / table[ttt]
    return table.reset_index()


def default_target(sc: Scenario) -> dict[str, float]:
    """The scenario's compare.target, or opt_gap 1e-3 (accuracy 0.9 where no optimum is known)."""
    if sc.compare is not None:
        return {str(k): float(v) for k, v in sc.compare.target.items()}
    return {"opt_gap": 1e-3} if sc.problem.kind != "mlp" else {"accuracy": 0.9}
