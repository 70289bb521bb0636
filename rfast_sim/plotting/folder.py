"""The figures of an output folder: a run's metric curves or a sweep's summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rfast_sim.plotting.curves import plot_run
from rfast_sim.plotting.sweep import plot_sweep_summary
from rfast_sim.scenario import ScenarioError


def plot_folder(folder: Path, x: str | None = None, y: str = "speedup",
                hue: str = "algorithm", *, col: str | None = None, row: str | None = None,
                where: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the figures of a run folder (metrics.parquet) or of a sweep folder (with `x`;
    `hue`, `col`, `row` and `where` as in `sweep_figure`); return their paths."""
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
        return [plot_sweep_summary(summary, x, y, hue, folder, col=col, row=row, where=where)]
    path = folder / "metrics.parquet"
    if not path.exists():
        raise ScenarioError(f"{folder}: no metrics.parquet here (is it a run's --out folder?)")
    target = None
    if (folder / "scenario.yaml").exists():
        from rfast_sim.experiment.metrics import default_target
        from rfast_sim.scenario.loading import load_scenario

        sc = load_scenario(folder / "scenario.yaml")
        target = default_target(sc.problem, sc.compare) if sc.problem is not None else None
    return plot_run(pd.read_parquet(path), folder, target)
