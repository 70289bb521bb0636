"""A scenario compiled once into a plan: everything its runs read, and no `Scenario`.

`build_plan` is the one place a scenario becomes the objects below it: the graphs with their
phases and roots (each algorithm's graph condition checked here, once), the timing plan (the
settings the clocks, links, faults and engine read), the problem's size and step cost, the
algorithms and their steps, the target, and the memory estimate (refused before anything is
allocated). A run's setups come from the plan (`Plan.timing_setup`, `Plan.setup`); below this
module nothing imports `Scenario`.

`timing_setup`, `prepare` and `scenario_graphs` are the one-off forms for a single algorithm
and seed (tests, notebooks, benchmarks); `packet_trace` re-derives one run's trace with its
packet log (timelines).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from rfast_sim.experiment import budget
from rfast_sim.experiment.metrics import default_target
from rfast_sim.scenario import GRAPH_KINDS, AlgorithmSpec, Problem, Scenario, ScenarioError
from rfast_sim.scenario.registry import AlgorithmInfo, info
from rfast_sim.timing.devices import StepCost, compute_rate
from rfast_sim.timing.engine import EventTrace
from rfast_sim.timing.plan import TimingPlan
from rfast_sim.timing.topology import (
    build_graph,
    common_roots,
    graph_phases,
    is_symmetric,
    make_channels,
)
from rfast_sim.timing.traces import ScenarioGraphs, TimingSetup, record_trace

if TYPE_CHECKING:
    from rfast_sim.maths.setup import Setup


def timing_plan(sc: Scenario) -> TimingPlan:
    """The timing half of a scenario (the same for every algorithm and seed)."""
    return TimingPlan(nodes=sc.nodes, timing=sc.timing, run=sc.run, devices=tuple(sc.devices),
                      dtype=sc.dtype)


def model_dim(sc: Scenario) -> int:
    """The model's flat dimension (0 for a timing-only run, whose path imports no JAX)."""
    if sc.problem is None:
        return 0
    from rfast_sim.maths.problems import problem_dim

    return problem_dim(sc.problem, sc.nodes, sc.seed)


def model_step_cost(sc: Scenario) -> StepCost | None:
    """The cost of the problem's local step where ``mean: model`` needs it (XLA's cost
    analysis: JAX is imported then, and only then), else None."""
    if not sc.timing.compute.from_model:
        return None
    from rfast_sim.maths.workload import problem_cost

    return problem_cost(sc.problem, sc.nodes, sc.seed, sc.dtype)[2]


def model_rate(sc: Scenario) -> float | None:
    """Computations per simulated second under ``mean: model`` (the memory estimate's rate),
    else None (the estimate reads the compute law's mean)."""
    cost = model_step_cost(sc)
    return compute_rate(timing_plan(sc), cost) if cost is not None else None


@dataclass(frozen=True)
class Plan:
    """A scenario compiled: what every (algorithm, seed) run of it reads. Immutable; holds
    no `Scenario` (its sub-specs are the leaf's vocabulary)."""

    name: str
    seed: int  # the scenario's own seed: its graphs, the bootstrap and search streams
    seeds: tuple[int, ...]  # the runs' seeds
    timing: TimingPlan
    graphs: ScenarioGraphs
    problem: Problem | None  # None: a timing-only run
    algorithms: tuple[AlgorithmSpec, ...]
    target: dict[str, float]  # time to target is the first sample meeting all of these
    mode: str  # replay or online
    dim: int  # the model's flat dimension (0: timing only)
    step_cost: StepCost | None  # the local step's cost (``mean: model``)
    memory: budget.Estimate

    def timing_setup(self, name: str, seed: int) -> TimingSetup:
        """One algorithm and seed's channels, packet size and timing plan."""
        return _timing_setup(self.timing, self.graphs, name, seed,
                             self.dim if self.problem is not None else None, self.step_cost)

    def setup(self, name: str, seed: int) -> Setup:
        """One algorithm and seed's timing setup with the problem's data and functions and
        the algorithm built on them (imports JAX)."""
        assert self.problem is not None, "a timing-only plan has no maths: use timing_setup"
        return _setup(self.timing, self.graphs, self.problem, name, seed)


def _setup(tp: TimingPlan, graphs: ScenarioGraphs, problem: Problem, name: str,
           seed: int) -> Setup:
    from rfast_sim.maths.algorithms import make
    from rfast_sim.maths.problems import make_problem
    from rfast_sim.maths.setup import Setup
    from rfast_sim.maths.workload import step_cost

    ops, data = make_problem(problem, tp.nodes, seed, tp.dtype)
    cost = step_cost(ops, data) if tp.timing.compute.from_model else None
    t = _timing_setup(tp, graphs, name, seed, ops.dim, cost)
    return Setup(**vars(t), ops=ops, data=data, algorithm=make(name, ops))


def build_plan(sc: Scenario, max_memory: float | None = None,
               mode: str | None = None) -> Plan:
    """Compile a validated scenario: graphs (conditions checked), timing plan, problem size
    and step cost, target, and the memory estimate, refused (ScenarioError) past `max_memory`
    bytes (default: most of the available memory) before the data are read."""
    budget.check_data(sc, max_memory)  # before the data are read (the cost and dim read them)
    cost = model_step_cost(sc)
    tp = timing_plan(sc)
    dim = model_dim(sc)
    memory = budget.check(sc, max_memory, dim=dim,
                          rate=compute_rate(tp, cost) if cost is not None else None)
    algorithms = tuple(sc.algorithm_list)
    graphs = scenario_graphs(sc, [a.name for a in algorithms])
    return Plan(sc.name, sc.seed, tuple(sc.seed_list), tp, graphs, sc.problem, algorithms,
                default_target(sc.problem, sc.compare), mode or sc.run.mode, dim, cost, memory)


def prepare(sc: Scenario, name: str, seed: int,
            graphs: ScenarioGraphs | None = None) -> Setup:
    """One algorithm and seed's full setup (problem data, channels, the algorithm), built
    from the scenario without the whole plan (no memory check)."""
    assert sc.problem is not None, "a timing-only scenario has no maths: use timing_setup"
    graphs = graphs if graphs is not None else scenario_graphs(sc, [name])
    return _setup(timing_plan(sc), graphs, sc.problem, name, seed)


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



def timing_setup(sc: Scenario, name: str, seed: int, graphs: ScenarioGraphs | None = None,
                 dim: int | None = None, step_cost: StepCost | None = None) -> TimingSetup:
    """The channels of one algorithm and seed; `dim` (the model's) sizes `message_bytes:
    auto` packets, `step_cost` (the model's local step) times ``mean: model``."""
    graphs = graphs if graphs is not None else scenario_graphs(sc, [name])
    return _timing_setup(timing_plan(sc), graphs, name, seed, dim, step_cost)


def _timing_setup(tp: TimingPlan, graphs: ScenarioGraphs, name: str, seed: int,
                  dim: int | None, step_cost: StepCost | None) -> TimingSetup:
    alg = info(name)
    ch = make_channels(
        tp.nodes,
        pull=graphs.get("pull") if "pull" in alg.graphs else None,
        push=graphs.get("push") if "push" in alg.graphs else None,
        gossip=graphs.get("gossip") if "gossip" in alg.graphs else None,
        phases=graphs.phases if set(alg.graphs) & {"pull", "push"} else None,
    )
    if dim is None and tp.timing.message_bytes == "auto":
        raise ScenarioError("timing.message_bytes: auto needs the model's size; give bytes")
    return TimingSetup(tp, name, seed, alg, ch, tp.message_bytes(dim or 0), step_cost)


def packet_trace(sc: Scenario, algorithm: str, seed: int, *, until: float | None = None,
                 dim: int | None = None, message_bytes: float | None = None,
                 step_cost: StepCost | None = None) -> EventTrace:
    """One run's trace re-derived with the packet log (`EventTrace.packets`), timing only:
    the same events as the run's own trace (both come from the seed's streams), to `until`
    (default: the run's end; events before it do not depend on it). ``message_bytes: auto``
    needs the model's `dim` or the run's `message_bytes`; `step_cost` times ``mean:
    model``."""
    if until is not None:
        sc = sc.model_copy(update={"run": sc.run.model_copy(update={"until": until})})
    setup = timing_setup(sc, algorithm, seed, scenario_graphs(sc, [algorithm]),
                         dim=dim if message_bytes is None else 0, step_cost=step_cost)
    if message_bytes is not None:
        setup = dataclasses.replace(setup, message_bytes=message_bytes)
    return record_trace(setup, packets=True)
