"""Set-up of one run: the scenario's graphs, channels, problem data and timing model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from rfast_sim import engine
from rfast_sim.algorithms import Algorithm, AlgorithmInfo, Env, Net, info, make
from rfast_sim.engine import vector
from rfast_sim.problems import ProblemData, ProblemOps, make_problem
from rfast_sim.scenario import GRAPH_KINDS, Scenario, ScenarioError
from rfast_sim.timing import TimingModel
from rfast_sim.timing.clocks import node_factors
from rfast_sim.topology import (
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


def _net(ch: Channels, dtype: str) -> Net:
    """The channel arrays as the algorithms' pytree (floating arrays in the scenario dtype)."""
    def array(name: str) -> jax.Array:
        a = np.asarray(getattr(ch, name))
        return jnp.asarray(a, dtype=dtype if a.dtype.kind == "f" else None)

    net = Net(*(array(name) for name in Net._fields if name != "phase"))
    return net._replace(phase=jnp.int32(0))


@dataclass
class Setup:
    """Everything one (algorithm, seed) run needs before any event fires. A trace consumes
    its timing model's streams, so the setup holds what a fresh one needs (`timing_model`)."""

    scenario: Scenario
    name: str
    seed: int
    ops: ProblemOps
    data: ProblemData
    channels: Channels
    message_bytes: float
    algorithm: Algorithm

    def env(self, step_size: float) -> Env:
        return Env(_net(self.channels, self.scenario.dtype), self.data,
                   jnp.asarray(step_size, dtype=self.scenario.dtype))

    def timing_model(self) -> TimingModel:
        """A fresh timing model of this run (every one gives the same draws)."""
        return TimingModel(self.scenario, self.seed, self.message_bytes)

    @property
    def straggler_nodes(self) -> list[int]:
        return node_factors(self.scenario.timing, self.scenario.nodes, self.seed)[1]


def prepare(sc: Scenario, name: str, seed: int,
            graphs: ScenarioGraphs | None = None) -> Setup:
    """Build problem data and channels for one algorithm and seed."""
    graphs = graphs if graphs is not None else scenario_graphs(sc, [name])
    ops, data = make_problem(sc.problem, sc.nodes, seed, sc.dtype)
    alg = make(name, ops)
    ch = make_channels(
        sc.nodes,
        pull=graphs.get("pull") if "pull" in alg.graphs else None,
        push=graphs.get("push") if "push" in alg.graphs else None,
        gossip=graphs.get("gossip") if "gossip" in alg.graphs else None,
        phases=graphs.phases if set(alg.graphs) & {"pull", "push"} else None,
    )
    return Setup(sc, name, seed, ops, data, ch, sc.message_bytes(ops.dim), alg)


def choose_engine(setup: Setup, online: bool) -> tuple[str, str]:
    """(engine, why): ``run.engine``, or for auto the vector builder where it covers the run
    and simultaneous events have probability zero; SimPy otherwise (and online, always)."""
    run, alg, spec = setup.scenario.run, setup.algorithm, setup.scenario.timing
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


def record_trace(setup: Setup,
                 on_event: Callable[[engine.Event], None] | None = None) -> engine.EventTrace:
    """Run the event engine for one setup, on a fresh timing model."""
    run = setup.scenario.run
    timing = setup.timing_model()
    name, why = choose_engine(setup, on_event is not None)
    if name == "vector":
        trace = vector.build(timing, setup.channels, until=run.until,
                             sample_every=run.sample_every, pattern=setup.algorithm.pattern,
                             max_updates=run.max_updates)
    else:
        trace = engine.simulate(timing, setup.channels, setup.algorithm.pattern,
                                until=run.until, max_updates=run.max_updates,
                                sample_every=run.sample_every, on_event=on_event,
                                supersedes=setup.algorithm.supersedes)
    trace.network.update(engine=name, engine_reason=why)
    return trace
