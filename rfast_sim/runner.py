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
from rfast_sim.algorithms import Algorithm, Env, Net, NetState, make
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
    # A fresh timing model: its streams are consumed as it runs, and every trace of a setup
    # must be the same.
    timing = TimingModel(setup.scenario, setup.seed, setup.timing.message_bytes)
    return engine.simulate(timing, setup.channels, setup.algorithm.pattern,
                           until=run.until, max_updates=run.max_updates,
                           sample_every=run.sample_every, on_event=on_event)


# ---------------------------------------------------------------------------------------------
# event application: gather the rows an event touches, call the algorithm, scatter back


def _gather(arrays: Any, idx: Array) -> Any:
    return type(arrays)(*(a[jnp.maximum(idx, 0)] for a in arrays))


def _scatter(arrays: Any, idx: Array, rows: Any, write: Array) -> Any:
    """Write `rows` (a NamedTuple like `arrays`, None = unchanged) at idx where `write`."""
    if rows is None:
        return arrays
    size = jax.tree_util.tree_leaves(arrays)[0].shape[0] if len(arrays) else 0
    where = jnp.where(write & (idx >= 0), idx, size)  # out of bounds = not written
    return type(arrays)(*(a if r is None else a.at[where].set(r.astype(a.dtype), mode="drop")
                          for a, r in zip(arrays, rows, strict=True)))


def _set_row(arrays: Any, i: Array, row: Any, write: Array) -> Any:
    """Write node row i (a NamedTuple like `arrays`, None = unchanged) where `write`."""
    if row is None:
        return arrays
    return type(arrays)(*(
        a if r is None else jax.lax.dynamic_update_index_in_dim(
            a, jnp.where(write, r.astype(a.dtype), a[i]), i, 0)
        for a, r in zip(arrays, row, strict=True)))


class Pending(NamedTuple):
    """The state writes of one computation (see `_replay_fn` for why they may be deferred)."""

    node: Array
    active: Array
    rows: Any  # (node row, in-channel rows, out-channel rows), None = unchanged
    payloads: Array  # [Kout, W]


def compute_rows(alg: Algorithm, env: Env, state: NetState, i: Array, key: Array,
                 active: Array) -> Pending:
    """Node i finished a computation: read its rows and compute, but write nothing."""
    assert alg.on_compute is not None
    node = jax.tree_util.tree_map(lambda a: a[i], state.nodes)
    node_u, ins_u, outs_u, payloads = alg.on_compute(
        env, i, key, node, _gather(state.chans, env.net.in_ch[i]),
        _gather(state.chans, env.net.out_ch[i]))
    return Pending(i, active, (node_u, ins_u, outs_u), payloads)


def write_rows(env: Env, state: NetState, p: Pending) -> NetState:
    """Apply a computation's writes (no effect unless `p.active`)."""
    node_u, ins_u, outs_u = p.rows
    nodes = _set_row(state.nodes, p.node, node_u, p.active)
    chans = _scatter(state.chans, env.net.in_ch[p.node], ins_u, p.active)
    chans = _scatter(chans, env.net.out_ch[p.node], outs_u, p.active)
    return NetState(nodes, chans)


def apply_compute(alg: Algorithm, env: Env, state: NetState, i: Array, key: Array,
                  active: Array) -> tuple[NetState, Array]:
    """Node i finished a computation (no effect unless `active`): returns state and payloads."""
    p = compute_rows(alg, env, state, i, key, active)
    return write_rows(env, state, p), p.payloads


def apply_receive(alg: Algorithm, env: Env, state: NetState, c: Array, payload: Array,
                  fresh: Array, active: Array) -> NetState:
    """A packet arrived on channel c (no effect unless `active`)."""
    assert alg.on_receive is not None
    a, b = env.net.src[c], env.net.dst[c]

    def row(arrays: Any, k: Array) -> Any:
        return type(arrays)(*(x[k] for x in arrays))

    def one(rows: Any) -> Any:
        return None if rows is None else type(rows)(*(None if r is None else r[None]
                                                      for r in rows))

    dst_u, src_u, chan_u = alg.on_receive(env, c, payload, fresh, row(state.nodes, b),
                                          row(state.nodes, a), row(state.chans, c))
    nodes = _scatter(state.nodes, b[None], one(dst_u), active)
    nodes = _scatter(nodes, a[None], one(src_u), active)
    chans = _scatter(state.chans, c[None], one(chan_u), active)
    return NetState(nodes, chans)


def apply_round(alg: Algorithm, env: Env, state: NetState, key: Array,
                active: Array) -> NetState:
    assert alg.on_round is not None
    new = alg.on_round(env, state, key)
    return jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, state)


def _measure(ops: ProblemOps, alg: Algorithm, env: Env, state: NetState) -> Array:
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


# ---------------------------------------------------------------------------------------------
# replay layout: fixed loop bounds shared by every run of a batch


class Steps(NamedTuple):
    """Per-run event arrays in the shared layout (inactive entries are padding)."""

    c_node: Array  # [Q] compute (or round) slots
    c_index: Array
    c_out_slots: Array  # [Q, Kout]
    c_active: Array
    d_channel: Array  # [Dn] delivery slots
    d_slot: Array
    d_seq: Array
    d_active: Array


class Schedule(NamedTuple):
    """Loop bounds shared by a batch: segment k runs groups q_lo[k]..q_hi[k] (each: deliveries
    d_lo[q]..d_hi[q], then compute q), then tail deliveries t_lo[k]..t_hi[k], then measures."""

    q_lo: Array  # [K]
    q_hi: Array
    d_lo: Array  # [Q]
    d_hi: Array
    t_lo: Array  # [K]
    t_hi: Array


def _bucket(size: int) -> int:
    """Round a length up (to within 1/8) so nearby trace lengths share one compiled shape."""
    if size <= 64:
        return 64
    step = 2 ** (size.bit_length() - 1) // 8
    return -(-size // step) * step


def _is_compute_kind(alg: Algorithm, kind: np.ndarray) -> np.ndarray:
    return kind == (engine.ROUND if alg.synchronous else engine.COMPUTE)


def build_layout(traces: list[engine.EventTrace], alg: Algorithm) -> tuple[Schedule,
                                                                          list[Steps]]:
    """Lay the math events of several traces into one fixed loop structure.

    Within each metric segment, a run's events form groups (deliveries, then one computation)
    and a tail of deliveries. Each group position gets the largest delivery count any run has
    there; runs fill their events in and leave the rest inactive, so all loop bounds are shared
    and `vmap` never needs a batched loop condition.
    """
    runs = []
    num_seg = max(len(tr.sample_time) for tr in traces)
    for tr in traces:
        is_c = _is_compute_kind(alg, tr.kind)
        is_d = (tr.kind == engine.DELIVER) if not alg.synchronous else np.zeros_like(is_c)
        math = np.flatnonzero(is_c | is_d)
        sample_pos = np.flatnonzero(tr.kind == engine.SAMPLE)
        seg = np.searchsorted(sample_pos, math)
        keep = seg < len(sample_pos)
        math, seg = math[keep], seg[keep]
        c = is_c[math]
        # group index within segment = computations before this event in its segment
        cum = np.cumsum(c) - c
        seg_first = np.searchsorted(seg, np.arange(num_seg))
        seg_c0 = np.concatenate([cum, [cum[-1] + c[-1] if len(c) else 0]])[seg_first]
        g = cum - seg_c0[seg]
        n_groups = np.bincount(seg[c], minlength=num_seg)
        tail = ~c & (g == n_groups[seg])
        runs.append((math, seg, c, g, n_groups, tail))
    groups = np.max([r[4] for r in runs], axis=0)  # [num_seg]
    goff = np.concatenate([[0], np.cumsum(groups)])
    nq = int(goff[-1])
    nd = np.zeros(nq, dtype=np.int64)
    nt = np.zeros(num_seg, dtype=np.int64)
    for _math, seg, c, g, _, tail in runs:
        grp = ~c & ~tail
        cnt = np.bincount(goff[seg[grp]] + g[grp], minlength=nq)
        nd = np.maximum(nd, cnt)
        nt = np.maximum(nt, np.bincount(seg[tail], minlength=num_seg))
    # delivery positions: segment by segment, its groups' deliveries then its tail
    seg_of_q = np.repeat(np.arange(num_seg), groups)
    seg_total = np.bincount(seg_of_q, weights=nd, minlength=num_seg).astype(np.int64) + nt
    seg_base = np.concatenate([[0], np.cumsum(seg_total)])
    nd_cum = np.concatenate([[0], np.cumsum(nd)])
    d_lo = seg_base[seg_of_q] + nd_cum[:-1] - nd_cum[goff[seg_of_q]]
    d_hi = d_lo + nd
    t_lo = seg_base[:-1] + (nd_cum[goff[1:]] - nd_cum[goff[:-1]])
    t_hi = t_lo + nt
    total_d = _bucket(int(seg_base[-1]))
    nq_alloc = _bucket(nq)
    pad_q = nq_alloc - nq
    sched = Schedule(*(jnp.asarray(a, dtype=jnp.int32) for a in (
        goff[:-1], goff[1:], np.pad(d_lo, (0, pad_q)), np.pad(d_hi, (0, pad_q)), t_lo, t_hi)))
    steps = []
    kout = traces[0].out_slots.shape[1]
    for tr, (math, seg, c, g, _, tail) in zip(traces, runs, strict=True):
        st = {
            "c_node": np.zeros(nq_alloc, np.int32), "c_index": np.zeros(nq_alloc, np.int32),
            "c_out_slots": -np.ones((nq_alloc, kout), np.int32),
            "c_active": np.zeros(nq_alloc, bool),
            "d_channel": np.zeros(total_d, np.int32), "d_slot": np.zeros(total_d, np.int32),
            "d_seq": np.zeros(total_d, np.int32), "d_active": np.zeros(total_d, bool),
        }
        ce = math[c]
        q = goff[seg[c]] + g[c]
        st["c_node"][q] = np.maximum(tr.node[ce], 0)
        st["c_index"][q] = ce
        st["c_out_slots"][q] = tr.out_slots[ce]
        st["c_active"][q] = True
        d = ~c
        de = math[d]
        # rank of each delivery within its group: equal keys are contiguous in trace order
        key = np.where(tail[d], nq + seg[d], goff[seg[d]] + g[d])
        is_start = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else key.astype(bool)
        rank = np.arange(len(key)) - np.flatnonzero(is_start)[np.cumsum(is_start) - 1]
        start = np.where(tail[d], t_lo[seg[d]], d_lo[np.minimum(key, max(nq - 1, 0))]
                         if nq else 0)
        pos = start + rank
        st["d_channel"][pos] = tr.channel[de]
        st["d_slot"][pos] = tr.slot[de]
        st["d_seq"][pos] = tr.seq[de]
        st["d_active"][pos] = True
        steps.append(Steps(**{k: jnp.asarray(v) for k, v in st.items()}))
    return sched, steps


def _replay_fn(ops: ProblemOps, alg: Algorithm, sched: Schedule, env: Env, key: Array,
               steps: Steps, store0: Array) -> tuple[NetState, Array]:
    init_key, ev_key = jax.random.split(key)
    state = alg.init(env, init_key)
    last0 = -jnp.ones(max(env.net.src.shape[0], 1), jnp.int32)

    def deliver(e: Array, carry: tuple) -> tuple:
        if alg.synchronous:  # synchronous traces hold no deliveries
            return carry
        st, store, last = carry
        c, seq, active = steps.d_channel[e], steps.d_seq[e], steps.d_active[e]
        fresh = seq > last[c]
        st = apply_receive(alg, env, st, c, store[steps.d_slot[e]], fresh, active)
        return st, store, last.at[c].set(jnp.where(active, jnp.maximum(last[c], seq), last[c]))

    def compute(q: Array, carry: tuple) -> tuple:
        st, store, last, pend = carry
        k = jax.random.fold_in(ev_key, steps.c_index[q])
        active = steps.c_active[q]
        if alg.synchronous:
            return apply_round(alg, env, st, k, active), store, last, pend
        pend = compute_rows(alg, env, st, steps.c_node[q], k, active)
        slots = steps.c_out_slots[q]
        where = jnp.where(active & (slots >= 0), slots, store.shape[0])
        return st, store.at[where].set(pend.payloads.astype(store.dtype), mode="drop"), last, pend

    def flush(carry: tuple) -> tuple:
        st, store, last, pend = carry
        if alg.synchronous:
            return carry
        return write_rows(env, st, pend), store, last, pend._replace(active=jnp.bool_(False))

    def deliveries(lo: Array, hi: Array, carry: tuple) -> tuple:
        out = jax.lax.fori_loop(lo, hi, deliver, carry[:3])
        return (*out, carry[3])

    def group(q: Array, carry: tuple) -> tuple:
        # A computation's writes land at the start of the next group, not in its own step:
        # reading node and channel rows and writing them back in one loop step makes XLA
        # copy the whole state arrays every step (it cannot order the cross reads in place).
        carry = deliveries(d_lo[q], d_hi[q], flush(carry))
        return compute(q, carry)

    d_lo, d_hi = sched.d_lo, sched.d_hi

    def segment(carry: tuple, bounds: Array) -> tuple:
        carry = jax.lax.fori_loop(bounds[0], bounds[1], group, carry)
        carry = deliveries(bounds[2], bounds[3], flush(carry))
        return carry, _measure(ops, alg, env, carry[0])

    pend0 = None if alg.synchronous else compute_rows(alg, env, state, jnp.int32(0), ev_key,
                                                      jnp.bool_(False))
    bounds = jnp.stack([sched.q_lo, sched.q_hi, sched.t_lo, sched.t_hi], axis=1)
    out: tuple[tuple, Array] = jax.lax.scan(segment, (state, store0, last0, pend0), bounds)
    return out[0][0], out[1]


# ---------------------------------------------------------------------------------------------
# compiled entry points (one set per algorithm and problem shape; reused across seeds, steps)


@dataclass(frozen=True)
class Compiled:
    alg: Algorithm
    init: Callable
    compute: Callable
    receive: Callable
    round: Callable
    measure: Callable
    replay: Callable
    replay_batch: Callable
    replay_steps: Callable


@functools.lru_cache(maxsize=64)
def compiled(name: str, ops: ProblemOps) -> Compiled:
    """Compile once per (algorithm, problem shape); numeric hyperparameters are traced."""
    alg = make(name, ops)

    def compute(env: Env, st: NetState, i: Array, ev_key: Array, index: Array) -> tuple:
        return apply_compute(alg, env, st, i, jax.random.fold_in(ev_key, index), jnp.bool_(True))

    def receive(env: Env, st: NetState, c: Array, payloads: Array, k: Array,
                fresh: Array) -> NetState:
        return apply_receive(alg, env, st, c, payloads[k], fresh, jnp.bool_(True))

    def round_(env: Env, st: NetState, ev_key: Array, index: Array) -> NetState:
        return apply_round(alg, env, st, jax.random.fold_in(ev_key, index), jnp.bool_(True))

    replay = functools.partial(_replay_fn, ops, alg)
    # Online calls donate the state: the update then writes in place instead of copying the
    # whole network state per event.
    return Compiled(alg, jax.jit(alg.init), jax.jit(compute, donate_argnums=1),
                    jax.jit(receive, donate_argnums=1), jax.jit(round_, donate_argnums=1),
                    jax.jit(functools.partial(_measure, ops, alg)), jax.jit(replay),
                    jax.jit(jax.vmap(replay, in_axes=(None, 0, 0, 0, None))),
                    # step sizes of one trace: the event indices stay unbatched, so row
                    # reads and writes stay plain slices instead of batched gathers/scatters
                    jax.jit(jax.vmap(replay, in_axes=(None, Env(None, None, 0),  # type: ignore[arg-type]
                                                      None, None, None))))


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class Run:
    """One finished run: its trace, sampled metrics and final state."""

    name: str
    seed: int
    step_size: float
    trace: engine.EventTrace
    metrics: np.ndarray  # [K, len(METRIC_COLUMNS)]
    final_state: Any
    wall_seconds: float
    message_bytes: float
    extra: dict[str, Any] = field(default_factory=dict)


def run_online(setup: Setup, step_size: float,
               after_event: Callable[[engine.Event, NetState], None] | None = None) -> Run:
    """The literal model: each event calls the jitted update as SimPy fires it
    (`after_event(event, state)` sees the state after each compute or delivery)."""
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
        if after_event is not None and ev.kind in (engine.COMPUTE, engine.DELIVER):
            after_event(ev, holder["st"])

    t0 = _time.perf_counter()
    trace = record_trace(setup, on_event)
    metrics = np.asarray(jnp.stack(samples))
    return Run(setup.name, setup.seed, step_size, trace, metrics, holder["st"],
               _time.perf_counter() - t0, setup.timing.message_bytes)


def invariant_history(sc: Scenario, step_size: float, seed: int | None = None) -> pd.DataFrame:
    """R-FAST event by event (online): time and the invariant's residual after every event,
    ``|sum_i z_i + sum_c (rho_c - rho_tilde_c) - sum_i g_i|`` (max over coordinates)."""
    from rfast_sim.algorithms.rfast import tracker_mass

    setup = prepare(sc, "rfast", sc.seed if seed is None else seed)
    role = jnp.asarray(setup.channels.role)
    residual = jax.jit(lambda st: jnp.abs(tracker_mass(st, role) - st.nodes.g.sum(0)).max())
    rows: list[tuple[float, str, Array]] = []

    def after(ev: engine.Event, st: NetState) -> None:
        rows.append((ev.time, engine.KIND_NAMES[ev.kind], residual(st)))

    run_online(setup, step_size, after_event=after)
    return pd.DataFrame({"time": [r[0] for r in rows], "kind": [r[1] for r in rows],
                         "residual": np.asarray(jnp.stack([r[2] for r in rows]))})


def run_replay(setups: list[Setup], step_sizes: list[float],
               traces: list[engine.EventTrace] | None = None,
               vmap_seeds: bool | None = None) -> list[Run]:
    """Replay every (setup, step size) pair of one algorithm with one compiled function.

    All setups must share the algorithm and problem shape (they differ in seed and data).
    Step sizes of one setup always run as one vmapped call. Several setups (seeds) run as one
    vmapped call when `vmap_seeds`; by default only off the CPU: their traces differ, so the
    batched row reads and writes become gathers and scatters, which on a CPU cost more than
    running the seeds one after another (benchmarks/bench_engine.py measures both).
    """
    if vmap_seeds is None:
        vmap_seeds = jax.default_backend() != "cpu"
    if len(setups) > 1 and not vmap_seeds:
        traces = traces or [None] * len(setups)  # type: ignore[list-item]
        return [r for s, t in zip(setups, traces, strict=True)
                for r in run_replay([s], step_sizes, None if t is None else [t])]
    first = setups[0]
    comp = compiled(first.name, first.ops)
    t0 = _time.perf_counter()
    traces = traces or [record_trace(s) for s in setups]
    t_trace = _time.perf_counter() - t0
    pairs = [(k, h) for k in range(len(setups)) for h in step_sizes]
    sched, steps = build_layout(traces, comp.alg)
    slots = _bucket(max(tr.num_slots for tr in traces))
    store0 = np.zeros((slots, comp.alg.payload_width), dtype=first.scenario.dtype)

    def inputs(k: int, h: float) -> tuple:
        return setups[k].env(h), jax.random.PRNGKey(setups[k].seed), steps[k]

    t1 = _time.perf_counter()
    if len(pairs) == 1:
        final, metrics = comp.replay(sched, *inputs(*pairs[0]), store0)
        finals, mets = [final], [np.asarray(metrics)]
    else:
        if len(setups) == 1:
            env, key, st = inputs(0, step_sizes[0])
            env = env._replace(step_size=jnp.asarray(step_sizes, dtype=env.step_size.dtype))
            final_b, metrics_b = comp.replay_steps(sched, env, key, st, store0)
        else:
            batch = [inputs(k, h) for k, h in pairs]
            stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batch)
            final_b, metrics_b = comp.replay_batch(sched, *stacked, store0)
        mets = list(np.asarray(metrics_b))
        finals = [jax.tree_util.tree_map(lambda a, j=j: a[j], final_b) for j in range(len(pairs))]
    jax.block_until_ready(finals)
    wall = (_time.perf_counter() - t1) / len(pairs) + t_trace / len(setups)
    return [
        Run(setups[k].name, setups[k].seed, h, traces[k], m[: len(traces[k].sample_time)], fin,
            wall, setups[k].timing.message_bytes)
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
        return default_target(self.scenario)

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


def default_target(sc: Scenario) -> dict[str, float]:
    """The scenario's compare.target, or opt_gap 1e-3 (accuracy 0.9 where no optimum is known)."""
    if sc.compare is not None:
        return {str(k): float(v) for k, v in sc.compare.target.items()}
    return {"opt_gap": 1e-3} if sc.problem.kind != "mlp" else {"accuracy": 0.9}


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
