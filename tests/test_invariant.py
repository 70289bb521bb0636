"""The mass-conservation invariant of ALGORITHM.md after every event, losses and reordering."""

from __future__ import annotations

import jax
import numpy as np
from conftest import scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfast_sim import engine
from rfast_sim.algorithms.rfast import tracker_mass
from rfast_sim.runner import compiled, prepare, record_trace


def _check_every_event(sc, tol=1e-9):
    setup = prepare(sc, "rfast", sc.seed)
    trace = record_trace(setup)
    comp = compiled("rfast", setup.ops)
    env = setup.env(sc.algorithm.step_size)
    init_key, ev_key = jax.random.split(jax.random.PRNGKey(sc.seed))
    state = comp.init(env, init_key)
    role = setup.channels.role
    in_flight, last, stale, worst = {}, {}, 0, 0.0
    mass = jax.jit(tracker_mass)
    for e in range(len(trace)):
        kind = trace.kind[e]
        if kind == engine.COMPUTE:
            state, payloads = comp.compute(env, state, np.int32(trace.node[e]), ev_key,
                                           np.int32(e))
            for k, slot in enumerate(trace.out_slots[e]):
                if slot >= 0:
                    in_flight[int(slot)] = (payloads, k)
        elif kind == engine.DELIVER:
            c, seq = int(trace.channel[e]), int(trace.seq[e])
            payloads, k = in_flight.pop(int(trace.slot[e]))
            fresh = seq > last.get(c, -1)
            stale += not fresh
            last[c] = max(seq, last.get(c, -1))
            state = comp.receive(env, state, np.int32(c), payloads, np.int32(k), np.bool_(fresh))
        else:
            continue
        lhs = np.asarray(mass(state, role))
        rhs = np.asarray(state.nodes.g.sum(0))
        worst = max(worst, float(np.abs(lhs - rhs).max() / (1 + np.abs(rhs).max())))
    return worst, stale, int(trace.dropped.sum())


def test_invariant_holds_after_every_event_with_drops_and_reordering():
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "ring",
                     "timing.drop_prob": 0.3, "run.until": 40.0})
    worst, stale, dropped = _check_every_event(sc)
    assert dropped > 20, "the scenario must actually lose packets"
    assert stale > 5, "the scenario must actually reorder packets (stale ones discarded)"
    assert worst < 1e-9


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), drop=st.floats(0.0, 0.6),
       push=st.sampled_from(["ring", "exponential", "binary_tree", "complete"]),
       batch=st.sampled_from([None, 4]))
def test_invariant_property(seed, drop, push, batch):
    sc = scenario(**{"seed": seed, "graphs.push.kind": push, "graphs.pull.kind": "exponential",
                     "timing.drop_prob": drop, "problem.batch_size": batch,
                     "run.until": 15.0})
    worst, _, _ = _check_every_event(sc)
    assert worst < 1e-9
