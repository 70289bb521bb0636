"""Results: finished runs, the tidy metrics frame, and saving them (parquet, YAML, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfast_sim import metrics as metrics_mod
from rfast_sim.engine import EventTrace
from rfast_sim.loading import dump_scenario
from rfast_sim.scenario import Scenario


@dataclass
class Run:
    """One finished run: its trace, sampled metrics and final state."""

    name: str
    seed: int
    step_size: float
    trace: EventTrace
    metrics: np.ndarray  # [K, len(METRIC_COLUMNS)]
    final_state: Any
    wall_seconds: float
    message_bytes: float
    extra: dict[str, Any] = field(default_factory=dict)
    # where the time went: trace_s (building the trace; online: engine and updates together),
    # replay_s, metrics_s (the tidy frame), set by the runners
    timings: dict[str, float] = field(default_factory=dict)


def run_frame_of(r: Run) -> pd.DataFrame:
    """The tidy frame of one run (diverged samples marked, their values NaN)."""
    tr = r.trace
    return metrics_mod.run_frame(
        algorithm=r.name, seed=r.seed, step_size=r.step_size, sample_time=tr.sample_time,
        updates=tr.sample_updates, messages=tr.sample_messages, dropped=tr.sample_dropped,
        nbytes=tr.sample_bytes, values=r.metrics,
        extra={"superseded": tr.sample_superseded})


@dataclass
class Result:
    """All runs of a scenario and their tidy metrics frame."""

    scenario: Scenario
    runs: list[Run]
    metrics: pd.DataFrame

    @property
    def target(self) -> dict[str, float]:
        return metrics_mod.default_target(self.scenario)

    @property
    def baseline(self) -> str:
        names = [a.name for a in self.scenario.algorithm_list]
        return self.scenario.compare.baseline if self.scenario.compare else names[0]

    def comparison(self) -> pd.DataFrame:
        """Per-algorithm table: time to target, counters, final metrics, speed-up."""
        return metrics_mod.comparison_table(self.metrics, self.baseline, self.target,
                                            self.scenario.seed)

    def summary(self) -> dict[str, Any]:
        per_run = metrics_mod.run_summaries(self.metrics, self.target)
        runs = []
        for r, row in zip(self.runs, per_run.to_dict("records"), strict=True):
            net = {k: v for k, v in r.trace.network.items()
                   if k not in ("engine", "engine_reason")}
            row.update(events=len(r.trace), max_in_flight=r.trace.num_slots,
                       wall_seconds=r.wall_seconds,
                       straggler_nodes=r.extra.get("straggler_nodes", []),
                       engine=r.trace.network.get("engine"),
                       engine_reason=r.trace.network.get("engine_reason"),
                       replay=r.extra.get("replay"),
                       timings={"trace_s": r.timings.get("trace_s"),
                                "replay_s": r.timings.get("replay_s"),
                                "metrics_s": r.timings.get("metrics_s"),
                                "events": len(r.trace),
                                "peak_rss_bytes": r.extra.get("peak_rss_bytes")},
                       network=net)
            runs.append(row)
        return {"scenario": self.scenario.name, "runs": runs}

    def save(self, out: str | Path) -> Path:
        """Write metrics.parquet, scenario.yaml, summary.json and comparison.csv under `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        dump_scenario(self.scenario, out / "scenario.yaml")
        (out / "summary.json").write_text(json.dumps(_strict(self.summary()), indent=2,
                                                     default=_json))
        self.comparison().to_csv(out / "comparison.csv", index=False)
        return out


def _strict(v: Any) -> Any:
    """Plain JSON: NaN (a missed target) becomes null, infinities strings."""
    if isinstance(v, dict):
        return {k: _strict(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_strict(x) for x in v]
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else (str(float(v)) if np.isinf(v) else float(v))
    return v


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
