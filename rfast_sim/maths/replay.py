"""Replay: the recorded trace in one jitted ``lax.scan``; ``vmap`` over seeds or step sizes.

The engine records the trace first; one scan over metric segments (a ``fori_loop`` over the
events of each, laid out by :mod:`rfast_sim.maths.layout`) runs every update in trace order, with
packets in flight held in a slot store. It calls the same pure algorithm functions with the
same per-event keys as the online runner, so both agree to floating-point rounding.
"""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.maths.algorithms import Algorithm, Env, NetState, make
from rfast_sim.maths.layout import (
    Schedule,
    Steps,
    WaveSchedule,
    WaveSteps,
    bucket,
    build_layout,
    layout_size,
    pad_layout,
)
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.maths.record import Run
from rfast_sim.maths.replay_plan import plan_replay
from rfast_sim.maths.setup import Setup
from rfast_sim.maths.shapes import store_floor
from rfast_sim.maths.updates import (
    Pending,
    PendingReceive,
    apply_receive,
    apply_round,
    compute_rows,
    event_key,
    full_rows,
    measure,
    receive_rows,
    reset_rows,
    run_keys,
    write_batch,
    write_receives,
    write_rows,
)
from rfast_sim.maths.xla import compiler_options
from rfast_sim.timing import engine
from rfast_sim.timing.traces import record_trace

Array = jax.Array
STORE_COARSE_BYTES = 1 << 26  # a packet store up to 64 MB rounds its slots to a power of two


class Carry(NamedTuple):
    """What the replay carries from event to event."""

    state: NetState
    store: Array  # [slots, payload width]: the packets in flight, by slot
    # the last computation's writes, not yet applied: they land at the next `flush` (reading
    # rows and writing them back in one loop step makes XLA copy the whole state arrays);
    # None for per-round algorithms (all-reduce), which write at once
    pending: Pending | None


class WaveCarry(NamedTuple):
    """What the wave replay carries from step to step: the last wave's writes wait, as the
    sequential replay's last computation's do."""

    state: NetState
    store: Array
    comp: Pending  # [Wc] computations (and resets)
    slots: Array  # [Wc, Kout] where their packets go
    recv: PendingReceive  # [Wd] deliveries


@dataclass(frozen=True)
class EventFns:
    """How each kind of math event changes the carry, in one run. Pure functions of explicit
    event fields, with the same per-event keys as the online runner: the sequential driver
    below applies them one event at a time; another driver may apply independent events
    together (vmap) with the same functions."""

    alg: Algorithm
    env: Env
    ev_key: Array
    state0: NetState | None  # what a reset node restarts from (None: the trace has no resets)

    def start(self, state: NetState, store: Array) -> Carry:
        """The carry before the first event (an inactive pending computation)."""
        if self.alg.per_round:
            return Carry(state, store, None)
        off = jnp.bool_(False)
        return Carry(state, store, self.node_step(state, jnp.int32(0), self.ev_key, off, off,
                                                   jnp.int32(0), store.dtype))

    def deliver(self, carry: Carry, channel: Array, slot: Array, fresh: Array,
                active: Array) -> Carry:
        """The packet in `slot` arrives on `channel` (no effect unless `active`). Freshness
        (newer than every packet applied before on the channel) comes from the layout: kept
        here as a per-channel array, its read-and-write made XLA copy it at every delivery."""
        state = apply_receive(self.alg, self.env, carry.state, channel, carry.store[slot], fresh,
                              active)
        return carry._replace(state=state)

    def compute(self, carry: Carry, node: Array, index: Array, out_slots: Array, active: Array,
                reset: Array, phase: Array) -> Carry:
        """Node `node`'s computation (trace event `index`; or, where `reset`, its restart):
        its packets go into the store at `out_slots`, its state writes wait for `flush`."""
        key = event_key(self.ev_key, index)
        if self.alg.per_round:
            return carry._replace(state=apply_round(self.alg, self.env, carry.state, key, active))
        pend = self.node_step(carry.state, node, key, active, reset, phase, carry.store.dtype)
        size = carry.store.shape[0]
        where = jnp.where(active & (out_slots >= 0), out_slots, size)  # out of bounds: not sent
        store = carry.store.at[where].set(pend.writes.payloads.astype(carry.store.dtype),
                                          mode="drop")
        return Carry(carry.state, store, pend)

    def flush(self, carry: Carry) -> Carry:
        """Apply the pending computation's writes."""
        if carry.pending is None:
            return carry
        return Carry(write_rows(self.env, carry.state, carry.pending), carry.store,
                     carry.pending._replace(active=jnp.bool_(False)))

    def start_wave(self, state: NetState, store: Array, steps: WaveSteps) -> WaveCarry:
        """The wave carry before the first step (inactive pending writes of wave shapes)."""
        carry = self.compute_wave(state, store, steps, jnp.int32(0))
        return carry._replace(comp=carry.comp._replace(active=jnp.zeros_like(carry.comp.active)),
                              recv=carry.recv._replace(active=jnp.zeros_like(carry.recv.active)))

    def compute_wave(self, state: NetState, store: Array, steps: WaveSteps,
                     s: Array) -> WaveCarry:
        """Step s of the wave replay, from `state` and `store` as they are (every earlier
        step's writes applied): its computations, one vmap of `node_step`, and its deliveries,
        one batched receive; their writes wait for `flush_wave`."""
        keys = jax.vmap(event_key, in_axes=(None, 0))(self.ev_key, steps.c_index[s])
        comp = jax.vmap(self.node_step, in_axes=(None, 0, 0, 0, 0, 0, None))(
            state, steps.c_node[s], keys, steps.c_active[s], steps.c_reset[s],
            steps.c_phase[s], store.dtype)
        recv = jax.vmap(functools.partial(receive_rows, self.alg, self.env, state))(
            steps.d_channel[s], store[steps.d_slot[s]], steps.d_fresh[s], steps.d_active[s])
        return WaveCarry(state, store, comp, steps.c_out_slots[s], recv)

    def flush_wave(self, carry: WaveCarry) -> WaveCarry:
        """Apply the pending wave's writes (state rows and the packets it sent)."""
        comp, recv = carry.comp, carry.recv
        state = write_batch(self.env, carry.state, comp)
        state = write_receives(self.env, state, recv)
        size = carry.store.shape[0]
        where = jnp.where(comp.active[:, None] & (carry.slots >= 0), carry.slots, size)
        payloads = comp.writes.payloads.astype(carry.store.dtype)
        store = carry.store.at[where.reshape(-1)].set(
            payloads.reshape(-1, payloads.shape[-1]), mode="drop")
        return WaveCarry(state, store, comp._replace(active=jnp.zeros_like(comp.active)),
                         carry.slots, recv._replace(active=jnp.zeros_like(recv.active)))

    def node_step(self, st: NetState, i: Array, key: Array, active: Array, reset: Array,
                   phase: Array, dtype: Any) -> Pending:
        """Node i's computation, or (where `reset`) its restart from `state0` (one structure:
        whole rows, each writing only its own fields); without resets in the trace only the
        computation, with writes of only what it changes."""
        alg, env = self.alg, self.env
        if self.state0 is None:
            return compute_rows(alg, env, st, i, key, active, phase)
        state0 = self.state0
        return jax.lax.cond(
            reset,
            lambda: reset_rows(alg, env, st, state0, i, active, dtype),
            lambda: full_rows(env, st, compute_rows(alg, env, st, i, key, active, phase)))


def _sequential(fns: EventFns, ops: ProblemOps, sched: Schedule, steps: Steps,
                carry: Carry) -> tuple[Carry, Array]:
    """One event per loop step, in trace order: per metric segment its groups (deliveries,
    then a computation), its tail of deliveries, then the metrics."""

    def deliveries(lo: Array, hi: Array, carry: Carry) -> Carry:
        def one(e: Array, c: tuple[NetState, Array]) -> tuple[NetState, Array]:
            out = fns.deliver(Carry(c[0], c[1], None), steps.d_channel[e], steps.d_slot[e],
                              steps.d_fresh[e], steps.d_active[e])
            return out.state, out.store

        if fns.alg.per_round:  # per-round traces hold no deliveries
            return carry
        # the loop carries only state and store: the pending writes do not change in it
        state, store = jax.lax.fori_loop(lo, hi, one, (carry.state, carry.store))
        return carry._replace(state=state, store=store)

    def group(q: Array, carry: Carry) -> Carry:
        carry = deliveries(sched.d_lo[q], sched.d_hi[q], fns.flush(carry))
        return fns.compute(carry, steps.c_node[q], steps.c_index[q], steps.c_out_slots[q],
                           steps.c_active[q], steps.c_reset[q], steps.c_phase[q])

    def segment(carry: Carry, bounds: Array) -> tuple[Carry, Array]:
        carry = jax.lax.fori_loop(bounds[0], bounds[1], group, carry)
        carry = deliveries(bounds[2], bounds[3], fns.flush(carry))
        return carry, measure(ops, fns.alg, fns.env, carry.state)

    bounds = jnp.stack([sched.q_lo, sched.q_hi, sched.t_lo, sched.t_hi], axis=1)
    return jax.lax.scan(segment, carry, bounds)


def _waves(fns: EventFns, ops: ProblemOps, sched: WaveSchedule, steps: WaveSteps,
           carry: WaveCarry) -> tuple[WaveCarry, Array]:
    """One wave per loop step: the independent events of one level (or of a part of it) as
    one batched computation and one batched delivery; per metric segment its steps, then the
    metrics."""

    def wave(s: Array, carry: WaveCarry) -> WaveCarry:
        carry = fns.flush_wave(carry)
        return fns.compute_wave(carry.state, carry.store, steps, s)

    def segment(carry: WaveCarry, bounds: Array) -> tuple[WaveCarry, Array]:
        carry = fns.flush_wave(jax.lax.fori_loop(bounds[0], bounds[1], wave, carry))
        return carry, measure(ops, fns.alg, fns.env, carry.state)

    return jax.lax.scan(segment, carry, jnp.stack([sched.s_lo, sched.s_hi], axis=1))


def wave_replay_fn(ops: ProblemOps, alg: Algorithm, resets: bool, sched: WaveSchedule,
                   env: Env, keys: tuple[Array, Array], steps: WaveSteps,
                   store0: Array) -> tuple[NetState, Array]:
    """`replay_fn` by waves (`rfast_sim.maths.layout.wave_layout`): the same result."""
    init_key, ev_key = keys
    state = alg.init(env, init_key)
    fns = EventFns(alg, env, ev_key, state if resets else None)
    final, metrics = _waves(fns, ops, sched, steps, fns.start_wave(state, store0, steps))
    return final.state, metrics


def replay_fn(ops: ProblemOps, alg: Algorithm, resets: bool, sched: Schedule, env: Env,
              keys: tuple[Array, Array], steps: Steps, store0: Array) -> tuple[NetState, Array]:
    """Every event of one laid-out trace, from the initial state: (final state, metrics).
    `keys`: the run's (init key, event key) (`run_keys`); `resets`: the trace holds node
    resets (a compute slot flagged ``c_reset``)."""
    init_key, ev_key = keys
    state = alg.init(env, init_key)
    fns = EventFns(alg, env, ev_key, state if resets else None)
    final, metrics = _sequential(fns, ops, sched, steps, fns.start(state, store0))
    return final.state, metrics


@dataclass(frozen=True)
class CompiledReplay:
    alg: Algorithm
    one: Callable  # (sched, env, keys, steps, store0) -> (final state, metrics)
    seeds: Callable  # the same, vmapped over env, keys and steps (several traces)
    steps: Callable  # the same, vmapped over the step size only (one trace)


@functools.lru_cache(maxsize=64)
def compiled_replay(name: str, ops: ProblemOps, resets: bool = False,
                    waves: bool = False) -> CompiledReplay:
    """Compile once per (algorithm, problem shape, resets or not, driver); numeric
    hyperparameters are traced."""
    alg = make(name, ops)
    replay = functools.partial(wave_replay_fn if waves else replay_fn, ops, alg, resets)
    # step sizes of one trace: the event indices stay unbatched, so row reads and writes stay
    # plain slices instead of batched gathers/scatters
    step_axes = Env(None, None, 0)  # type: ignore[arg-type]
    jit = functools.partial(jax.jit, compiler_options=compiler_options())
    return CompiledReplay(alg, jit(replay), jit(jax.vmap(replay, in_axes=(None, 0, 0, 0, None))),
                          jit(jax.vmap(replay, in_axes=(None, step_axes, None, None, None))))


def run_replay(setups: list[Setup], step_sizes: list[float],
               traces: list[engine.EventTrace] | None = None,
               vmap_seeds: bool | None = None) -> list[Run]:
    """Replay every (setup, step size) pair of one algorithm with one compiled function.

    All setups must share the algorithm and problem shape (they differ in seed and data).
    Step sizes of one setup always run as one vmapped call. Several setups (seeds) run as one
    vmapped call when `vmap_seeds`; by default only off the CPU: their traces differ, so the
    batched row reads and writes become gathers and scatters, which on a CPU cost more than
    running the seeds one after another (benchmarks/bench_engine.py measures both). Run one
    after another, the seeds' layouts are padded to the largest, so they share one compiled
    shape (padding no loop reaches costs memory, not time; a compilation costs seconds).
    """
    if vmap_seeds is None:
        vmap_seeds = jax.default_backend() != "cpu"
    trace_s = [0.0] * len(setups)
    if traces is None:
        traces = []
        for k, s in enumerate(setups):
            t0 = _time.perf_counter()
            traces.append(record_trace(s))
            trace_s[k] = _time.perf_counter() - t0
    first = setups[0]
    per_round = first.algorithm.per_round
    # the packet store is [slots, payload]: a power of two of slots only while it stays small
    row = first.algorithm.payload_width * np.dtype(first.plan.dtype).itemsize
    slots = bucket(max(tr.num_slots for tr in traces), max(64, STORE_COARSE_BYTES // row),
                   store_floor(row))
    t0 = _time.perf_counter()
    if len(setups) == 1 or vmap_seeds:
        sched, steps = build_layout(traces, per_round)
        return _replay(setups, step_sizes, traces, trace_s, sched, steps, slots,
                       _time.perf_counter() - t0)
    layouts = [build_layout([tr], per_round) for tr in traces]
    sizes = [layout_size(sched, st) for sched, (st,) in layouts]
    size = (max(q for q, _ in sizes), max(d for _, d in sizes))
    layout_s = (_time.perf_counter() - t0) / len(setups)
    runs = []
    for k, (sched, (st,)) in enumerate(layouts):
        sched, st = pad_layout(sched, st, size)
        runs += _replay([setups[k]], step_sizes, [traces[k]], [trace_s[k]], sched, [st], slots,
                        layout_s)
    return runs


def _replay(setups: list[Setup], step_sizes: list[float], traces: list[engine.EventTrace],
            trace_s: list[float], sched: Schedule, steps: list[Steps], slots: int,
            layout_s: float) -> list[Run]:
    """The replay of laid-out traces: the driver's plan, one compiled call, the runs."""
    first = setups[0]
    resets = any(bool(tr.is_kind("reset").any()) for tr in traces)
    resets = resets and not first.algorithm.per_round
    t_layout = _time.perf_counter()
    plan = plan_replay(first, sched, steps, slots)
    comp = compiled_replay(first.name, first.ops, resets, plan.stats is not None)
    if plan.stats is not None:
        sched, steps, slots = plan.sched, plan.steps, plan.stats.slots
    layout_s += _time.perf_counter() - t_layout
    pairs = [(k, h) for k in range(len(setups)) for h in step_sizes]
    store0 = np.zeros((slots, comp.alg.payload_width), dtype=first.plan.dtype)

    def inputs(k: int, h: float) -> tuple:
        return setups[k].env(h), run_keys(setups[k].seed), steps[k]

    t1 = _time.perf_counter()
    if len(pairs) == 1:
        final, metrics = comp.one(sched, *inputs(*pairs[0]), store0)
        finals, mets = [final], [np.asarray(metrics)]
    else:
        if len(setups) == 1:
            env, key, st = inputs(0, step_sizes[0])
            env = env._replace(step_size=jnp.asarray(step_sizes, dtype=env.step_size.dtype))
            final_b, metrics_b = comp.steps(sched, env, key, st, store0)
        else:
            batch = [inputs(k, h) for k, h in pairs]
            stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batch)
            final_b, metrics_b = comp.seeds(sched, *stacked, store0)
        mets = list(np.asarray(metrics_b))
        finals = [jax.tree_util.tree_map(lambda a, j=j: a[j], final_b) for j in range(len(pairs))]
    jax.block_until_ready(finals)
    replay_s = (_time.perf_counter() - t1) / len(pairs)
    per_setup = len(pairs) // len(setups)  # a setup's trace serves all its step sizes
    return [
        Run(setups[k].name, setups[k].seed, h, traces[k], m[: len(traces[k].sample_time)], fin,
            replay_s + trace_s[k] / per_setup, setups[k].message_bytes,
            timings={"trace_s": trace_s[k] / per_setup, "replay_s": replay_s,
                     "layout_s": layout_s / len(pairs)},
            extra={"replay": plan.summary()})
        for (k, h), m, fin in zip(pairs, mets, finals, strict=True)
    ]
