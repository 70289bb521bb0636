"""The timing model of one run: compute clocks, links and node faults, each from its own named
streams.

Laws come from :mod:`rfast_sim.timing.laws` (frozen ``scipy.stats`` distributions by their mean).
Every random quantity comes from its own named stream (:mod:`rfast_sim.scenario.seeding`), so
node i's k-th compute time and link (a, b)'s k-th packet fate are the same in every
algorithm's run: common random numbers make comparisons fair. A model's streams are consumed
as a trace is built, so every trace needs a fresh model
(:meth:`rfast_sim.timing.traces.TimingSetup.timing_model`). Its settings are a
:class:`~rfast_sim.timing.plan.TimingPlan` (the plan builder makes one from a scenario).

- :mod:`.clocks`: compute durations (base law, persistent factors, stragglers) and choices;
- :mod:`.links`: per-link latency, loss (the registered loss models), rates and down periods;
- :mod:`.faults`: node down periods (outages, churn) as pure period generators;
- :mod:`.devices`: a step's roofline time on each device class, and each node's class.
"""

from __future__ import annotations

from rfast_sim.scenario import ScenarioError
from rfast_sim.timing.clocks import ComputeClocks
from rfast_sim.timing.devices import StepCost, assign, node_means
from rfast_sim.timing.faults import NodeFaults, Periods
from rfast_sim.timing.links import Links, transfer_rate
from rfast_sim.timing.plan import TimingPlan


class TimingModel:
    """Seeded samplers for one run, by responsibility. Knows nothing of the algorithm's values.

    ``spec``: the scenario's timing settings; ``clocks``, ``links``, ``faults``: the parts.
    ``step_cost``: the problem's local step (``mean: model`` times it on each node's device).
    """

    def __init__(self, plan: TimingPlan, seed: int, message_bytes: float,
                 step_cost: StepCost | None = None) -> None:
        self.spec = plan.timing
        self.n = plan.nodes
        self.message_bytes = message_bytes
        means = None
        if plan.timing.compute.from_model:
            if step_cost is None:
                raise ScenarioError("timing.compute.mean: model needs the step's cost (the "
                                    "runner measures it from the problem)")
            means = node_means(plan, seed, step_cost)
        self.clocks = ComputeClocks(plan.timing, plan.nodes, seed, means)
        nics = {d.name: d.nic for d in plan.devices}
        self.links = Links(plan.timing, seed, [nics[name] for name in assign(plan, seed)]
                           if any(nics.values()) else None)
        self.faults = NodeFaults(plan, seed)


__all__ = ["ComputeClocks", "Links", "NodeFaults", "Periods", "StepCost", "TimingModel",
           "TimingPlan", "transfer_rate"]
