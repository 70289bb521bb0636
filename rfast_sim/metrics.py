"""Tidy metrics: one row per (run, sample time), and summaries computed from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

METRIC_COLUMNS = ("loss", "opt_gap", "grad_norm", "consensus", "accuracy", "dist_opt")
LOWER_IS_BETTER = {"loss": True, "opt_gap": True, "grad_norm": True, "accuracy": False}


def run_frame(*, algorithm: str, seed: int, step_size: float, sample_time: np.ndarray,
              updates: np.ndarray, messages: np.ndarray, dropped: np.ndarray,
              message_bytes: float, values: np.ndarray,
              extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The tidy frame of one run. `values[k]` holds METRIC_COLUMNS at `sample_time[k]`."""
    df = pd.DataFrame({
        "algorithm": algorithm,
        "seed": seed,
        "step_size": step_size,
        "time": sample_time,
        "updates": updates,
        "messages": messages,
        "bytes": messages * message_bytes,
        "dropped": dropped,
    })
    for j, name in enumerate(METRIC_COLUMNS):
        df[name] = values[:, j]
    for key, value in (extra or {}).items():
        df[key] = value
    return df


def time_to_target(df: pd.DataFrame, metric: str, target: float) -> float:
    """First sample time at which `metric` reaches `target` (NaN if never)."""
    values = df[metric].to_numpy()
    hit = values <= target if LOWER_IS_BETTER.get(metric, True) else values >= target
    idx = np.flatnonzero(hit)
    return float(df["time"].to_numpy()[idx[0]]) if len(idx) else float("nan")


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
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(df: pd.DataFrame, baseline: str,
                     target: Mapping[str, float]) -> pd.DataFrame:
    """Per algorithm (mean over seeds and step sizes): time to target, counters, final metrics
    and speed-up in time-to-target over `baseline`."""
    runs = run_summaries(df, target)
    metric = next(iter(target))
    ttt = f"time_to_{metric}"
    cols = [ttt, "updates", "messages", "bytes", "dropped", "final_loss", "final_opt_gap",
            "final_accuracy", "final_dist_opt"]
    table = runs.groupby("algorithm", sort=False)[cols].mean()
    base = table.loc[baseline, ttt] if baseline in table.index else float("nan")
    table["speedup"] = base / table[ttt]
    return table.reset_index()
