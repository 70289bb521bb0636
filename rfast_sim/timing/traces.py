"""One run's timing setup (its channels, packet size and timing plan), the engine's choice and
the event trace. No JAX and no problem: a timing-only run (``problem: null``) stops here, and
the maths (:mod:`rfast_sim.maths.setup`) builds on it. The plan builder
(:mod:`rfast_sim.experiment.plan`) makes the setups from a scenario."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.registry import AlgorithmInfo
from rfast_sim.timing import TimingModel, engine
from rfast_sim.timing.clocks import node_factors
from rfast_sim.timing.devices import StepCost, assign
from rfast_sim.timing.engine import vector
from rfast_sim.timing.plan import TimingPlan
from rfast_sim.timing.topology import Channels, Phases


class ScenarioGraphs(dict[str, nx.DiGraph]):
    """The scenario's graphs by role ("pull", "push", "gossip"; time-varying pull / push: the
    unions of their phases) and `phases` (None for static graphs), built once per scenario."""

    def __init__(self, graphs: dict[str, nx.DiGraph], phases: Phases | None) -> None:
        super().__init__(graphs)
        self.phases = phases


@dataclass
class TimingSetup:
    """What one (algorithm, seed) run's events need: its channels, packet size and (for
    ``mean: model``) the cost of its local step. A trace consumes its timing model's streams,
    so the setup holds what a fresh one needs (`timing_model`)."""

    plan: TimingPlan
    name: str
    seed: int
    info: AlgorithmInfo
    channels: Channels
    message_bytes: float
    step_cost: StepCost | None

    def timing_model(self) -> TimingModel:
        """A fresh timing model of this run (every one gives the same draws)."""
        return TimingModel(self.plan, self.seed, self.message_bytes, self.step_cost)

    @property
    def straggler_nodes(self) -> list[int]:
        return node_factors(self.plan.timing, self.plan.nodes, self.seed)[1]

    @property
    def device_nodes(self) -> dict[str, list[int]]:
        """Each device class's nodes in this run (none without ``devices``)."""
        out: dict[str, list[int]] = {d.name: [] for d in self.plan.devices}
        if out:
            for i, name in enumerate(assign(self.plan, self.seed)):
                out[name].append(i)
        return out


def choose_engine(setup: TimingSetup, online: bool) -> tuple[str, str]:
    """(engine, why): ``run.engine``, or for auto the vector builder where it covers the run
    and simultaneous events have probability zero; SimPy otherwise (and online, always)."""
    run, alg, spec = setup.plan.run, setup.info, setup.plan.timing
    if online:
        return "simpy", "online mode fires each event as SimPy does"
    gap = vector.covers(spec, setup.channels, alg.pattern, alg.supersedes)
    if run.engine == "vector":
        if gap is not None:
            raise ScenarioError(f"run.engine: the vector builder does not cover {gap}; use "
                                "engine: simpy or auto")
        return "vector", "run.engine: vector"
    if run.engine == "simpy":
        return "simpy", "run.engine: simpy"
    if gap is not None:
        return "simpy", f"auto: the vector builder does not cover {gap}"
    if not vector.ties_unlikely(spec):
        return "simpy", "auto: point-mass or data-driven times can tie events"
    return "vector", "auto: covered, continuous compute times"


def record_trace(setup: TimingSetup,
                 on_event: Callable[[engine.Event], None] | None = None,
                 packets: bool = False) -> engine.EventTrace:
    """Run the event engine for one setup, on a fresh timing model; `packets`: with the
    packet log (`EventTrace.packets`: a row a packet, off by default for memory's sake)."""
    run = setup.plan.run
    timing = setup.timing_model()
    name, why = choose_engine(setup, on_event is not None)
    if name == "vector":
        trace = vector.build(timing, setup.channels, until=run.until,
                             sample_every=run.sample_every, pattern=setup.info.pattern,
                             max_updates=run.max_updates, packets=packets)
    else:
        trace = engine.simulate(timing, setup.channels, setup.info.pattern,
                                until=run.until, max_updates=run.max_updates,
                                sample_every=run.sample_every, on_event=on_event,
                                supersedes=setup.info.supersedes, packets=packets)
    trace.network.update(engine=name, engine_reason=why)
    return trace
