"""Couples the event engine (when) with the algorithms (what), online or by replay.

- online: SimPy fires an event and the runner calls the jitted update for it at once; packets
  in flight are held by the runner, as the network would hold them. The literal reference.
- replay: the engine records the trace first; one jitted ``lax.scan`` over sample intervals
  (a ``fori_loop`` over the events of each) runs every update in trace order, with packets in a
  slot store, and ``vmap`` runs many seeds / step sizes in one call.

Both call the same pure algorithm functions with the same per-event keys, so they agree to
floating-point rounding.
"""

from __future__ import annotations

import functools
import json
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pandas as pd

from rfast_sim import engine
from rfast_sim import metrics as metrics_mod
from rfast_sim.algorithms import Algorithm, Env, Net, make
from rfast_sim.algorithms.base import masked_index
from rfast_sim.problems import ProblemData, ProblemOps, make_problem
from rfast_sim.scenario import Scenario, ScenarioError, dump_scenario
from rfast_sim.timing import TimingModel
from rfast_sim.topology import (
    Channels,
    build_graph,
    common_roots,
    is_symmetric,
    make_channels,
)

Array = jax.Array


# ---------------------------------------------------------------------------------------------
# set-up: graphs, channels, problem, timing


def scenario_graphs(sc: Scenario, names: list[str]) -> dict[str, nx.DiGraph]:
    """Build the graphs the named algorithms need and check each algorithm's graph condition."""
    algs = {name: make(name, ProblemOps("least_squares", 1, None, False)) for name in names}
    needed = {g for a in algs.values() for g in a.graphs}
    graphs: dict[str, nx.DiGraph] = {}
    n, seed = sc.nodes, sc.seed
    if needed & {"pull", "push"}:
        graphs["pull"] = build_graph(sc.graphs.pull, n, role="pull", seed=seed)
        graphs["push"] = build_graph(sc.graphs.push, n, role="push", seed=seed + 1)
    if "gossip" in needed:
        spec = sc.graphs.undirected or sc.graphs.pull
        where = "graphs.undirected" if sc.graphs.undirected else "graphs.pull"
        g = build_graph(spec, n, role="pull", seed=seed)
        users = [a for a in names if "gossip" in algs[a].graphs]
        if not is_symmetric(g):
            raise ScenarioError(
                f"{where}: {', '.join(users)} need(s) an undirected graph, but kind "
                f"{spec.kind!r} is directed; set graphs.undirected (e.g. {{kind: ring}})")
        if not nx.is_strongly_connected(g):
            raise ScenarioError(f"{where}: the graph for {', '.join(users)} is not connected")
        graphs["gossip"] = g
    for name, alg in algs.items():
        if set(alg.graphs) == {"pull", "push"}:
            common_roots(graphs["pull"], graphs["push"])
        elif alg.graphs == ("push",) and not nx.is_strongly_connected(graphs["push"]):
            raise ScenarioError(
                f"graphs.push: {name} (push-sum) needs a strongly connected graph; kind "
                f"{sc.graphs.push.kind!r} is not (R-FAST only needs a common root)")
    return graphs


def _net(ch: Channels, dtype: str) -> Net:
    return Net(
        src=jnp.asarray(ch.src), dst=jnp.asarray(ch.dst), role=jnp.asarray(ch.role),
        weight=jnp.asarray(ch.weight, dtype=dtype),
        self_weight=jnp.asarray(ch.self_weight, dtype=dtype),
        out_ch=jnp.asarray(ch.out_ch), in_ch=jnp.asarray(ch.in_ch),
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
    )
    timing = TimingModel(sc, seed, sc.message_bytes(ops.dim))
    return Setup(sc, name, seed, ops, data, ch, timing, alg)


def record_trace(setup: Setup,
                 on_event: Callable[[engine.Event], None] | None = None) -> engine.EventTrace:
    run = setup.scenario.run
    return engine.simulate(setup.timing, setup.channels, setup.algorithm.pattern,
                           until=run.until, max_updates=run.max_updates,
                           sample_every=run.sample_every, on_event=on_event)


# ---------------------------------------------------------------------------------------------
# compiled functions (one set per algorithm and problem shape; reused across seeds and steps)


class EventArrays(NamedTuple):
    """The math-relevant events of a trace, as device arrays (replay's scan input)."""

    branch: Array
    node: Array
    channel: Array
    slot: Array
    seq: Array
    out_slots: Array
    index: Array


def _measure(ops: ProblemOps, alg: Algorithm, env: Env, state: Any) -> Array:
    x = alg.models(state)
    xbar = x.mean(0)
    data = env.data
    loss, grad = jax.value_and_grad(ops.global_loss)(xbar, data)
    return jnp.stack([
        loss,
        loss - data.f_star,
        jnp.linalg.norm(grad),
        jnp.mean(jnp.sum((x - xbar) ** 2, axis=1)),
        ops.accuracy(xbar, data),
        jnp.max(jnp.linalg.norm(x - data.x_star, axis=1)),
    ])


def _branches(alg: Algorithm, env: Env, ev: EventArrays, ev_key: Array) -> list[Callable]:
    def compute(carry: tuple, e: Array) -> tuple:
        st, store, last = carry
        assert alg.on_compute is not None
        st, payloads = alg.on_compute(env, st, ev.node[e], jax.random.fold_in(ev_key, ev.index[e]))
        slots = ev.out_slots[e]
        idx = masked_index(slots, slots >= 0, store.shape[0])
        return st, store.at[idx].set(payloads.astype(store.dtype), mode="drop"), last

    def deliver(carry: tuple, e: Array) -> tuple:
        st, store, last = carry
        assert alg.on_receive is not None
        c, seq = ev.channel[e], ev.seq[e]
        fresh = seq > last[c]
        st = alg.on_receive(env, st, c, store[ev.slot[e]], fresh)
        return st, store, last.at[c].max(seq)

    def round_(carry: tuple, e: Array) -> tuple:
        st, store, last = carry
        assert alg.on_round is not None
        return alg.on_round(env, st, jax.random.fold_in(ev_key, ev.index[e])), store, last

    def noop(carry: tuple, e: Array) -> tuple:
        return carry

    return [round_, noop] if alg.synchronous else [compute, deliver, noop]


def branch_table(alg: Algorithm) -> np.ndarray:
    """Map engine event kinds to switch branches (-1: not a math event)."""
    table = -np.ones(5, dtype=np.int32)
    if alg.synchronous:
        table[engine.ROUND] = 0
    else:
        table[engine.COMPUTE], table[engine.DELIVER] = 0, 1
    return table


def _replay_fn(ops: ProblemOps, alg: Algorithm, env: Env, key: Array, ev: EventArrays,
               seg_end: Array, store0: Array) -> tuple[Any, Array]:
    init_key, ev_key = jax.random.split(key)
    state = alg.init(env, init_key)
    last0 = -jnp.ones(max(env.net.src.shape[0], 1), jnp.int32)
    branches = _branches(alg, env, ev, ev_key)

    def step(e: Array, carry: tuple) -> tuple:
        return jax.lax.switch(ev.branch[e], branches, carry, e)

    def segment(c: tuple, end: Array) -> tuple:
        carry, ptr = c
        carry = jax.lax.fori_loop(ptr, end, step, carry)
        return (carry, end), _measure(ops, alg, env, carry[0])

    (carry, _), metrics = jax.lax.scan(segment, ((state, store0, last0), jnp.int32(0)), seg_end)
    return carry[0], metrics


@dataclass(frozen=True)
class Compiled:
    """Jitted entry points of one algorithm on one problem shape."""

    alg: Algorithm
    init: Callable
    compute: Callable
    receive: Callable
    round: Callable
    measure: Callable
    replay: Callable
    replay_batch: Callable


@functools.lru_cache(maxsize=64)
def compiled(name: str, ops: ProblemOps) -> Compiled:
    """Compile once per (algorithm, problem shape); numeric hyperparameters are traced."""
    alg = make(name, ops)

    def compute(env: Env, st: Any, i: Array, ev_key: Array, index: Array) -> tuple:
        assert alg.on_compute is not None
        return alg.on_compute(env, st, i, jax.random.fold_in(ev_key, index))

    def receive(env: Env, st: Any, c: Array, payloads: Array, k: Array, fresh: Array) -> Any:
        assert alg.on_receive is not None
        return alg.on_receive(env, st, c, payloads[k], fresh)

    def round_(env: Env, st: Any, ev_key: Array, index: Array) -> Any:
        assert alg.on_round is not None
        return alg.on_round(env, st, jax.random.fold_in(ev_key, index))

    replay = functools.partial(_replay_fn, ops, alg)
    return Compiled(
        alg=alg,
        init=jax.jit(alg.init),
        compute=jax.jit(compute),
        receive=jax.jit(receive),
        round=jax.jit(round_),
        measure=jax.jit(functools.partial(_measure, ops, alg)),
        replay=jax.jit(replay),
        replay_batch=jax.jit(jax.vmap(replay)),
    )


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class Run:
    """One finished run: its trace, sampled metrics and final state."""

    name: str
    seed: int
    step_size: float
    trace: engine.EventTrace
    metrics: np.ndarray  # [K, len(METRICS)]
    final_state: Any
    wall_seconds: float
    message_bytes: float
    extra: dict[str, Any] = field(default_factory=dict)


def run_online(setup: Setup, step_size: float) -> Run:
    """The literal model: each event calls the jitted update as SimPy fires it."""
    comp = compiled(setup.name, setup.ops)
    env = setup.env(step_size)
    init_key, ev_key = jax.random.split(jax.random.PRNGKey(setup.seed))
    holder: dict[str, Any] = {"st": comp.init(env, init_key)}
    in_flight: dict[int, tuple[Array, int]] = {}
    last: dict[int, int] = {}
    samples: list[Array] = []
    sync = setup.algorithm.synchronous

    def on_event(ev: engine.Event) -> None:
        if ev.kind == engine.SAMPLE:
            samples.append(comp.measure(env, holder["st"]))
        elif sync:
            if ev.kind == engine.ROUND:
                holder["st"] = comp.round(env, holder["st"], ev_key, np.int32(ev.index))
        elif ev.kind == engine.COMPUTE:
            st, payloads = comp.compute(env, holder["st"], np.int32(ev.node), ev_key,
                                        np.int32(ev.index))
            holder["st"] = st
            for k, slot in enumerate(ev.out_slots):
                if slot >= 0:
                    in_flight[slot] = (payloads, k)
        elif ev.kind == engine.DELIVER:
            payloads, k = in_flight.pop(ev.slot)
            fresh = ev.seq > last.get(ev.channel, -1)
            last[ev.channel] = max(ev.seq, last.get(ev.channel, -1))
            holder["st"] = comp.receive(env, holder["st"], np.int32(ev.channel), payloads,
                                        np.int32(k), np.bool_(fresh))

    t0 = _time.perf_counter()
    trace = record_trace(setup, on_event)
    metrics = np.asarray(jnp.stack(samples))
    return Run(setup.name, setup.seed, step_size, trace, metrics, holder["st"],
               _time.perf_counter() - t0, setup.timing.message_bytes)


def event_arrays(trace: engine.EventTrace, alg: Algorithm) -> tuple[dict[str, np.ndarray],
                                                                    np.ndarray]:
    """Math events of a trace (numpy) and, per sample, how many of them precede it."""
    branch = branch_table(alg)[trace.kind]
    math = branch >= 0
    index = np.flatnonzero(math).astype(np.int32)
    arrays = {
        "branch": branch[math], "node": trace.node[math], "channel": trace.channel[math],
        "slot": trace.slot[math], "seq": trace.seq[math], "out_slots": trace.out_slots[math],
        "index": index,
    }
    sample_pos = np.flatnonzero(trace.kind == engine.SAMPLE)
    seg_end = np.searchsorted(index, sample_pos).astype(np.int32)
    return arrays, seg_end


def _pad(a: np.ndarray, length: int, fill: int) -> np.ndarray:
    if len(a) == length:
        return a
    pad = np.full((length - len(a), *a.shape[1:]), fill, dtype=a.dtype)
    return np.concatenate([a, pad])


def run_replay(setups: list[Setup], step_sizes: list[float],
               traces: list[engine.EventTrace] | None = None) -> list[Run]:
    """Replay every (setup, step size) pair of one algorithm; batched by vmap when > 1.

    All setups must share the algorithm and problem shape (they differ in seed and data).
    """
    first = setups[0]
    comp = compiled(first.name, first.ops)
    t0 = _time.perf_counter()
    traces = traces or [record_trace(s) for s in setups]
    t_trace = _time.perf_counter() - t0
    pairs = [(k, h) for k in range(len(setups)) for h in step_sizes]
    evs = [event_arrays(tr, comp.alg) for tr in traces]
    length = max(len(e[0]["branch"]) for e in evs)
    num_k = max(len(e[1]) for e in evs)
    slots = max(tr.num_slots for tr in traces)
    noop = 1 if comp.alg.synchronous else 2  # the last branch of _branches
    width = comp.alg.payload_width
    dtype = first.scenario.dtype

    def inputs(k: int, h: float) -> tuple:
        arrays, seg_end = evs[k]
        fill = {"branch": noop}
        ev = EventArrays(**{name: _pad(a, length, fill.get(name, -1))
                            for name, a in arrays.items()})
        seg = _pad(seg_end, num_k, int(seg_end[-1]))
        return (setups[k].env(h), jax.random.PRNGKey(setups[k].seed), ev, seg,
                np.zeros((slots, width), dtype=dtype))

    t1 = _time.perf_counter()
    if len(pairs) == 1:
        final, metrics = comp.replay(*inputs(*pairs[0]))
        finals, mets = [final], [np.asarray(metrics)]
    else:
        batch = [inputs(k, h) for k, h in pairs]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batch)
        final_b, metrics_b = comp.replay_batch(*stacked)
        metrics_np = np.asarray(metrics_b)
        finals = [jax.tree_util.tree_map(lambda a, j=j: a[j], final_b) for j in range(len(pairs))]
        mets = list(metrics_np)
    jax.block_until_ready(finals)
    wall = (_time.perf_counter() - t1) / len(pairs) + t_trace / len(setups)
    return [
        Run(setups[k].name, setups[k].seed, h, traces[k], m[: len(evs[k][1])], fin, wall,
            setups[k].timing.message_bytes)
        for (k, h), m, fin in zip(pairs, mets, finals, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# whole scenarios


def run_frame_of(r: Run) -> pd.DataFrame:
    tr = r.trace
    return metrics_mod.run_frame(
        algorithm=r.name, seed=r.seed, step_size=r.step_size, sample_time=tr.sample_time,
        updates=tr.sample_updates, messages=tr.sample_messages, dropped=tr.sample_dropped,
        message_bytes=r.message_bytes, values=r.metrics)


@dataclass
class Result:
    """All runs of a scenario and their tidy metrics frame."""

    scenario: Scenario
    runs: list[Run]
    metrics: pd.DataFrame

    @property
    def target(self) -> dict[str, float]:
        if self.scenario.compare is not None:
            return dict(self.scenario.compare.target)
        return {"opt_gap": 1e-3} if self.scenario.problem.kind != "mlp" else {"accuracy": 0.9}

    def comparison(self) -> pd.DataFrame:
        """Per-algorithm table: time to target, counters, final metrics, speed-up."""
        names = [a.name for a in self.scenario.algorithm_list]
        baseline = self.scenario.compare.baseline if self.scenario.compare else names[0]
        return metrics_mod.comparison_table(self.metrics, baseline, self.target)

    def summary(self) -> dict[str, Any]:
        per_run = metrics_mod.run_summaries(self.metrics, self.target)
        runs = []
        for r, row in zip(self.runs, per_run.to_dict("records"), strict=True):
            row.update(events=len(r.trace), max_in_flight=r.trace.num_slots,
                       wall_seconds=r.wall_seconds,
                       straggler_nodes=r.extra.get("straggler_nodes", []))
            runs.append(row)
        return {"scenario": self.scenario.name, "runs": runs}

    def save(self, out: str | Path) -> Path:
        """Write metrics.parquet, scenario.yaml, summary.json and comparison.csv under `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        dump_scenario(self.scenario, out / "scenario.yaml")
        (out / "summary.json").write_text(json.dumps(self.summary(), indent=2, default=_json))
        self.comparison().to_csv(out / "comparison.csv", index=False)
        return out


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def run(sc: Scenario, *, mode: str | None = None,
        progress: Callable[[int, int, str], None] | None = None) -> Result:
    """Run every algorithm x seed x step size of a scenario; return runs and the tidy frame."""
    mode = mode or sc.run.mode
    names = [a.name for a in sc.algorithm_list]
    graphs = scenario_graphs(sc, names)
    total = sum(len(a.step_sizes) for a in sc.algorithm_list) * sc.seeds
    runs: list[Run] = []
    for spec in sc.algorithm_list:
        setups = [prepare(sc, spec.name, s, graphs) for s in sc.seed_list]
        if mode == "online":
            for setup in setups:
                for h in spec.step_sizes:
                    runs.append(run_online(setup, h))
                    if progress:
                        progress(len(runs), total, spec.name)
        else:
            runs.extend(run_replay(setups, spec.step_sizes))
            if progress:
                progress(len(runs), total, spec.name)
        for r, setup in zip(runs[-len(setups) * len(spec.step_sizes):],
                            [s for s in setups for _ in spec.step_sizes], strict=True):
            r.extra["straggler_nodes"] = setup.timing.straggler_nodes
    frame = pd.concat([run_frame_of(r) for r in runs], ignore_index=True)
    return Result(sc, runs, frame)
