"""Matplotlib figures from the tidy metrics frame and a sweep's summary.

Nothing here chooses a matplotlib backend: in Jupyter the figures appear inline, and the
command line picks a headless one for its own process. Every figure has a drawing function
(it draws into an ``ax`` or returns a ``Figure``, so a notebook can show it) and the files the
command line writes are drawn by those same functions (``plot_run``, ``plot_sweep_summary``,
``plot_folder``).
"""

from __future__ import annotations

from rfast_sim.plotting.curves import (
    LOG_METRICS,
    best_step_runs,
    median_band,
    plot_metric,
    plot_run,
    run_figure,
)
from rfast_sim.plotting.folder import plot_folder
from rfast_sim.plotting.sweep import parse_where, plot_async_pays, plot_sweep_summary, sweep_figure
from rfast_sim.plotting.timeline import plot_timeline

__all__ = ["LOG_METRICS", "best_step_runs", "median_band", "parse_where", "plot_async_pays",
           "plot_folder", "plot_metric", "plot_run", "plot_sweep_summary", "plot_timeline",
           "run_figure", "sweep_figure"]
