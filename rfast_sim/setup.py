"""Set-up of one run: the scenario's graphs, channels, problem data and timing model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import networkx as nx

from rfast_sim import engine
from rfast_sim.algorithms import Algorithm, Env, Net, make
from rfast_sim.engine import vector
from rfast_sim.problems import ProblemData, ProblemOps, make_problem
from rfast_sim.scenario import Scenario, ScenarioError
from rfast_sim.timing import TimingModel
from rfast_sim.topology import (
    Channels,
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


def scenario_graphs(sc: Scenario, names: list[str]) -> dict[str, nx.DiGraph]:
    """Build the graphs the named algorithms need and check each algorithm's graph condition.
    Time-varying pull / push graphs give their unions here (see `graph_phases`); the condition
    is checked on each schedule entry's graphs over one period."""
    algs = {name: make(name, ProblemOps("least_squares", 1, None, False)) for name in names}
    needed = {g for a in algs.values() for g in a.graphs}
    graphs: dict[str, nx.DiGraph] = {}
    phases = graph_phases(sc.graphs, sc.nodes, sc.seed)
    if needed & {"pull", "push"}:
        if phases is not None:
            graphs["pull"], graphs["push"] = phases.union("pull"), phases.union("push")
        else:
            graphs["pull"] = build_graph(sc.graphs.pull, sc.nodes, role="pull", seed=sc.seed)
            graphs["push"] = build_graph(sc.graphs.push, sc.nodes, role="push", seed=sc.seed + 1)
    if "gossip" in needed:
        graphs["gossip"] = _gossip_graph(sc, [a for a in names if "gossip" in algs[a].graphs])
    entries = phases.entry_unions() if phases is not None else [
        (graphs.get("pull"), graphs.get("push"))]
    for name, alg in algs.items():
        if phases is not None and alg.pattern == "sync_neighbors" and "push" in alg.graphs:
            raise ScenarioError(f"graphs.schedule: {name} runs lock-step rounds on static graphs; "
                                "time-varying graphs (schedule, one_peer_exponential) are for "
                                "the asynchronous methods")
        for k, (pull, push) in enumerate(entries):
            where = f"graphs.schedule.{k}: " if phases is not None and sc.graphs.schedule else ""
            try:
                _check_condition(sc, name, alg, pull, push)
            except ScenarioError as err:
                raise ScenarioError(where + str(err)) from None
    return graphs


def _check_condition(sc: Scenario, name: str, alg: Algorithm, pull: nx.DiGraph | None,
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
    return Net(
        src=jnp.asarray(ch.src), dst=jnp.asarray(ch.dst), role=jnp.asarray(ch.role),
        weight=jnp.asarray(ch.weight, dtype=dtype),
        self_weight=jnp.asarray(ch.self_weight, dtype=dtype),
        out_ch=jnp.asarray(ch.out_ch), in_ch=jnp.asarray(ch.in_ch),
        phase_weight=jnp.asarray(ch.phase_weight, dtype=dtype),
        phase_self=jnp.asarray(ch.phase_self, dtype=dtype),
    )


@dataclass
class Setup:
    """Everything one (algorithm, seed) run needs before any event fires."""

    scenario: Scenario
    name: str
    seed: int
    ops: ProblemOps
    data: ProblemData
    channels: Channels
    timing: TimingModel
    algorithm: Algorithm

    def env(self, step_size: float) -> Env:
        return Env(_net(self.channels, self.scenario.dtype), self.data,
                   jnp.asarray(step_size, dtype=self.scenario.dtype))


def prepare(sc: Scenario, name: str, seed: int,
            graphs: dict[str, nx.DiGraph] | None = None) -> Setup:
    """Build problem data, channels and timing for one algorithm and seed."""
    graphs = graphs if graphs is not None else scenario_graphs(sc, [name])
    ops, data = make_problem(sc.problem, sc.nodes, seed, sc.dtype)
    alg = make(name, ops)
    ch = make_channels(
        sc.nodes,
        pull=graphs.get("pull") if "pull" in alg.graphs else None,
        push=graphs.get("push") if "push" in alg.graphs else None,
        gossip=graphs.get("gossip") if "gossip" in alg.graphs else None,
        phases=graph_phases(sc.graphs, sc.nodes, sc.seed) if set(alg.graphs) & {"pull", "push"}
        else None,
    )
    timing = TimingModel(sc, seed, sc.message_bytes(ops.dim))
    return Setup(sc, name, seed, ops, data, ch, timing, alg)


def choose_engine(setup: Setup, timing: TimingModel, online: bool) -> tuple[str, str]:
    """(engine, why): ``run.engine``, or for auto the vector builder where it covers the run
    and simultaneous events have probability zero; SimPy otherwise (and online, always)."""
    run, alg = setup.scenario.run, setup.algorithm
    if online:
        return "simpy", "online mode fires each event as SimPy does"
    gap = vector.covers(timing, setup.channels, alg.pattern, alg.supersedes)
    if run.engine == "vector":
        if gap is not None:
            raise ScenarioError(f"run.engine: the vector builder does not cover {gap}; use "
                                "engine: simpy or auto")
        return "vector", "run.engine: vector"
    if run.engine == "simpy":
        return "simpy", "run.engine: simpy"
    if gap is not None:
        return "simpy", f"auto: the vector builder does not cover {gap}"
    if not vector.ties_unlikely(timing):
        return "simpy", "auto: point-mass or data-driven times can tie events"
    return "vector", "auto: covered, continuous compute times"


def record_trace(setup: Setup,
                 on_event: Callable[[engine.Event], None] | None = None) -> engine.EventTrace:
    """Run the event engine for one setup (a fresh timing model: every trace of a setup is the
    same, since the model's streams are consumed as it runs)."""
    run = setup.scenario.run
    timing = TimingModel(setup.scenario, setup.seed, setup.timing.message_bytes)
    name, why = choose_engine(setup, timing, on_event is not None)
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
