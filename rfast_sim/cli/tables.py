"""The tables the commands print: a comparison (reached k/n, medians with CIs), network
figures, and the notes a reader of them needs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rfast_sim.cli.common import fmt

if TYPE_CHECKING:
    import pandas as pd


SHORT = {"final_opt_gap": "opt_gap", "final_accuracy": "accuracy",
         "final_test_accuracy": "test_acc", "bytes": "GB"}


def _with_ci(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "-"
    shown = "inf" if math.isinf(value) else fmt(float(value))
    if math.isnan(low):
        return shown
    hi = "inf" if math.isinf(high) else fmt(float(high))
    return f"{shown} [{fmt(float(low))}, {hi}]"


def comparison_view(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as a terminal shows it: reached as k/n, medians and speed-ups with
    their 95% CIs, short column names."""
    import pandas as pd

    ttt = "time_to_target"
    view = pd.DataFrame({"algorithm": df["algorithm"], "reached": df["reached"]})
    view["t→target"] = [
        _with_ci(*v) for v in zip(df[ttt], df[f"{ttt}_ci_low"], df[f"{ttt}_ci_high"],
                                  strict=True)]
    tuned = df["tuned"] if "tuned" in df else pd.Series(False, index=df.index)
    view["step"] = [f"{fmt(float(h))} (auto)" if t else float(h)
                    for h, t in zip(df["step_size"], tuned, strict=True)]
    for col in ("updates", "bytes", "messages", "dropped", "final_opt_gap", "final_accuracy",
                "final_test_accuracy"):
        if col in df and df[col].notna().any():
            view[SHORT.get(col, col)] = df[col] / 1e9 if col == "bytes" else df[col]
    view["speedup"] = [_with_ci(*v) for v in zip(df["speedup"], df["speedup_ci_low"],
                                                  df["speedup_ci_high"], strict=True)]
    return view


NETWORK_LEGEND = ("totals per run; upd/node/s: updates per node per simulated second, slowest "
                  "/ median / fastest node; queue: mean send-queue length (max); delays per "
                  "packet in seconds: waiting in the queue, transfer, latency; round: seconds "
                  "per synchronous round (of which after the node's own computation)")


def network_view(df: pd.DataFrame) -> pd.DataFrame:
    """The network figures of a timing-only run as a terminal shows them."""
    import pandas as pd

    def col(name: str) -> pd.Series:
        return df[name] if name in df else pd.Series(math.nan, index=df.index)

    def pair(a: pd.Series, b: pd.Series) -> list[str]:
        return ["-" if math.isnan(x) else f"{fmt(float(x))} ({fmt(float(y))})"
                for x, y in zip(a, b, strict=True)]

    return pd.DataFrame({
        "algorithm": df["algorithm"], "seeds": df["seeds"], "updates": col("updates"),
        "messages": col("messages"), "GB": col("bytes") / 1e9, "dropped": col("dropped"),
        "upd/node/s": [" / ".join(fmt(float(v)) for v in r) for r in zip(
            col("node_rate_min"), col("node_rate_median"), col("node_rate_max"), strict=True)],
        "queue": pair(col("mean_queue"), col("max_queue")),
        "queueing": col("mean_queueing_delay"), "transfer": col("mean_transfer_delay"),
        "latency": col("mean_latency"), "round": pair(col("mean_round"), col("mean_round_comm")),
    })


def comparison_notes(df: pd.DataFrame) -> list[str]:
    """Warnings a reader of the table needs: diverged seeds, best steps at a grid's edge (or,
    for a tuned step, at the edge of everything its search could try)."""
    tuned = df["tuned"] if "tuned" in df else [False] * len(df)
    notes = [f"{r.algorithm}: best step {r.step_size:g} is at the edge of the steps auto "
             "tried within its budget; raise step_size.auto.budget or move auto.low / high"
             if t else f"{r.algorithm}: best step {r.step_size:g} is at the edge of its grid; "
             "widen step_size (or use step_size: auto)"
             for r, t in zip(df.itertuples(), tuned, strict=True) if r.step_at_edge]
    notes += [f"{r.algorithm}: {r.diverged} of {r.seeds} seeds diverged at its best step"
              for r in df.itertuples() if r.diverged]
    seeds = int(df["seeds"].max()) if len(df) else 0
    notes.append(f"t→target, counters, final metrics: medians over {seeds} seed(s), misses "
                 "counted as inf; [95% bootstrap CI]"
                 + (" (few seeds: the CI is wide)" if seeds < 5 else ""))
    return notes
