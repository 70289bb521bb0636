"""A sweep's summary: per swept point and algorithm, statistics over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rfast_sim import metrics as metrics_mod
from rfast_sim.scenario import ScenarioError
from rfast_sim.sweeps.spec import expand, load_spec
from rfast_sim.sweeps.store import load_results


def summarize(out: str | Path) -> pd.DataFrame:
    """Per swept point and algorithm, over its seeds: reached (fraction of seeds that reach the
    target), the median time to target counting misses as +inf with a bootstrap 95% CI, the
    best step, final metrics, and the speed-up over the scenario's `compare.baseline` (ratio of
    medians, paired bootstrap CI), exactly as a single run's comparison table."""
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
    seed = sc.seed if sc is not None else 0
    tables = []
    for values, g in (df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]):
        per_alg = metrics_mod.comparison_table(g, baseline or str(g["algorithm"].iloc[0]),
                                               target, seed)
        for key, value in zip(keys, values if isinstance(values, tuple) else (values,),
                              strict=True):
            per_alg.insert(0, key, value)
        tables.append(per_alg)
    table = pd.concat(tables, ignore_index=True).rename(
        columns=lambda c: c.replace(f"time_to_{metric}", "time_to_target"))
    order = list(dict.fromkeys(df["algorithm"]))
    table = table.sort_values([*keys, "algorithm"], key=lambda c: c.map(order.index)
                              if c.name == "algorithm" else c, kind="stable", ignore_index=True)
    table.attrs["keys"] = keys
    table.attrs["target"] = target
    table.attrs["baseline"] = baseline
    return table
