"""Online coupling: SimPy fires an event and the jitted update for it runs at once.

The literal model and the reference the replay is held to: packets in flight are held here, as
the network would hold them, and every event costs one jitted dispatch.
"""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from rfast_sim.maths.algorithms import Algorithm, Env, NetState, make
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.maths.record import Run
from rfast_sim.maths.setup import Setup
from rfast_sim.maths.updates import (
    apply_compute,
    apply_receive,
    apply_round,
    event_key,
    measure,
    reset_rows,
    run_keys,
    write_rows,
)
from rfast_sim.maths.xla import compiler_options
from rfast_sim.timing import engine
from rfast_sim.timing.traces import record_trace

Array = jax.Array


@dataclass(frozen=True)
class CompiledOnline:
    alg: Algorithm
    init: Callable  # (env, key) -> state
    compute: Callable  # (env, state, i, ev_key, index, phase) -> (state, payloads)
    receive: Callable  # (env, state, c, payloads, k, fresh) -> state
    round: Callable  # (env, state, ev_key, index) -> state
    reset: Callable  # (env, state, state0, i) -> state
    measure: Callable  # (env, state) -> metrics


@functools.lru_cache(maxsize=64)
def compiled_online(name: str, ops: ProblemOps) -> CompiledOnline:
    """Compile once per (algorithm, problem shape); numeric hyperparameters are traced."""
    alg = make(name, ops)

    def compute(env: Env, st: NetState, i: Array, ev_key: Array, index: Array,
                phase: Array) -> tuple:
        return apply_compute(alg, env, st, i, event_key(ev_key, index), jnp.bool_(True), phase)

    def receive(env: Env, st: NetState, c: Array, payloads: Array, k: Array,
                fresh: Array) -> NetState:
        return apply_receive(alg, env, st, c, payloads[k], fresh, jnp.bool_(True))

    def round_(env: Env, st: NetState, ev_key: Array, index: Array) -> NetState:
        return apply_round(alg, env, st, event_key(ev_key, index), jnp.bool_(True))

    def reset(env: Env, st: NetState, st0: NetState, i: Array) -> NetState:
        return write_rows(env, st, reset_rows(alg, env, st, st0, i, jnp.bool_(True),
                                              env.data.x0.dtype))

    # Online calls donate the state: the update then writes in place instead of copying the
    # whole network state per event.
    jit = functools.partial(jax.jit, compiler_options=compiler_options())
    return CompiledOnline(alg, jit(alg.init), jit(compute, donate_argnums=1),
                          jit(receive, donate_argnums=1), jit(round_, donate_argnums=1),
                          jit(reset, donate_argnums=1), jit(functools.partial(measure, ops, alg)))


@dataclass
class _Online:
    """The state of one online run and what each event kind does to it."""

    comp: CompiledOnline
    env: Env
    ev_key: Array
    st: NetState
    state0: NetState  # what a reset node restarts from
    sync: bool
    after_event: Callable[[engine.Event, NetState], None] | None
    in_flight: dict[int, tuple[Array, int]] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    samples: list[Array] = field(default_factory=list)

    def on_event(self, ev: engine.Event) -> None:
        if ev.kind == engine.SAMPLE:
            self.samples.append(self.comp.measure(self.env, self.st))
        elif self.sync:  # rounds only (a reset of one member clears nothing of a global model)
            if ev.kind == engine.ROUND:
                self.st = self.comp.round(self.env, self.st, self.ev_key, np.int32(ev.index))
        elif ev.kind == engine.COMPUTE:
            self.compute(ev)
        elif ev.kind == engine.RESET:
            self.st = self.comp.reset(self.env, self.st, self.state0, np.int32(ev.node))
        elif ev.kind == engine.DELIVER:
            self.deliver(ev)
        if self.after_event is not None and ev.kind in (engine.COMPUTE, engine.DELIVER,
                                                        engine.RESET):
            self.after_event(ev, self.st)

    def compute(self, ev: engine.Event) -> None:
        self.st, payloads = self.comp.compute(self.env, self.st, np.int32(ev.node), self.ev_key,
                                              np.int32(ev.index), np.int32(ev.phase))
        for k, slot in enumerate(ev.out_slots):
            if slot >= 0:
                self.in_flight[slot] = (payloads, k)

    def deliver(self, ev: engine.Event) -> None:
        payloads, k = self.in_flight.pop(ev.slot)
        fresh = ev.seq > self.last.get(ev.channel, -1)
        self.last[ev.channel] = max(ev.seq, self.last.get(ev.channel, -1))
        self.st = self.comp.receive(self.env, self.st, np.int32(ev.channel), payloads,
                                    np.int32(k), np.bool_(fresh))


def run_online(setup: Setup, step_size: float,
               after_event: Callable[[engine.Event, NetState], None] | None = None) -> Run:
    """The literal model: each event calls the jitted update as SimPy fires it
    (`after_event(event, state)` sees the state after each compute, delivery or reset)."""
    comp = compiled_online(setup.name, setup.ops)
    env = setup.env(step_size)
    init_key, ev_key = run_keys(setup.seed)
    run = _Online(comp, env, ev_key, comp.init(env, init_key), comp.init(env, init_key),
                  setup.algorithm.per_round, after_event)
    t0 = _time.perf_counter()
    trace = record_trace(setup, run.on_event)
    metrics = np.asarray(jnp.stack(run.samples))
    wall = _time.perf_counter() - t0
    return Run(setup.name, setup.seed, step_size, trace, metrics, run.st, wall,
               setup.message_bytes, timings={"trace_s": wall, "replay_s": 0.0})


def invariant_history(setup: Setup, step_size: float) -> pd.DataFrame:
    """A run's conserved quantity event by event (online): time and the largest coordinate of
    its algorithm's residual after every event. For R-FAST that is
    ``|sum_i z_i + sum_c (rho_c - rho_tilde_c) - sum_i g_i|``. `setup`: one algorithm and
    seed (:func:`rfast_sim.experiment.plan.prepare`)."""
    invariant = setup.algorithm.invariant
    if invariant is None:
        raise ValueError(f"{setup.name} declares no invariant")
    env = setup.env(step_size)
    residual = jax.jit(lambda st: jnp.abs(invariant(env, st)).max())
    rows: list[tuple[float, str, Array]] = []

    def after(ev: engine.Event, st: NetState) -> None:
        rows.append((ev.time, engine.KIND_NAMES[ev.kind], residual(st)))

    run_online(setup, step_size, after_event=after)
    return pd.DataFrame({"time": [r[0] for r in rows], "kind": [r[1] for r in rows],
                         "residual": np.asarray(jnp.stack([r[2] for r in rows]))})
