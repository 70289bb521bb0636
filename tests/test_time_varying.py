"""Time-varying graphs (one_peer_exponential, schedule) and resets against the numpy oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import reference_run, scenario
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import NonRobustTrackingOracle, OSGPOracle

from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.online import run_online
from rfast_sim.maths.reference import least_squares_grad
from rfast_sim.maths.replay import run_replay
from rfast_sim.scenario import Graphs, GraphSpec, ScenarioError
from rfast_sim.timing.topology import ROLE_PULL, ROLE_PUSH, graph_phases, make_channels
from rfast_sim.timing.traces import record_trace

ONE_PEER = {"graphs.pull.kind": "one_peer_exponential",
            "graphs.push.kind": "one_peer_exponential"}


@pytest.mark.parametrize("n", [5, 8, 12])
def test_one_peer_sends_the_kth_packet_to_i_plus_2_to_the_k_mod_log2n(n):
    sc = scenario(**{**ONE_PEER, "nodes": n, "run.until": 40.0})
    setup = prepare(sc, "rfast", 0)
    tr, ch = record_trace(setup), setup.channels
    period = math.ceil(math.log2(n))
    comp = tr.is_kind("compute")
    for i in range(n):
        rows = tr.out_slots[comp & (tr.node == i)]
        assert len(rows) > period
        for k, slots in enumerate(rows):
            sent = ch.out_ch[i][slots >= 0]
            peer = (i + 2 ** (k % period)) % n
            assert len(sent) == 2  # one pull and one push packet, both to the peer
            assert set(ch.dst[sent].tolist()) == {peer}
            assert set(ch.role[sent].tolist()) == {ROLE_PULL, ROLE_PUSH}


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40))
def test_each_phase_is_row_and_column_stochastic(n):
    phases = graph_phases(Graphs(pull=GraphSpec(kind="one_peer_exponential"),
                                 push=GraphSpec(kind="one_peer_exponential")), n, 0)
    assert phases is not None
    ch = make_channels(n, pull=phases.union("pull"), push=phases.union("push"), phases=phases)
    for p in range(len(phases)):
        w = ch.phase_weight[p]
        rows = ch.phase_self[p, ROLE_PULL] + np.bincount(
            ch.dst[ch.role == ROLE_PULL], weights=w[ch.role == ROLE_PULL], minlength=n)
        cols = ch.phase_self[p, ROLE_PUSH] + np.bincount(
            ch.src[ch.role == ROLE_PUSH], weights=w[ch.role == ROLE_PUSH], minlength=n)
        np.testing.assert_allclose(rows, 1.0, atol=1e-12)
        np.testing.assert_allclose(cols, 1.0, atol=1e-12)
        assert ((w > 0).sum() == 2 * n) if n > 2 or p == 0 else True  # one peer per node


def test_the_root_check_uses_one_period_and_each_schedule_entry():
    # one instant of one_peer is a permutation (no common root), its period is not
    sc = scenario(**{**ONE_PEER, "nodes": 8})
    prepare(sc, "rfast", 0)
    bad = {"at": 10.0, "pull": {"kind": "edges", "edges": [[1, 0], [1, 2]]}}  # root 1, not 0
    with pytest.raises(ScenarioError, match=r"graphs\.schedule\.1: graphs: G_R .* share no common"):
        prepare(scenario(**{"nodes": 3, "graphs.schedule": [{"at": 0.0}, bad]}), "rfast", 0)
    with pytest.raises(ScenarioError, match="schedule: the 'at' times must increase"):
        scenario(**{"graphs.schedule": [{"at": 5.0}, {"at": 5.0}]})
    with pytest.raises(ScenarioError, match="sync_gt runs lock-step rounds on static graphs"):
        prepare(scenario(**ONE_PEER), "sync_gt", 0)


def test_a_schedule_switches_the_graphs_at_its_times():
    sc = scenario(**{"nodes": 6, "run.until": 40.0, "graphs.schedule": [
        {"at": 0.0, "pull": {"kind": "complete"}, "push": {"kind": "complete"}},
        {"at": 15.0, "pull": {"kind": "directed_ring"}, "push": {"kind": "directed_ring"}}]})
    setup = prepare(sc, "rfast", 0)
    tr, ch = record_trace(setup), setup.channels
    comp = np.flatnonzero(tr.is_kind("compute"))
    for e in comp:
        i = tr.node[e]
        sent = ch.out_ch[i][tr.out_slots[e] >= 0]
        peers = set(ch.dst[sent].tolist())
        if tr.time[e] < 15.0:
            assert peers == set(range(6)) - {i}
            assert tr.phase[e] == 0
        else:
            assert peers == {(i + 1) % 6}
            assert tr.phase[e] == 1


@pytest.mark.parametrize("case", ["one_peer", "schedule", "reset", "reset_one_peer"])
def test_replay_equals_the_numpy_reference_and_online(case):
    over: dict = {"run.until": 60.0, "timing.drop_prob": 0.2}
    if "one_peer" in case:
        over.update(ONE_PEER)
    if case == "schedule":
        over["graphs.schedule"] = [{"at": 20.0, "push": {"kind": "one_peer_exponential"}},
                                   {"at": 40.0, "pull": {"kind": "ring"}}]
    if "reset" in case:
        over["timing.churn"] = {"mtbf": 8.0, "mttr": 2.0, "rejoin": "reset"}
    sc = scenario(**over)
    setup, trace, run, ref = reference_run(sc)
    if "reset" in case:
        assert trace.is_kind("reset").sum() >= 5
    np.testing.assert_allclose(np.asarray(run.final_state.nodes.x), ref.x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(run.final_state.nodes.z), ref.z, rtol=0, atol=1e-10)
    online = run_online(setup, 0.05)
    np.testing.assert_allclose(online.metrics, run.metrics, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("name", "oracle"), [("osgp", OSGPOracle),
                                              ("rfast_nonrobust", NonRobustTrackingOracle)])
def test_other_asynchronous_methods_on_time_varying_graphs_match_their_oracles(name, oracle):
    # light loss: push-sum loses weight with each lost packet and then diverges
    sc = scenario(**{**ONE_PEER, "run.until": 30.0, "problem.batch_size": None,
                     "timing.drop_prob": 0.05})
    setup = prepare(sc, name, 0)
    trace = record_trace(setup)
    (replay,) = run_replay([setup], [0.05], [trace])
    d = setup.data
    ref = oracle(setup.channels, np.asarray(d.x0), 0.05,
                 least_squares_grad(np.asarray(d.feats), np.asarray(d.targets), float(d.l2)))
    ref.replay(trace)
    assert len(set(trace.phase.tolist())) == math.ceil(math.log2(sc.nodes))
    np.testing.assert_allclose(np.asarray(replay.final_state.nodes.x), ref.x, rtol=0,
                               atol=1e-10)
    online = run_online(setup, 0.05)
    np.testing.assert_allclose(online.metrics, replay.metrics, rtol=1e-9, atol=1e-9)


def test_rfast_converges_exactly_on_one_peer_exponential_graphs():
    # linear convergence: 5e-11 by t = 1200 at this step (static exponential graphs: 7e-8)
    sc = scenario(**{**ONE_PEER, "timing.drop_prob": 0.2, "algorithm.step_size": 0.2,
                     "run.until": 1200.0, "run.sample_every": 100.0})
    setup = prepare(sc, "rfast", 0)
    (run,) = run_replay([setup], [0.2])
    x = np.asarray(run.final_state.nodes.x)
    assert np.abs(x - np.asarray(setup.data.x_star)).max() < 1e-8
