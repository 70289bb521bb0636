"""A sweep's summary: per swept point and algorithm, statistics over seeds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rfast_sim.experiment import metrics as metrics_mod
from rfast_sim.scenario import ScenarioError
from rfast_sim.sweeps.spec import expand, load_spec
from rfast_sim.sweeps.store import load_results


def summarize(out: str | Path) -> pd.DataFrame:
    """Per swept point and algorithm, over its seeds: reached (k/n seeds that reach the
    target, and `reached_fraction`), the median time to target counting misses as +inf with a
    bootstrap 95% CI, the best step, final metrics, and the speed-up over the scenario's
    `compare.baseline` (ratio of medians, paired bootstrap CI), exactly as a single run's
    comparison table. A timing-only sweep (`problem: null`): the medians of the final counters
    (`attrs["timing_only"]`)."""
    out = Path(out)
    if not (out / "manifest.json").exists():
        raise ScenarioError(f"{out}: no manifest.json here (give the --out folder of a sweep)")
    df = load_results(out)
    if df.empty:
        raise ScenarioError(f"{out}: no finished points yet")
    spec = load_spec(json.loads((out / "manifest.json").read_text())["spec"])
    keys = [*spec.grid, *spec.zip]
    sc = next((p.scenario for p in expand(spec) if p.scenario is not None), None)
    if sc is not None and sc.problem is None:
        table = _per_point(df, keys, metrics_mod.counters_table)
        table.attrs.update(keys=keys, target={}, baseline=None, timing_only=True)
        return table
    target = (metrics_mod.default_target(sc.problem, sc.compare) if sc is not None
              else {"opt_gap": 1e-3})
    baseline = sc.compare.baseline if sc is not None and sc.compare else None
    seed = sc.seed if sc is not None else 0
    table = _per_point(df, keys, lambda g: metrics_mod.comparison_table(
        g, baseline or str(g["algorithm"].iloc[0]), target, seed))
    table.attrs.update(keys=keys, target=target, baseline=baseline)
    return table


def _per_point(df: pd.DataFrame, keys: list[str],
               per_algorithm: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """`per_algorithm` of each swept point, its keys in front, in the sweep's algorithm
    order."""
    tables = []
    for values, g in (df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]):
        per_alg = per_algorithm(g)
        for key, value in zip(keys, values if isinstance(values, tuple) else (values,),
                              strict=True):
            per_alg.insert(0, key, value)
        tables.append(per_alg)
    order = list(dict.fromkeys(df["algorithm"]))
    return pd.concat(tables, ignore_index=True).sort_values(
        [*keys, "algorithm"], key=lambda c: c.map(order.index) if c.name == "algorithm" else c,
        kind="stable", ignore_index=True)
