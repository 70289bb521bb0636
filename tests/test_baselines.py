"""Baselines and the fair comparison: the claims of ALGORITHM.md's test list."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import scenario

import rfast_sim
from rfast_sim.loading import load_scenario
from rfast_sim.online import compiled_online
from rfast_sim.setup import prepare, record_trace

ROOT = Path(__file__).resolve().parent.parent


def test_allreduce_reproduces_centralised_gradient_descent():
    sc = scenario(**{"algorithm.name": "allreduce_sgd", "problem.batch_size": None,
                     "timing.latency": {"dist": "constant", "mean": 0.01},
                     "timing.drop_prob": 0.0, "run.until": 60.0})
    setup = prepare(sc, "allreduce_sgd", sc.seed)
    trace = record_trace(setup)
    comp = compiled_online("allreduce_sgd", setup.ops)
    step = 0.1
    env = setup.env(step)
    init_key, ev_key = jax.random.split(jax.random.PRNGKey(sc.seed))
    state = comp.init(env, init_key)
    A, b = np.asarray(setup.data.feats), np.asarray(setup.data.targets)
    n, m, _ = A.shape
    x = np.asarray(setup.data.x0).copy()
    rounds = np.flatnonzero(trace.kind == 2)
    assert len(rounds) > 10
    for e in rounds:
        state = comp.round(env, state, ev_key, np.int32(e))
        grad = sum(A[i].T @ (A[i] @ x - b[i]) for i in range(n)) / (n * m) + 0.01 * x
        x = x - step * grad
        np.testing.assert_allclose(np.asarray(state.nodes.x), np.tile(x, (n, 1)), rtol=0,
                                   atol=1e-10)


@pytest.mark.parametrize("name", ["allreduce_sgd", "dpsgd", "sync_gt"])
@pytest.mark.parametrize("straggler", [False, True])
def test_synchronous_round_time_closed_form(name, straggler):
    """Constant times: Ring-AllReduce rounds last tau + 2(n-1)(alpha + M/(n beta)); a
    (global-barrier) gossip round tau + alpha + M/beta; a 5x straggler makes tau 5x longer."""
    tau, alpha, M, beta, n = 0.3, 0.02, 1e6, 1e8, 8
    sc = scenario(**{"algorithm.name": name, "nodes": n, "graphs.pull.kind": "ring",
                     "graphs.push.kind": "ring", "timing.drop_prob": 0.0,
                     "timing.compute": {"dist": "constant", "mean": tau},
                     "timing.latency": {"dist": "constant", "mean": alpha},
                     "timing.message_bytes": M, "timing.bandwidth": beta,
                     "timing.stragglers": {"nodes": [3] if straggler else [], "slowdown": 5.0},
                     "run.until": 30.0})
    trace = record_trace(prepare(sc, name, sc.seed))
    slowest = 5 * tau if straggler else tau
    if name == "allreduce_sgd":
        round_time = slowest + 2 * (n - 1) * (alpha + M / (n * beta))
    else:
        round_time = slowest + alpha + M / beta
    k = np.arange(1, len(trace.round_end) + 1)
    assert len(k) == int(30.0 / round_time + 1e-9)
    np.testing.assert_allclose(trace.round_end, k * round_time, rtol=1e-12)
    np.testing.assert_allclose(trace.round_compute - trace.round_start, slowest, rtol=1e-12)


def _final(res, name):
    df = res.metrics[res.metrics.algorithm == name]
    return df["opt_gap"].to_numpy(), df["dist_opt"].to_numpy()


LS = {"problem.batch_size": None, "problem.heterogeneity": {"kind": "shift", "scale": 3.0},
      "graphs.pull.kind": "ring", "graphs.push.kind": "ring",
      "timing.latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5},
      "run.until": 300.0, "run.sample_every": 10.0}


def test_heterogeneity_bias_floor_of_adpsgd_and_osgp():
    sc = scenario(**LS, **{"timing.drop_prob": 0.0}, algorithms=[
        {"name": "rfast", "step_size": 0.5}, {"name": "adpsgd", "step_size": 0.1},
        {"name": "osgp", "step_size": 0.1}])
    res = rfast_sim.run(sc)
    rfast_gap, rfast_dist = _final(res, "rfast")
    assert rfast_dist[-1] < 1e-6
    for name in ("adpsgd", "osgp"):
        gap, _ = _final(res, name)
        # a floor, not slow progress: nowhere in the last third does it come near R-FAST
        tail = gap[2 * len(gap) // 3 :]
        assert tail.min() > 100 * max(rfast_gap[-1], 1e-12)
        assert tail.min() > 1e-6


def test_packet_loss_breaks_push_sum_and_non_robust_tracking_but_not_rfast():
    algs = [{"name": "rfast", "step_size": 0.5}, {"name": "rfast_nonrobust", "step_size": 0.5},
            {"name": "osgp", "step_size": 0.1}]
    lossy = rfast_sim.run(scenario(**LS, **{"timing.drop_prob": 0.2}, algorithms=algs))
    _, rfast_dist = _final(lossy, "rfast")
    assert rfast_dist[-1] < 1e-6
    for name in ("rfast_nonrobust", "osgp"):
        _, dist = _final(lossy, name)
        # push-sum may lose all its weight (x/w -> nan): that counts as drifting away too
        assert not dist[-1] <= 1e-2, f"{name} should drift away from the optimum under loss"
    clean = rfast_sim.run(scenario(**{**LS, "run.until": 600.0}, **{"timing.drop_prob": 0.0},
                                   algorithms=algs[:2]))
    _, a = _final(clean, "rfast")
    _, b = _final(clean, "rfast_nonrobust")
    assert a[-1] < 1e-6
    assert b[-1] < 1e-6


def test_straggler_rfast_beats_synchronous_methods_in_time_to_target():
    sc = load_scenario(ROOT / "scenarios/compare_stragglers.yaml", [
        "algorithms=[{name: rfast, step_size: [1.0, 2.0, 4.0]}, "
        "{name: allreduce_sgd, step_size: [0.5, 1.0, 2.0]}, "
        "{name: dpsgd, step_size: [0.5, 1.0, 2.0]}]", "run.until=150"])
    table = rfast_sim.run(sc).comparison().set_index("algorithm")
    t = table["time_to_opt_gap"]
    assert np.isfinite(t["rfast"])
    assert t["rfast"] < t["allreduce_sgd"]
    assert t["rfast"] < t["dpsgd"]


def test_common_random_numbers_across_algorithms():
    names = ["rfast", "osgp", "adpsgd", "allreduce_sgd", "dpsgd", "sync_gt", "rfast_nonrobust"]
    durations = []
    for name in names:
        sc = scenario(**{"graphs.pull.kind": "ring", "graphs.push.kind": "ring",
                         "algorithm.name": name, "run.until": 200.0, "timing.drop_prob": 0.0,
                         "timing.latency": {"dist": "constant", "mean": 0.01},
                         "timing.stragglers": {"prob": 0.2, "slowdown": 3.0}})
        trace = record_trace(prepare(sc, name, sc.seed))
        durations.append(trace.compute_durations[3][9])
    assert len(set(durations)) == 1
