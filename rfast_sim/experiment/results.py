"""Results: finished runs, the tidy metrics frame, and saving them (parquet, YAML, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfast_sim.experiment import metrics as metrics_mod
from rfast_sim.maths.record import Run
from rfast_sim.scenario import Scenario, ScenarioError
from rfast_sim.scenario.loading import dump_scenario
from rfast_sim.timing.engine import EventTrace


def run_frame_of(r: Run) -> pd.DataFrame:
    """The tidy frame of one run (diverged samples marked, their values NaN)."""
    tr = r.trace
    return metrics_mod.run_frame(
        algorithm=r.name, seed=r.seed, step_size=r.step_size, sample_time=tr.sample_time,
        updates=tr.sample_updates, messages=tr.sample_messages, dropped=tr.sample_dropped,
        nbytes=tr.sample_bytes, values=r.metrics,
        extra={"superseded": tr.sample_superseded})


def updates_per_node(tr: EventTrace, n: int) -> np.ndarray:
    """How many updates each node made: its computations (asynchronous methods), its rounds
    (D-PSGD, sync GT), or every all-reduce round (all nodes update together)."""
    if len(tr.round_node):
        own = np.bincount(tr.round_node[tr.round_node >= 0], minlength=n)
        return own + int((tr.round_node < 0).sum())
    return np.bincount(tr.node[tr.is_kind("compute")], minlength=n)


def network_figures(r: Run, n: int) -> dict[str, Any]:
    """One run's network figures: counts, update rates per node, queueing and delays."""
    tr = r.trace
    duration = float(tr.sample_time[-1]) if len(tr.sample_time) else 0.0
    rate = updates_per_node(tr, n) / max(duration, 1e-300)
    last = {k: float(getattr(tr, f"sample_{k}")[-1]) if len(tr.sample_time) else 0.0
            for k in ("updates", "messages", "bytes", "dropped", "superseded")}
    net = {k: v for k, v in tr.network.items() if isinstance(v, int | float)}
    rounds = {}
    if len(tr.round_start):  # synchronous methods: a round's length and its waiting part
        rounds = {"mean_round": float(np.mean(tr.round_end - tr.round_start)),
                  "mean_round_comm": float(np.mean(tr.round_end - tr.round_compute))}
    return {"algorithm": r.name, "seed": r.seed, "time": duration, **last,
            "drop_rate": last["dropped"] / max(last["messages"], 1.0),
            "node_rate_min": float(rate.min()), "node_rate_median": float(np.median(rate)),
            "node_rate_max": float(rate.max()), **rounds, **net}


@dataclass
class Result:
    """All runs of a scenario and their tidy metrics frame (what :func:`rfast_sim.run`
    returns; ``save`` writes it as the files of :doc:`/reference/outputs`).

    :ivar scenario: the scenario, fully resolved.
    :ivar runs: one `Run` per algorithm x seed x step size.
    :ivar metrics: the tidy frame, one row per run and sample time (the columns of
        ``metrics.parquet``).
    :ivar tuning: the step searches of the algorithms with ``step_size: auto``, by name.
    :ivar devices: each device class's predicted step (``mean: model``): nodes, flops, bytes,
        step_time_s, bound.

    Example (a timing-only run: counters and network figures, no maths)::

        >>> import rfast_sim
        >>> res = rfast_sim.run(rfast_sim.load_scenario("quickstart", [
        ...     "problem=null", "timing.message_bytes=160", "seeds=2", "run.until=30"]))
        >>> len(res.runs), res.timing_only, res.baseline
        (6, True, 'allreduce_sgd')
        >>> res.network()[["algorithm", "seeds"]].to_dict("records")[0]
        {'algorithm': 'rfast', 'seeds': 2}
        >>> import tempfile
        >>> folder = res.save(tempfile.mkdtemp())
        >>> sorted(p.name for p in folder.iterdir())
        ['metrics.parquet', 'network.csv', 'scenario.yaml', 'summary.json']
    """

    scenario: Scenario
    runs: list[Run]
    metrics: pd.DataFrame
    tuning: dict[str, Any] = field(default_factory=dict)  # name -> tuning.Tuning
    # per device class (mean: model): nodes, flops, bytes, step_time_s, bound
    devices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def timing_only(self) -> bool:
        """A run without a problem (`problem: null`): counters and network figures only."""
        return self.scenario.problem is None

    def network(self) -> pd.DataFrame:
        """Per algorithm, medians over seeds of each run's network figures: counts, the drop
        rate, update rates per node (slowest, median, fastest; updates per simulated second),
        queueing and delays."""
        rows = pd.DataFrame([network_figures(r, self.scenario.nodes) for r in self.runs])
        order = list(dict.fromkeys(rows["algorithm"]))
        table = rows.drop(columns="seed").groupby("algorithm", sort=False).median()
        table.insert(0, "seeds", rows.groupby("algorithm", sort=False)["seed"].count())
        return table.loc[order].reset_index()

    def packet_trace(self, algorithm: str | None = None, seed: int | None = None, *,
                     until: float | None = None) -> EventTrace:
        """One run's trace re-derived with the packet log (timing only, no maths): the same
        events as its own trace, with every packet's life (`EventTrace.packets`), to `until`
        (default: the run's end). Default: the first algorithm and seed."""
        from rfast_sim.experiment.plan import packet_trace
        from rfast_sim.timing import timeline

        name, seed = timeline.pick_run(self._algorithms, self.scenario.seed_list, algorithm, seed)
        run = next(r for r in self.runs if r.name == name and r.seed == seed)
        return packet_trace(self.scenario, name, seed, until=until,
                            message_bytes=run.message_bytes,
                            step_cost=run.extra.get("step_cost"))

    def timeline(self, path: str | Path, algorithm: str | None = None, seed: int | None = None,
                 *, start: float = 0.0, until: float | None = None,
                 nodes: list[int] | None = None) -> Path:
        """Write one run's timeline to `path` as Chrome trace-event JSON, for Perfetto
        (https://ui.perfetto.dev) or ``chrome://tracing``: computations, every packet as a flow,
        egress queueing, rounds and faults, in [start, until] simulated seconds and of `nodes`
        (default: all); times in microseconds of simulated time (``rfast-sim timeline``)."""
        from rfast_sim.timing import timeline

        name, seed = timeline.pick_run(self._algorithms, self.scenario.seed_list, algorithm, seed)
        run_end = self.scenario.run.until
        start, end = timeline.check_window(run_end, start, until)
        trace = self.packet_trace(name, seed, until=timeline.derive_until(run_end, start, end))
        timeline.write_timeline(trace, self.scenario.nodes, path, start=start, until=end,
                                nodes=nodes, title=f"{self.scenario.name} · {name} · seed {seed}",
                                meta={"scenario": self.scenario.name, "algorithm": name,
                                      "seed": seed})
        return Path(path)

    @property
    def _algorithms(self) -> list[str]:
        return list(dict.fromkeys(a.name for a in self.scenario.algorithm_list))

    @property
    def target(self) -> dict[str, float]:
        return metrics_mod.default_target(self.scenario.problem, self.scenario.compare)

    @property
    def baseline(self) -> str:
        names = [a.name for a in self.scenario.algorithm_list]
        return self.scenario.compare.baseline if self.scenario.compare else names[0]

    def comparison(self) -> pd.DataFrame:
        """Per-algorithm table: time to target, counters, final metrics, speed-up; `tuned`
        marks a step chosen by `step_size: auto`."""
        if self.timing_only:
            raise ScenarioError("problem: a timing-only run (problem: null) has no metric to "
                                "compare; its figures are Result.network()")
        table = metrics_mod.comparison_table(self.metrics, self.baseline, self.target,
                                             self.scenario.seed)
        table.insert(table.columns.get_loc("step_size") + 1, "tuned",
                     table["algorithm"].isin(self.tuning))
        return table

    def summary(self) -> dict[str, Any]:
        per_run = metrics_mod.run_summaries(self.metrics, self.target)
        runs = []
        for r, row in zip(self.runs, per_run.to_dict("records"), strict=True):
            net = {k: v for k, v in r.trace.network.items()
                   if k not in ("engine", "engine_reason")}
            row.update(events=len(r.trace), max_in_flight=r.trace.num_slots,
                       wall_seconds=r.wall_seconds,
                       straggler_nodes=r.extra.get("straggler_nodes", []),
                       **({"device_nodes": r.extra["device_nodes"]}
                          if r.extra.get("device_nodes") else {}),
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
        out: dict[str, Any] = {"scenario": self.scenario.name, "runs": runs}
        if self.devices:
            out["devices"] = self.devices
        if self.tuning:
            out["tuning"] = {name: t.summary() for name, t in self.tuning.items()}
        if self.timing_only:
            out["network"] = self.network().to_dict("records")
        return out

    def save(self, out: str | Path) -> Path:
        """Write metrics.parquet, scenario.yaml, summary.json and comparison.csv (a timing-only
        run: network.csv) under `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        dump_scenario(self.scenario, out / "scenario.yaml")
        (out / "summary.json").write_text(json.dumps(_strict(self.summary()), indent=2,
                                                     default=_json))
        if self.timing_only:
            self.network().to_csv(out / "network.csv", index=False)
        else:
            table = self.comparison()
            # the 0.2 name of the time to target, kept one more release for scripts reading it
            legacy = metrics_mod.LEGACY_TTT.format(metric=next(iter(self.target)))
            for suffix in ("", "_ci_low", "_ci_high"):
                table[legacy + suffix] = table[metrics_mod.TTT + suffix]
            table.to_csv(out / "comparison.csv", index=False)
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
