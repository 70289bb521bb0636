"""The scenario schema: pydantic models of a whole simulated experiment.

A leaf module: it imports no JAX and no algorithm code (algorithm names are checked against the
lazy registry). Reading YAML, overrides and error formatting live in
:mod:`rfast_sim.scenario.loading`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from rfast_sim.scenario.algorithm import AlgorithmSpec, AutoStep, AutoStepSpec
from rfast_sim.scenario.base import ComputeLaw, Dist, ScenarioError, Strict
from rfast_sim.scenario.devices import (
    DEVICES,
    Device,
    DeviceClass,
    DeviceKind,
    DeviceNic,
    PeakFlops,
    check_devices,
)
from rfast_sim.scenario.graphs import Graphs, GraphSpec, ScheduleEntry
from rfast_sim.scenario.kinds import GRAPH_KINDS, LAWS, LOSS_MODELS, GraphKind, Law, LossModel
from rfast_sim.scenario.network import (
    Churn,
    Clusters,
    Link,
    LinkChurn,
    LinkDrop,
    LinkTiming,
    Loss,
    Nic,
    Outage,
)
from rfast_sim.scenario.problem import (
    Heterogeneity,
    Mnist1dSpec,
    ModelSpec,
    PartitionSpec,
    Problem,
    mlp_dim,
)
from rfast_sim.scenario.problem_kinds import PROBLEM_KINDS


class Stragglers(Strict):
    count: int = Field(0, ge=0, description="persistent slow nodes, chosen from the seed")
    nodes: list[int] | None = Field(None, description="explicit persistent slow nodes")
    prob: float = Field(0.0, ge=0, le=1, description="per-computation transient slowdown prob.")
    slowdown: float = Field(5.0, ge=1, description="a straggler's compute times are multiplied "
                            "by this")


class Timing(Strict):
    compute: ComputeLaw = Field(ComputeLaw(dist="exponential", mean=1.0), description="seconds "
                                "per local gradient, per node and computation (mean: model: "
                                "from the problem's cost on each node's device)")
    speed: Dist | None = Field(None, description="per-node persistent compute-time multipliers")
    stragglers: Stragglers = Field(Stragglers(), description="slow nodes: persistent ones "
                                   "(count or nodes) and/or transient ones (prob)")
    latency: Dist = Field(Dist(dist="constant", mean=0.01), description="seconds per packet "
                          "on a link, after it has left the sender's egress")
    bandwidth: float = Field(1.25e9, gt=0, description="bytes/s per link")
    message_bytes: float | Literal["auto"] = Field(
        "auto", description="bytes per packet; auto: the model's dimension x the dtype's size")
    drop_prob: float | None = Field(
        None, ge=0, lt=1, description="Bernoulli loss per packet (the shorthand of `loss`)")
    loss: Loss | None = Field(None, description="bursty loss per link (Gilbert-Elliott)")
    link_drop_prob: list[LinkDrop] = Field(default_factory=list, description="per-link "
                                           "Bernoulli loss rates (over drop_prob)")
    links: list[Link] = Field([], description="per-link latency / bandwidth (over clusters)")
    clusters: Clusters | None = Field(None, description="intra- and inter-group link timing")
    churn: Churn | None = Field(None, description="random node failures")
    link_churn: LinkChurn | None = Field(None, description="random link failures")
    outages: list[Outage] = Field([], description="explicit node and link outages")
    retransmit_timeout: float = Field(
        0.2, gt=0, description="synchronous methods resend a lost packet after this many seconds"
    )
    nic: Nic | None = Field(Nic(), description="null: no contention (every transfer on its own "
                            "link, in parallel)")
    barrier: Literal["neighbour", "global"] = Field(
        "neighbour", description="D-PSGD and sync GT: a node waits for its in-neighbours' "
        "messages (neighbour) or for every node (global); all-reduce is global by nature")
    barrier_timeout: float | None = Field(
        None, gt=0, description="D-PSGD and sync GT: a node waits at most this long at a "
        "barrier, then goes on without the missing messages (null: it waits)")

    @model_validator(mode="after")
    def _check(self) -> Timing:
        if isinstance(self.message_bytes, float | int) and self.message_bytes <= 0:
            raise ValueError(f"message_bytes: must be > 0 or 'auto' (got {self.message_bytes})")
        if self.speed is not None and self.speed.expected() <= 0:
            raise ValueError("speed.mean: must be > 0")
        if self.drop_prob is not None and self.loss is not None:
            raise ValueError("loss: give either drop_prob (Bernoulli) or loss (a loss model), "
                             "not both")
        if self.loss is not None and self.link_drop_prob:
            raise ValueError("link_drop_prob: per-link Bernoulli rates go with drop_prob, not "
                             "with a loss model")
        law = self.compute_law()
        if not self.compute.from_model and (law.expected() <= 0 or law.is_point_mass_at_zero()):
            raise ValueError("compute: a compute time must have a positive mean (a device that "
                             "computes in zero time would fire events forever at time 0)")
        return self

    def compute_law(self) -> Dist:
        """The compute law the clocks draw from: the law itself, or for ``mean: model`` its
        unit-mean shape (each node's draws are then scaled by its step time)."""
        return self.compute.unit() if self.compute.from_model else self.compute


TargetMetric = Literal["opt_gap", "loss", "grad_norm", "accuracy", "test_loss", "test_accuracy"]


def _default_target() -> dict[TargetMetric, float]:
    return {"opt_gap": 1e-3}


class Compare(Strict):
    baseline: str = Field("allreduce_sgd", description="the algorithm speed-ups are measured "
                          "against (one of the scenario's)")
    target: dict[TargetMetric, float] = Field(
        default_factory=_default_target, description="metric: value; time to target is when "
        "the metric stays at or below it (at or above it for accuracies)")


class RunSpec(Strict):
    until: float | None = Field(100.0, gt=0, description="simulated seconds")
    max_updates: int | None = Field(None, ge=1, description="stop after this many computations")
    sample_every: float = Field(
        1.0, gt=0, description="metric grid, simulated seconds: 0, every, 2 every, ... and the "
        "run's end (a run shorter than one interval still samples its final state)")
    mode: Literal["replay", "online"] = Field(
        "replay", description="replay: the trace first, then the math in one jitted scan "
        "(fast); online: one jitted call per SimPy event (the reference)")
    engine: Literal["auto", "simpy", "vector"] = Field(
        "auto", description="trace builder: the SimPy reference, the vectorised builder "
        "(asynchronous methods on static graphs without faults), or auto: vector where it "
        "covers the run and compute times are continuous, else SimPy")
    replay: Literal["auto", "sequential", "waves"] = Field(
        "auto", description="replay driver: one event per loop step (sequential), or waves of "
        "independent events applied together (the same result to rounding); auto: waves "
        "where a wave would hold enough events to pay (summary.json says which ran)")

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        if self.until is None and self.max_updates is None:
            raise ValueError("until: give run.until or run.max_updates")
        return self


class Scenario(Strict):
    """A whole simulated experiment."""

    name: str = Field("scenario", description="used for output folder names")
    seed: int = Field(0, ge=0, description="every random stream (timing, data, minibatches) "
                      "derives from it")
    seeds: int = Field(1, ge=1, description="replicates: seeds seed, seed+1, ...")
    nodes: int = Field(8, ge=2, description="devices in the network")
    dtype: Literal["float64", "float32"] = Field("float64", description="floats of the maths")
    graphs: Graphs = Field(Graphs(), description="the communication graphs")
    timing: Timing = Field(Timing(), description="the timing model: compute times, the network, "
                           "losses, faults")
    problem: Problem | None = Field(
        default_factory=Problem, description="what the nodes train; null: a timing-only run "
        "(the event engine alone: counts, bytes, drops, queueing; no maths, no JAX)")
    algorithm: AlgorithmSpec | None = Field(None, description="one algorithm (or give "
                                            "algorithms)")
    algorithms: list[AlgorithmSpec] | None = Field(
        None, description="several algorithms, run on the same timing draws (default: rfast)")
    compare: Compare | None = Field(None, description="the comparison table's baseline and "
                                    "target")
    run: RunSpec = Field(RunSpec(), description="how long, how often to sample, which engine")
    devices: list[Device] = Field([], description="device classes on the nodes (every node "
                                  "one); with timing.compute.mean: model each node's compute "
                                  "time follows its device (docs: devices)")

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        self._check_node_ids()
        self._check_files()
        t = self.timing
        if ((t.churn and t.churn.random) or t.link_churn or t.outages) and self.run.until is None:
            raise ValueError("run.until: scenarios with faults (churn, link_churn, outages) "
                             "need a finite run.until (a node that never returns could stall "
                             "a max_updates run)")
        if t.compute.dist == "trace" and not t.compute.loop and self.run.until is None:
            raise ValueError("run.until: a compute trace with loop: false runs out (its nodes "
                             "stop computing), so a max_updates run may never end; give "
                             "run.until, or loop: true")
        if self.algorithm is not None and self.algorithms is not None:
            raise ValueError("algorithms: give either 'algorithm' or 'algorithms', not both")
        if self.problem is None:
            self._check_timing_only()
        check_devices(self.devices, self.nodes, self.timing.compute.from_model)
        if self.compare is not None:
            names = [a.name for a in self.algorithm_list]
            if self.compare.baseline not in names:
                raise ValueError(
                    f"compare.baseline: {self.compare.baseline!r} is not among the algorithms "
                    f"({', '.join(names)})"
                )
        return self._resolve_problem()

    def _check_timing_only(self) -> None:
        if self.timing.message_bytes == "auto":
            raise ValueError("timing.message_bytes: auto sizes a packet from the model, and a "
                             "timing-only run (problem: null) has none; give the bytes per "
                             "packet (e.g. 4.0e6)")
        tuned = [a.name for a in self.algorithm_list if a.auto is not None]
        if tuned:
            where = "algorithm" if self.algorithm is not None else "algorithms"
            raise ValueError(f"{where}.step_size: auto tunes {', '.join(tuned)} on the "
                             "problem, and a timing-only run (problem: null) has none; give a "
                             "number (it is not used) or a problem")
        if self.timing.compute.from_model:
            raise ValueError("timing.compute.mean: model times the problem's local step, and "
                             "a timing-only run (problem: null) has none; give seconds (e.g. "
                             "0.1) or a problem")
        if self.run.mode == "online":
            raise ValueError("run.mode: online fires the maths as events happen, and a "
                             "timing-only run (problem: null) has none; use mode: replay")

    def _resolve_problem(self) -> Scenario:
        """A problem read with a data seed gets the scenario's; a comparison without a target
        gets the problem's default."""
        update: dict = {}
        p = self.problem
        if p is None:
            return self
        if "data_seed" in PROBLEM_KINDS.entries[p.kind].keys and p.data_seed is None:
            update["problem"] = p.model_copy(update={"data_seed": self.seed})
        if (self.compare is not None and "target" not in self.compare.model_fields_set
                and p.kind not in ("least_squares", "logistic", "mlp")):
            update["compare"] = self.compare.model_copy(update={"target": p.default_target()})
        return self.model_copy(update=update) if update else self

    def laws(self) -> dict[str, Dist]:
        """Every random law of the timing, by its dotted key."""
        t = self.timing
        laws = {"timing.compute": t.compute_law(), "timing.latency": t.latency,
                "timing.speed": t.speed}
        laws.update({f"timing.links.{k}.latency": ln.latency for k, ln in enumerate(t.links)})
        if t.clusters is not None:
            laws.update({"timing.clusters.intra.latency": t.clusters.intra.latency,
                         "timing.clusters.inter.latency": t.clusters.inter.latency})
        for key in ("churn", "link_churn"):
            churn = getattr(t, key)
            if churn is not None and churn.random:
                laws.update({f"timing.{key}.{f}": churn.law(f) for f in ("mtbf", "mttr")})
        return {k: v for k, v in laws.items() if v is not None}

    def _check_files(self) -> None:
        """Laws from data: in the fields that can use them, with node ids that exist."""
        n = self.nodes
        allowed = {"timing.compute": ("empirical", "trace"), "timing.latency": ("empirical",
                                                                                "matrix")}
        for where, d in self.laws().items():
            if d.file is None:
                continue
            ok = allowed.get(where, ("empirical",))
            if d.dist not in ok:
                raise ValueError(f"{where}.dist: {d.dist!r} is not allowed here (allowed from a "
                                 f"file: {', '.join(ok)})")
            if d.dist == "matrix" and d.data().shape != (n, n):
                raise ValueError(f"{where}.file: {d.file} holds a {len(d.data())} x "
                                 f"{len(d.data())} matrix; nodes={n} needs {n} x {n}")
            per_node = d.durations().per_node if d.dist != "matrix" else None
            if per_node is not None:
                bad = sorted(set(per_node) - set(range(n)))
                missing = sorted(set(range(n)) - set(per_node))
                if bad:
                    raise ValueError(f"{where}.file: {d.file}: node id {bad[0]} is out of range "
                                     f"0..{n - 1}")
                if missing:
                    raise ValueError(f"{where}.file: {d.file}: node {missing[0]} has no rows "
                                     f"(every node needs its own durations)")

    def _check_node_ids(self) -> None:
        n = self.nodes
        specs = [(f"graphs.{r}", getattr(self.graphs, r)) for r in ("pull", "push", "undirected")]
        specs += [(f"graphs.schedule.{k}.{r}", getattr(e, r))
                  for k, e in enumerate(self.graphs.schedule) for r in ("pull", "push")]
        for role, g in specs:
            if g is None:
                continue
            if g.edges and any(not (0 <= a < n and 0 <= b < n) for a, b in g.edges):
                raise ValueError(f"{role}.edges: node ids must be in 0..{n - 1}")
            if g.root >= n:
                raise ValueError(f"{role}.root: must be < nodes={n} (got {g.root})")
        st = self.timing.stragglers
        if st.count > n:
            raise ValueError(f"timing.stragglers.count: must be <= nodes={n} (got {st.count})")
        if st.nodes and any(not 0 <= i < n for i in st.nodes):
            raise ValueError(f"timing.stragglers.nodes: node ids must be in 0..{n - 1}")
        self._check_link_ids()

    def _check_link_ids(self) -> None:
        n = self.nodes
        for key in ("link_drop_prob", "links", "outages"):
            pairs = [(ld.src, ld.dst) for ld in getattr(self.timing, key)]
            for k, (a, b) in enumerate(pairs):
                if max(a or 0, b or 0) >= n:
                    raise ValueError(f"timing.{key}.{k}: node ids must be in 0..{n - 1}")
            if len(set(pairs)) != len(pairs) and key != "outages":
                raise ValueError(f"timing.{key}: a (src, dst) pair is given twice")
        for k, o in enumerate(self.timing.outages):
            if o.node is not None and o.node >= n:
                raise ValueError(f"timing.outages.{k}.node: must be in 0..{n - 1}")
        groups = self.timing.clusters.groups if self.timing.clusters else []
        if any(not 0 <= i < n for g in groups for i in g):
            raise ValueError(f"timing.clusters.groups: node ids must be in 0..{n - 1}")

    @property
    def algorithm_list(self) -> list[AlgorithmSpec]:
        if self.algorithms:
            return list(self.algorithms)
        return [self.algorithm or AlgorithmSpec()]

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds)]

    @property
    def slug(self) -> str:
        """The name made safe as a folder name (letters, digits, ``._-``; never ``..``)."""
        return slug(self.name)


def slug(name: str) -> str:
    """`name` as a safe folder name: letters, digits and ``._-`` only, never ``..``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scenario"
    return re.sub(r"\.{2,}", ".", safe)


__all__ = [
    "DEVICES",
    "GRAPH_KINDS",
    "LAWS",
    "LOSS_MODELS",
    "PROBLEM_KINDS",
    "AlgorithmSpec",
    "AutoStep",
    "AutoStepSpec",
    "Churn",
    "Clusters",
    "Compare",
    "ComputeLaw",
    "Device",
    "DeviceClass",
    "DeviceKind",
    "DeviceNic",
    "Dist",
    "GraphKind",
    "GraphSpec",
    "Graphs",
    "Heterogeneity",
    "Law",
    "Link",
    "LinkChurn",
    "LinkDrop",
    "LinkTiming",
    "Loss",
    "LossModel",
    "Mnist1dSpec",
    "ModelSpec",
    "Nic",
    "Outage",
    "PartitionSpec",
    "PeakFlops",
    "Problem",
    "RunSpec",
    "Scenario",
    "ScenarioError",
    "ScheduleEntry",
    "Stragglers",
    "Strict",
    "Timing",
    "mlp_dim",
    "slug",
]
