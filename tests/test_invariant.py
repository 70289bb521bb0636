"""The mass-conservation invariant of ALGORITHM.md after every event, losses and reordering.

The check drives the real online runner (its `after_event` hook sees the state after each
computation and delivery) and computes the invariant here from the state's own arrays:
sum_i z_i + sum_{push channels} (rho - rho_tilde) = sum_i g_i.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.online import run_online
from rfast_sim.timing import engine
from rfast_sim.timing.topology import ROLE_PUSH


def _check_every_event(sc, min_events: int = 0):
    setup = prepare(sc, "rfast", sc.seed)
    push = np.asarray(setup.channels.role) == ROLE_PUSH
    worst = [0.0]
    checked = [0]

    def after(ev: engine.Event, state) -> None:
        z = np.asarray(state.nodes.z)
        g = np.asarray(state.nodes.g)
        pending = np.asarray(state.chans.rho)[push] - np.asarray(state.chans.rho_tilde)[push]
        lhs = z.sum(0) + pending.sum(0)
        rhs = g.sum(0)
        worst[0] = max(worst[0], float(np.abs(lhs - rhs).max() / (1 + np.abs(rhs).max())))
        checked[0] += 1

    run = run_online(setup, sc.algorithm.step_size, after_event=after)
    tr = run.trace
    delivered = tr.is_kind("deliver")
    seq, ch = tr.seq[delivered], tr.channel[delivered]
    # a delivery older than one already applied on its channel: packets were reordered
    stale = sum(int((np.maximum.accumulate(seq[ch == c]) > seq[ch == c]).sum())
                for c in np.unique(ch))
    assert checked[0] >= min_events
    return worst[0], stale, int(tr.dropped.sum())


@pytest.mark.long
def test_invariant_holds_after_every_event_with_drops_and_reordering():
    # about 1e5 computations and deliveries: 16 nodes, exponential graphs, 30% loss
    sc = scenario(**{"nodes": 16, "graphs.pull.kind": "exponential", "graphs.push.kind": "ring",
                     "timing.drop_prob": 0.3, "run.until": 1250.0, "run.sample_every": 125.0})
    worst, stale, dropped = _check_every_event(sc, min_events=100_000)
    assert dropped > 10_000, "the scenario must actually lose packets"
    assert stale > 1_000, "the scenario must actually reorder packets (stale ones discarded)"
    assert worst < 1e-9


@pytest.mark.slow
def test_invariant_over_a_million_events():
    sc = scenario(**{"nodes": 32, "graphs.pull.kind": "exponential",
                     "graphs.push.kind": "exponential", "timing.drop_prob": 0.2,
                     "run.until": 5000.0, "run.sample_every": 500.0})
    worst, _, _ = _check_every_event(sc, min_events=1_000_000)
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


def test_invariant_holds_through_bursty_loss():
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
                     "timing.drop_prob": None, "run.until": 60.0,
                     "timing.loss": {"p_good_bad": 0.05, "p_bad_good": 0.2}})
    worst, _, dropped = _check_every_event(sc)
    assert dropped > 50
    assert worst < 1e-9


def test_invariant_holds_through_link_outages_and_churn():
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
                     "timing.drop_prob": 0.1, "run.until": 60.0,
                     "timing.link_churn": {"mtbf": 8.0, "mttr": 2.0},
                     "timing.outages": [{"src": 0, "dst": 1, "start": 5.0, "end": 30.0}]})
    worst, _, dropped = _check_every_event(sc)
    assert dropped > 100
    assert worst < 1e-9
