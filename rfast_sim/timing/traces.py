"""The timing side of a run: the scenario's graphs and channels, the engine's choice and the
event trace. No JAX and no problem: a timing-only run (``problem: null``) stops here, and the
maths (:mod:`rfast_sim.maths.setup`) builds on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from rfast_sim.scenario import GRAPH_KINDS, Scenario, ScenarioError
from rfast_sim.scenario.registry import AlgorithmInfo, info
from rfast_sim.timing import TimingModel, engine
from rfast_sim.timing.clocks import node_factors
from rfast_sim.timing.devices import StepCost, assign
from rfast_sim.timing.engine import vector
from rfast_sim.timing.topology import (
    Channels,
    Phases,
    build_graph,
    common_roots,
    graph_phases,
    is_symmetric,
    make_channels,
)


def _gossip_graph(sc: Scenario, users: list[str]) -> nx.DiGraph:
    spec = sc.graphs.undirected or sc.graphs.pull
    where = "graphs.undirected" if sc.graphs.undirected else "graphs.pull"
    g = build_graph(spec, sc.nodes, role="pull", seed=sc.seed)
    if not is_symmetric(g):
        raise ScenarioError(
            f"{where}: {', '.join(users)} need(s) an undirected graph, but kind "
            f"{spec.kind!r} is directed; set graphs.undirected (e.g. {{kind: ring}})")
    if not nx.is_strongly_connected(g):
        raise ScenarioError(f"{where}: the graph for {', '.join(users)} is not connected")
    return g


class ScenarioGraphs(dict[str, nx.DiGraph]):
    """The scenario's graphs by role ("pull", "push", "gossip"; time-varying pull / push: the
    unions of their phases) and `phases` (None for static graphs), built once per scenario."""

    def __init__(self, graphs: dict[str, nx.DiGraph], phases: Phases | None) -> None:
        super().__init__(graphs)
        self.phases = phases


def scenario_graphs(sc: Scenario, names: list[str]) -> ScenarioGraphs:
    """Build the graphs the named algorithms need and check each algorithm's graph condition
    (read from their registered info: nothing is built). Time-varying pull / push graphs give
    their unions here; the condition is checked on each schedule entry's graphs over one
    period."""
    infos = {name: info(name) for name in names}
    needed = {g for a in infos.values() for g in a.graphs}
    graphs: dict[str, nx.DiGraph] = {}
    phases = graph_phases(sc.graphs, sc.nodes, sc.seed)
    if needed & {"pull", "push"}:
        if phases is not None:
            graphs["pull"], graphs["push"] = phases.union("pull"), phases.union("push")
        else:
            graphs["pull"] = build_graph(sc.graphs.pull, sc.nodes, role="pull", seed=sc.seed)
            graphs["push"] = build_graph(sc.graphs.push, sc.nodes, role="push", seed=sc.seed)
    if "gossip" in needed:
        graphs["gossip"] = _gossip_graph(sc, [a for a in names if "gossip" in infos[a].graphs])
    entries = phases.entry_unions() if phases is not None else [
        (graphs.get("pull"), graphs.get("push"))]
    for name, alg in infos.items():
        if phases is not None and alg.pattern == "sync_neighbors" and "push" in alg.graphs:
            kinds = ", ".join(k.name for k in GRAPH_KINDS if k.time_varying)
            raise ScenarioError(f"graphs.schedule: {name} runs lock-step rounds on static graphs; "
                                f"time-varying graphs (schedule, {kinds}) are for the "
                                "asynchronous methods")
        for k, (pull, push) in enumerate(entries):
            where = f"graphs.schedule.{k}: " if phases is not None and sc.graphs.schedule else ""
            try:
                _check_condition(sc, name, alg, pull, push)
            except ScenarioError as err:
                raise ScenarioError(where + str(err)) from None
    return ScenarioGraphs(graphs, phases)


def _check_condition(sc: Scenario, name: str, alg: AlgorithmInfo, pull: nx.DiGraph | None,
                     push: nx.DiGraph | None) -> None:
    if set(alg.graphs) == {"pull", "push"}:
        assert pull is not None
        assert push is not None
        common_roots(pull, push)
    elif alg.graphs == ("push",) and push is not None and not nx.is_strongly_connected(push):
        raise ScenarioError(
            f"graphs.push: {name} (push-sum) needs a strongly connected graph; kind "
            f"{sc.graphs.push.kind!r} is not (R-FAST only needs a common root)")


@dataclass
class TimingSetup:
    """What one (algorithm, seed) run's events need: its channels, packet size and (for
    ``mean: model``) the cost of its local step. A trace consumes its timing model's streams,
    so the setup holds what a fresh one needs (`timing_model`)."""

    scenario: Scenario
    name: str
    seed: int
    info: AlgorithmInfo
    channels: Channels
    message_bytes: float
    step_cost: StepCost | None

    def timing_model(self) -> TimingModel:
        """A fresh timing model of this run (every one gives the same draws)."""
        return TimingModel(self.scenario, self.seed, self.message_bytes, self.step_cost)

    @property
    def straggler_nodes(self) -> list[int]:
        return node_factors(self.scenario.timing, self.scenario.nodes, self.seed)[1]

    @property
    def device_nodes(self) -> dict[str, list[int]]:
        """Each device class's nodes in this run (none without ``devices``)."""
        out: dict[str, list[int]] = {d.name: [] for d in self.scenario.devices}
        if out:
            for i, name in enumerate(assign(self.scenario, self.seed)):
                out[name].append(i)
        return out


def timing_setup(sc: Scenario, name: str, seed: int, graphs: ScenarioGraphs | None = None,
                 dim: int | None = None, step_cost: StepCost | None = None) -> TimingSetup:
    """The channels of one algorithm and seed; `dim` (the model's) sizes `message_bytes:
    auto` packets, `step_cost` (the model's local step) times ``mean: model``."""
    graphs = graphs if graphs is not None else scenario_graphs(sc, [name])
    alg = info(name)
    ch = make_channels(
        sc.nodes,
        pull=graphs.get("pull") if "pull" in alg.graphs else None,
        push=graphs.get("push") if "push" in alg.graphs else None,
        gossip=graphs.get("gossip") if "gossip" in alg.graphs else None,
        phases=graphs.phases if set(alg.graphs) & {"pull", "push"} else None,
    )
    if dim is None and sc.timing.message_bytes == "auto":
        raise ScenarioError("timing.message_bytes: auto needs the model's size; give bytes")
    return TimingSetup(sc, name, seed, alg, ch, sc.message_bytes(dim or 0), step_cost)


def choose_engine(setup: TimingSetup, online: bool) -> tuple[str, str]:
    """(engine, why): ``run.engine``, or for auto the vector builder where it covers the run
    and simultaneous events have probability zero; SimPy otherwise (and online, always)."""
    run, alg, spec = setup.scenario.run, setup.info, setup.scenario.timing
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
    run = setup.scenario.run
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
