"""A sweep's summary: per swept point and algorithm, statistics over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rfast_sim import metrics as metrics_mod
from rfast_sim.scenario import ScenarioError
from rfast_sim.sweeps.spec import expand, load_spec
from rfast_sim.sweeps.store import load_results


def _ci95(values: pd.Series) -> float:
    from scipy import stats

    v = values.dropna().to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def summarize(out: str | Path) -> pd.DataFrame:
    """Per swept point and algorithm: time to target, final metrics and speed-up over the
    scenario's `compare.baseline` (per seed), as mean and 95% CI over seeds."""
    out = Path(out)
    if not (out / "manifest.json").exists():
        raise ScenarioError(f"{out}: no manifest.json here (give the --out folder of a sweep)")
    df = load_results(out)
    if df.empty:
        raise ScenarioError(f"{out}: no finished points yet")
    spec = load_spec(json.loads((out / "manifest.json").read_text())["spec"])
    keys = [*spec.grid, *spec.zip]
    sc = next((p.scenario for p in expand(spec) if p.scenario is not None), None)
    target = metrics_mod.default_target(sc) if sc is not None else {"opt_gap": 1e-3}
    metric = next(iter(target))
    baseline = sc.compare.baseline if sc is not None and sc.compare else None
    rows = []
    for run_id, g in df.groupby("run_id", sort=False):
        per_alg = metrics_mod.comparison_table(g, baseline or str(g["algorithm"].iloc[0]),
                                               target)
        for r in per_alg.to_dict("records"):
            rows.append({**{k: g[k].iloc[0] for k in keys}, "seed": g["seed"].iloc[0],
                         "run_id": run_id, **r})
    runs = pd.DataFrame(rows).rename(columns={f"time_to_{metric}": "time_to_target"})
    values = ["time_to_target", "speedup", "updates", "messages", "final_loss",
              "final_opt_gap", "final_accuracy"]
    values = [v for v in values if v in runs and (v in ("time_to_target", "speedup")
                                                   or runs[v].notna().any())]
    order = list(dict.fromkeys(runs["algorithm"]))
    runs = runs.sort_values(keys, kind="stable") if keys else runs
    grouped = runs.groupby([*keys, "algorithm"], sort=False, dropna=False)[values]
    summary = grouped.mean().add_suffix("_mean")
    ci = grouped.agg(_ci95).add_suffix("_ci95")
    counts = grouped.size().rename("seeds")
    table = pd.concat([summary, ci, counts], axis=1).reset_index()
    table = table.sort_values([*keys, "algorithm"], key=lambda c: c.map(order.index)
                              if c.name == "algorithm" else c, kind="stable", ignore_index=True)
    table.attrs["keys"] = keys
    table.attrs["target"] = target
    table.attrs["baseline"] = baseline
    return table
