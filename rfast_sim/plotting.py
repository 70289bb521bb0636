"""Matplotlib figures from the tidy metrics frame (headless: the Agg backend)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rfast_sim.scenario import ScenarioError

LOG_METRICS = {"loss": False, "opt_gap": True, "grad_norm": True, "consensus": True,
               "dist_opt": True, "accuracy": False, "test_loss": False, "test_accuracy": False}


def plot_metric(df: pd.DataFrame, metric: str, x: str = "time", ax: Any = None) -> Any:
    """One line per algorithm (median over seeds and step sizes), log scale where it helps."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    log = LOG_METRICS.get(metric, False)
    values = df[metric].to_numpy(dtype=float)
    values = np.where(np.isfinite(values), values, np.nan)  # a diverged run ends its line
    if log:
        values = np.maximum(values, 1e-16)  # rounding can make an exact gap 0 or -1e-17
    df = df.assign(**{metric: values})
    for name, g in df.groupby("algorithm", sort=False):
        if x == "time":
            line = g.groupby("time")[metric].median()
            ax.plot(line.index, line.to_numpy(), label=str(name))
        else:
            for _, run in g.groupby(["seed", "step_size"]):
                ax.plot(run[x], run[metric], label=str(name))
                break
    if log and np.isfinite(values).any():
        ax.set_yscale("log")
    finite = df[np.isfinite(values)]
    if not metric.endswith("accuracy") and len(finite):
        # a diverging run must not squash the others: the top is the median algorithm's peak
        peaks = finite.groupby("algorithm")[metric].max()
        top = float(np.median(peaks)) * (10.0 if log else 1.1)
        if log and top > 0:
            low = max(float(finite[metric].min()), top * 1e-17)
            ax.set_ylim(low / 2, top)
        elif not log and top > 0:
            ax.set_ylim(min(0.0, float(finite[metric].min())), top)
    ax.set_xlabel("simulated time [s]" if x == "time" else x)
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def best_step_runs(df: pd.DataFrame, target: dict[str, float]) -> pd.DataFrame:
    """Keep, per algorithm, only the step size the comparison table picks (labelled)."""
    from rfast_sim.metrics import comparison_table

    table = comparison_table(df, str(df["algorithm"].iloc[0]), target)
    best = dict(zip(table["algorithm"], table["step_size"], strict=True))
    keep = df[df["step_size"] == df["algorithm"].map(best)].copy()
    if df.groupby("algorithm")["step_size"].nunique().max() > 1:
        keep["algorithm"] = keep["algorithm"] + " (step " + keep["step_size"].map(
            "{:g}".format) + ")"
    return keep


def plot_run(df: pd.DataFrame, out: Path,
             target: dict[str, float] | None = None) -> list[Path]:
    """Loss / opt_gap / accuracy (and the held-out set's, where there is one) against
    simulated time and against updates (a timing-only run: updates, messages and drops against
    time)."""
    if target:
        df = best_step_runs(df, target)
    metrics = [m for m in ("opt_gap", "loss", "accuracy", "test_accuracy", "consensus")
               if m in df and np.isfinite(df[m].to_numpy(dtype=float)).any()]
    xs: tuple[str, ...] = ("time", "updates")
    if not metrics:  # a timing-only run: its counters against time
        metrics, xs = [c for c in ("updates", "messages", "dropped") if c in df], ("time",)
    files = []
    for x in xs:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
        for ax, m in zip(axes[0], metrics, strict=True):
            plot_metric(df, m, x=x, ax=ax)
        fig.tight_layout()
        path = out / f"metrics_vs_{x}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def plot_sweep_summary(summary: pd.DataFrame, x: str, y: str, hue: str, out: Path) -> Path:
    """`y` (a median or speed-up) against swept key `x` with its 95% CI, a line per `hue`."""
    if x not in summary:
        cols = ", ".join(map(str, summary.columns))
        raise ScenarioError(f"--x: {x!r} is not a swept key (columns: {cols})")
    if y not in summary:
        raise ScenarioError(f"--y: {y!r} is not summarised (try speedup, time_to_target, "
                            "reached, final_opt_gap)")
    low, high = f"{y}_ci_low", f"{y}_ci_high"
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in summary.groupby(hue, sort=False):
        g = g.groupby(x).first().sort_index()
        value = g[y].to_numpy(dtype=float)
        finite = np.isfinite(value)  # an inf median (half the seeds missed) is not drawn
        if low in g:
            err = np.abs(np.stack([value - g[low].to_numpy(dtype=float),
                                   g[high].to_numpy(dtype=float) - value]))
            err = np.where(np.isfinite(err), err, 0.0)
            ax.errorbar(g.index[finite], value[finite], yerr=err[:, finite], marker="o",
                        capsize=3, label=str(name))
        else:
            ax.plot(g.index[finite], value[finite], marker="o", label=str(name))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{y}_vs_{x.replace('.', '_')}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_async_pays(summary: pd.DataFrame, egress: float = 1.25e9, clip: float = 5.0,
                    ax: Any = None) -> Any:
    """R-FAST's speed-up over the baseline against seconds per message on the NIC (message
    bytes / `egress`), a line per straggler slowdown and NIC queue: the summary of
    ``scenarios/sweep_when_async_pays.yaml``. Speed-ups are clipped at `clip` (inf: the
    baseline missed the target; 0: R-FAST did)."""
    rf = summary[summary["algorithm"] == "rfast"].copy()
    rf["seconds_per_message"] = rf["timing.message_bytes"] / egress
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for (slow, queue), g in rf.groupby(["timing.stragglers.slowdown", "timing.nic.queue"]):
        g = g.sort_values("seconds_per_message")
        s = g["speedup"].clip(upper=clip)
        err = [(s - g["speedup_ci_low"]).clip(lower=0),
               (g["speedup_ci_high"].clip(upper=clip) - s).clip(lower=0)]
        ax.errorbar(g["seconds_per_message"], s, yerr=err, marker="o", capsize=3,
                    ls="-" if queue == "latest" else "--",
                    label=f"slowdown {slow:g}, queue {queue}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per message on the NIC (message bytes / egress)")
    ax.set_ylabel("R-FAST speed-up over Ring-AllReduce\n(median ratio, 95% CI)")
    ax.set_title("above the line asynchrony pays")
    ax.legend(fontsize=8)
    return ax


def plot_folder(folder: Path, x: str | None = None, y: str = "speedup",
                hue: str = "algorithm") -> list[Path]:
    """Figures for a run folder (metrics.parquet) or a sweep folder (with --x)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such folder (give the --out folder of a run or sweep)")
    if (folder / "manifest.json").exists():
        from rfast_sim.sweeps import summarize

        summary = summarize(folder)
        if x is None:
            keys = summary.attrs["keys"]
            raise ScenarioError(f"--x: a sweep plot needs the swept key for the x axis "
                                f"(one of: {', '.join(keys)})")
        return [plot_sweep_summary(summary, x, y, hue, folder)]
    path = folder / "metrics.parquet"
    if not path.exists():
        raise ScenarioError(f"{folder}: no metrics.parquet here (is it a run's --out folder?)")
    target = None
    if (folder / "scenario.yaml").exists():
        from rfast_sim.loading import load_scenario
        from rfast_sim.metrics import default_target

        sc = load_scenario(folder / "scenario.yaml")
        target = default_target(sc) if sc.problem is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log axes of diverged runs overflow
        return plot_run(pd.read_parquet(path), folder, target)


def plot_timeline(trace: Any, until: float = 5.0, ax: Any = None, start: float = 0.0) -> Any:
    """Gantt-like view of an event trace from `start` to `until`: compute spans per node,
    deliveries and drops, down periods of nodes (grey) and of links (red, on the sender's
    row), and resets (black diamonds)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.4 * len(trace.compute_durations) + 1))
    node, begin, duration = trace.compute_spans()
    for i, t0, d in zip(node, begin, duration, strict=True):
        if t0 + d <= until and t0 + d >= start:
            ax.broken_barh([(t0, d)], (i - 0.35, 0.7), color="tab:blue", alpha=0.6)
    label = "node down"
    for i, spans in trace.node_down.items():
        for a, b in spans:
            ax.broken_barh([(a, min(b, until) - a)], (i - 0.45, 0.9), color="0.6", alpha=0.5,
                           hatch="//", label=label)
            label = "_"
    label = "link down (src row)"
    for (src, _dst), spans in trace.link_down.items():
        for a, b in spans:
            ax.broken_barh([(a, min(b, until) - a)], (src + 0.36, 0.08), color="tab:red",
                           label=label)
            label = "_"
    window = (trace.time >= start) & (trace.time <= until)
    for kind, style, name in (("deliver", dict(marker="|", color="tab:green"), "delivered"),
                              ("drop", dict(marker="x", color="tab:red"), "dropped"),
                              ("reset", dict(marker="D", color="black"), "reset")):
        pick = window & trace.is_kind(kind)
        if pick.any() or kind != "reset":
            ax.scatter(trace.time[pick], trace.node[pick], s=25, label=name, **style)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("node")
    ax.set_xlim(start, until)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("computations (bars), packet arrivals and losses at the receiver")
    return ax
