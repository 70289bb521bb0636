"""Matplotlib figures from the tidy metrics frame (headless: the Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rfast_sim.scenario import ScenarioError

LOG_METRICS = {"loss": False, "opt_gap": True, "grad_norm": True, "consensus": True,
               "dist_opt": True, "accuracy": False}


def plot_metric(df: pd.DataFrame, metric: str, x: str = "time", ax: Any = None) -> Any:
    """One line per algorithm (median over seeds and step sizes), log scale where it helps."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, g in df.groupby("algorithm", sort=False):
        if x == "time":
            line = g.groupby("time")[metric].median()
            ax.plot(line.index, line.to_numpy(), label=str(name))
        else:
            for _, run in g.groupby(["seed", "step_size"]):
                ax.plot(run[x], run[metric], label=str(name))
                break
    if LOG_METRICS.get(metric) and (df[metric] > 0).any():
        ax.set_yscale("log")
    ax.set_xlabel("simulated time [s]" if x == "time" else x)
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_run(df: pd.DataFrame, out: Path) -> list[Path]:
    """Loss / opt_gap / accuracy against simulated time and against updates."""
    metrics = [m for m in ("opt_gap", "loss", "accuracy", "consensus")
               if m in df and np.isfinite(df[m].to_numpy(dtype=float)).any()]
    files = []
    for x in ("time", "updates"):
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
    """Mean and 95% CI of `y` against swept key `x`, one line per `hue`."""
    if x not in summary:
        cols = ", ".join(map(str, summary.columns))
        raise ScenarioError(f"--x: {x!r} is not a swept key (columns: {cols})")
    mean, ci = f"{y}_mean", f"{y}_ci95"
    if mean not in summary:
        raise ScenarioError(f"--y: {y!r} is not summarised (try speedup, time_to_target, "
                            "final_opt_gap)")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in summary.groupby(hue, sort=False):
        g = g.groupby(x)[[mean, ci]].mean().sort_index()
        ax.errorbar(g.index, g[mean], yerr=g[ci], marker="o", capsize=3, label=str(name))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{y}_vs_{x.replace('.', '_')}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_folder(folder: Path, x: str | None = None, y: str = "speedup",
                hue: str = "algorithm") -> list[Path]:
    """Figures for a run folder (metrics.parquet) or a sweep folder (with --x)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such folder (give the --out folder of a run or sweep)")
    path = folder / "metrics.parquet"
    if not path.exists():
        raise ScenarioError(f"{folder}: no metrics.parquet here (is it a run's --out folder?)")
    return plot_run(pd.read_parquet(path), folder)
