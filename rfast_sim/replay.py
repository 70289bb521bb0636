"""Replay: the recorded trace in one jitted ``lax.scan``; ``vmap`` over seeds or step sizes.

The engine records the trace first; one scan over metric segments (a ``fori_loop`` over the
events of each, laid out by :mod:`rfast_sim.layout`) runs every update in trace order, with
packets in flight held in a slot store. It calls the same pure algorithm functions with the
same per-event keys as the online runner, so both agree to floating-point rounding.
"""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim import engine
from rfast_sim.algorithms import Algorithm, Env, NetState, make
from rfast_sim.layout import Schedule, Steps, bucket, build_layout
from rfast_sim.problems import ProblemOps
from rfast_sim.results import Run
from rfast_sim.setup import Setup, record_trace
from rfast_sim.updates import (
    Pending,
    apply_receive,
    apply_round,
    compiler_options,
    compute_rows,
    full_rows,
    measure,
    reset_rows,
    write_rows,
)

Array = jax.Array


def _node_step(alg: Algorithm, env: Env, state0: NetState | None, st: NetState, i: Array,
               k: Array, active: Array, reset: Array, phase: Array, dtype: Any) -> Pending:
    """Node i's computation, or (where `reset`) its restart from `state0`; without resets in
    the trace (`state0` None) only the computation, with writes of only what it changes."""
    if state0 is None:
        return compute_rows(alg, env, st, i, k, active, phase)
    return jax.lax.cond(
        reset,
        lambda: reset_rows(alg, env, st, state0, i, active, dtype),
        lambda: full_rows(env, st, compute_rows(alg, env, st, i, k, active, phase)))


def replay_fn(ops: ProblemOps, alg: Algorithm, resets: bool, sched: Schedule, env: Env,
              key: Array, steps: Steps, store0: Array) -> tuple[NetState, Array]:
    """Every event of one laid-out trace, from the initial state: (final state, metrics).
    `resets`: the trace holds node resets (a compute slot flagged ``c_reset``)."""
    init_key, ev_key = jax.random.split(key)
    state = alg.init(env, init_key)

    def deliver(e: Array, carry: tuple) -> tuple:
        if alg.per_round:  # per-round traces hold no deliveries
            return carry
        st, store = carry
        # freshness (newer than every packet applied before on the channel) comes from the
        # layout: kept here as a per-channel array, its read-and-write made XLA copy the whole
        # array at every delivery
        st = apply_receive(alg, env, st, steps.d_channel[e], store[steps.d_slot[e]],
                           steps.d_fresh[e], steps.d_active[e])
        return st, store

    def compute(q: Array, carry: tuple) -> tuple:
        st, store, pend = carry
        k = jax.random.fold_in(ev_key, steps.c_index[q])
        active = steps.c_active[q]
        if alg.per_round:
            return apply_round(alg, env, st, k, active), store, pend
        pend = _node_step(alg, env, state if resets else None, st, steps.c_node[q], k, active,
                          steps.c_reset[q], steps.c_phase[q], store.dtype)
        slots = steps.c_out_slots[q]
        where = jnp.where(active & (slots >= 0), slots, store.shape[0])
        store = store.at[where].set(pend.writes.payloads.astype(store.dtype), mode="drop")
        return st, store, pend

    def flush(carry: tuple) -> tuple:
        st, store, pend = carry
        if alg.per_round:
            return carry
        return write_rows(env, st, pend), store, pend._replace(active=jnp.bool_(False))

    def deliveries(lo: Array, hi: Array, carry: tuple) -> tuple:
        out = jax.lax.fori_loop(lo, hi, deliver, carry[:2])
        return (*out, carry[2])

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
        return carry, measure(ops, alg, env, carry[0])

    pend0 = None if alg.per_round else _node_step(
        alg, env, state if resets else None, state, jnp.int32(0), ev_key, jnp.bool_(False),
        jnp.bool_(False), jnp.int32(0), store0.dtype)
    bounds = jnp.stack([sched.q_lo, sched.q_hi, sched.t_lo, sched.t_hi], axis=1)
    out: tuple[tuple, Array] = jax.lax.scan(segment, (state, store0, pend0), bounds)
    return out[0][0], out[1]


@dataclass(frozen=True)
class CompiledReplay:
    alg: Algorithm
    one: Callable  # (sched, env, key, steps, store0) -> (final state, metrics)
    seeds: Callable  # the same, vmapped over env, key and steps (several traces)
    steps: Callable  # the same, vmapped over the step size only (one trace)


@functools.lru_cache(maxsize=64)
def compiled_replay(name: str, ops: ProblemOps, resets: bool = False) -> CompiledReplay:
    """Compile once per (algorithm, problem shape, resets or not); numeric hyperparameters are
    traced."""
    alg = make(name, ops)
    replay = functools.partial(replay_fn, ops, alg, resets)
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
    running the seeds one after another (benchmarks/bench_engine.py measures both).
    """
    if vmap_seeds is None:
        vmap_seeds = jax.default_backend() != "cpu"
    if len(setups) > 1 and not vmap_seeds:
        return [r for k, s in enumerate(setups)
                for r in run_replay([s], step_sizes, None if traces is None else [traces[k]])]
    first = setups[0]
    trace_s = [0.0] * len(setups)
    if traces is None:
        traces = []
        for k, s in enumerate(setups):
            t0 = _time.perf_counter()
            traces.append(record_trace(s))
            trace_s[k] = _time.perf_counter() - t0
    resets = any(bool(tr.is_kind("reset").any()) for tr in traces)
    comp = compiled_replay(first.name, first.ops, resets and not first.algorithm.per_round)
    pairs = [(k, h) for k in range(len(setups)) for h in step_sizes]
    sched, steps = build_layout(traces, comp.alg)
    slots = bucket(max(tr.num_slots for tr in traces))
    store0 = np.zeros((slots, comp.alg.payload_width), dtype=first.scenario.dtype)

    def inputs(k: int, h: float) -> tuple:
        return setups[k].env(h), jax.random.PRNGKey(setups[k].seed), steps[k]

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
            timings={"trace_s": trace_s[k] / per_setup, "replay_s": replay_s})
        for (k, h), m, fin in zip(pairs, mets, finals, strict=True)
    ]
