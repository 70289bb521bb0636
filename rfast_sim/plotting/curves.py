"""Metric curves of a run: the median over seeds with its interquartile band."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

LOG_METRICS = {"loss": False, "opt_gap": True, "grad_norm": True, "consensus": True,
               "dist_opt": True, "accuracy": False, "test_loss": False, "test_accuracy": False}
GRID_POINTS = 200  # samples of the common x grid when seeds do not share their x values


def new_figure(figsize: tuple[float, float], managed: bool = True) -> Figure:
    """A figure: through pyplot (`managed`, so Jupyter shows it and `plt.show()` works) or a
    bare `Figure` for a file (no backend, no pyplot state left behind)."""
    if managed:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    return Figure(figsize=figsize)


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    return ax if ax is not None else new_figure(figsize).subplots()


def median_band(runs: pd.DataFrame, metric: str, x: str) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray]:
    """`(grid, median, q25, q75)` of `metric` over the seeds of `runs` against `x`. Seeds that
    share their x values are taken as they are; otherwise (updates differ between seeds) each
    seed is interpolated onto a common grid over the x range every seed covers, so the median
    at a point is always over all seeds."""
    curves = [(g[x].to_numpy(dtype=float), g[metric].to_numpy(dtype=float))
              for _, g in runs.sort_values(x, kind="stable").groupby("seed", sort=True)]
    xs = curves[0][0]
    if all(len(c[0]) == len(xs) and np.array_equal(c[0], xs) for c in curves):
        grid, ys = xs, np.stack([c[1] for c in curves])
    else:
        low, high = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
        grid = np.linspace(low, high, GRID_POINTS) if high > low else np.array([low])
        ys = np.stack([np.interp(grid, cx, cy) for cx, cy in curves])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged: NaN, no line
        q25, median, q75 = np.nanpercentile(ys, [25, 50, 75], axis=0)
    return grid, median, q25, q75


def _label(alg: str, step: float, steps_of: pd.Series) -> str:
    return alg if steps_of[alg] <= 1 else f"{alg} (step {step:g})"


def plot_metric(df: pd.DataFrame, metric: str, x: str = "time", ax: Any = None) -> Any:
    """Draw `metric` against `x` (``time`` or ``updates``): per algorithm and step size, the
    median over seeds (a line) and the interquartile range (a band); log scale where it helps.
    Returns the ax."""
    ax = _axes(ax, (6, 4))
    log = LOG_METRICS.get(metric, False)
    values = df[metric].to_numpy(dtype=float)
    values = np.where(np.isfinite(values), values, np.nan)  # a diverged run ends its line
    if log:
        values = np.maximum(values, 1e-16)  # rounding can make an exact gap 0 or -1e-17
    df = df.assign(**{metric: values})
    steps_of = df.groupby("algorithm", sort=False)["step_size"].nunique()
    # a timing-only run has no step (NaN): keep its group
    for (alg, step), g in df.groupby(["algorithm", "step_size"], sort=False, dropna=False):
        grid, median, q25, q75 = median_band(g, metric, x)
        seeds = g["seed"].nunique()
        (line,) = ax.plot(grid, median, label=_label(str(alg), float(step), steps_of))
        if seeds > 1:
            ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.2, lw=0)
    if log and np.isfinite(values).any():
        ax.set_yscale("log")
    _limits(ax, df, metric, values, log)
    seeds = int(df.groupby(["algorithm", "step_size"], dropna=False)["seed"].nunique().max()) \
        if len(df) else 0
    ax.set_xlabel("simulated time [s]" if x == "time" else x)
    ax.set_ylabel(f"{metric} (median of {seeds} seeds, IQR)" if seeds > 1 else metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def _limits(ax: Any, df: pd.DataFrame, metric: str, values: np.ndarray, log: bool) -> None:
    finite = df[np.isfinite(values)]
    if metric.endswith("accuracy") or not len(finite):
        return
    # a diverging run must not squash the others: the top is the median algorithm's peak
    peaks = finite.groupby("algorithm")[metric].max()
    top = float(np.median(peaks)) * (10.0 if log else 1.1)
    if log and top > 0:
        low = max(float(finite[metric].min()), top * 1e-17)
        ax.set_ylim(low / 2, top)
    elif not log and top > 0:
        ax.set_ylim(min(0.0, float(finite[metric].min())), top)


def best_step_runs(df: pd.DataFrame, target: dict[str, float]) -> pd.DataFrame:
    """Keep, per algorithm, only the step size the comparison table picks (labelled)."""
    from rfast_sim.experiment.metrics import comparison_table

    table = comparison_table(df, str(df["algorithm"].iloc[0]), target)
    best = dict(zip(table["algorithm"], table["step_size"], strict=True))
    keep = df[df["step_size"] == df["algorithm"].map(best)].copy()
    if df.groupby("algorithm")["step_size"].nunique().max() > 1:
        keep["algorithm"] = keep["algorithm"] + " (step " + keep["step_size"].map(
            "{:g}".format) + ")"
    return keep


def _run_metrics(df: pd.DataFrame) -> tuple[list[str], tuple[str, ...]]:
    metrics = [m for m in ("opt_gap", "loss", "accuracy", "test_accuracy", "consensus")
               if m in df and np.isfinite(df[m].to_numpy(dtype=float)).any()]
    if not metrics:  # a timing-only run: its counters against time
        return [c for c in ("updates", "messages", "dropped") if c in df], ("time",)
    return metrics, ("time", "updates")


def run_figure(df: pd.DataFrame, x: str = "time", target: dict[str, float] | None = None,
               *, managed: bool = True) -> Figure:
    """A run's figure against `x`: a panel per metric (loss, opt_gap, accuracy, the held-out
    set's; a timing-only run: updates, messages and drops). With `target`, each algorithm at
    the step size its comparison picks; without, every step size. `managed=False` gives a bare
    Figure (for a file)."""
    if target:
        df = best_step_runs(df, target)
    metrics, _ = _run_metrics(df)
    fig = new_figure((5 * len(metrics), 4), managed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log axes of diverged runs overflow
        for ax, m in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics, strict=True):
            plot_metric(df, m, x=x, ax=ax)
    fig.tight_layout()
    return fig


def plot_run(df: pd.DataFrame, out: Path,
             target: dict[str, float] | None = None) -> list[Path]:
    """Write `run_figure` against simulated time and against updates (a timing-only run:
    time only) as ``metrics_vs_{x}.png`` under `out`; return the paths."""
    files = []
    for x in _run_metrics(df)[1]:
        path = Path(out) / f"metrics_vs_{x}.png"
        run_figure(df, x, target, managed=False).savefig(path, dpi=110)
        files.append(path)
    return files
