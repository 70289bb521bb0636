"""The JAX baselines against the plain-numpy oracles of tests/oracles.py, on recorded traces
with losses and reordering (lognormal latency, drop_prob), exact gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import scenario
from oracles import (
    ADPSGDOracle,
    DPSGDOracle,
    NonRobustTrackingOracle,
    OSGPOracle,
    TraceOracle,
    dpsgd_lock_step,
)

from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.reference import least_squares_grad
from rfast_sim.maths.replay import run_replay
from rfast_sim.timing import engine
from rfast_sim.timing.topology import ROLE_GOSSIP, ROLE_PULL, ROLE_PUSH
from rfast_sim.timing.traces import record_trace

LOSSY = {"problem.batch_size": None, "timing.drop_prob": 0.3, "run.until": 60.0,
         "timing.latency": {"dist": "lognormal", "mean": 0.5, "sigma": 1.0}}
STEP = 0.05


def _replayed(name: str, oracle: type[TraceOracle], **overrides: Any) -> tuple[Any, Any, Any]:
    sc = scenario(**{**LOSSY, **overrides, "algorithm.name": name})
    setup = prepare(sc, name, sc.seed)
    trace = record_trace(setup)
    (run,) = run_replay([setup], [STEP], [trace])
    d = setup.data
    ref = oracle(setup.channels, np.asarray(d.x0), STEP,
                 least_squares_grad(np.asarray(d.feats), np.asarray(d.targets), float(d.l2)))
    ref.replay(trace)
    return trace, run, ref


def _stale_deliveries(trace: engine.EventTrace) -> int:
    """Deliveries older than one delivered before on their channel (reordering)."""
    newest: dict[int, int] = {}
    stale = 0
    for c, s in zip(trace.channel[trace.is_kind("deliver")], trace.seq[trace.is_kind("deliver")],
                    strict=True):
        stale += int(s < newest.get(int(c), -1))
        newest[int(c)] = max(newest.get(int(c), -1), int(s))
    return stale


def _lossy_and_reordered(trace: engine.EventTrace, loss: float = 0.2) -> None:
    assert trace.is_kind("drop").sum() > loss * trace.is_kind("deliver").sum()
    assert _stale_deliveries(trace) > 0


def _close(got: Any, want: np.ndarray) -> float:
    diff = float(np.abs(np.asarray(got) - want).max())
    assert diff < 1e-10
    return diff


@pytest.mark.parametrize("engine_name", ["simpy", "vector"])
@pytest.mark.parametrize(("pull", "push"), [
    ({"kind": "exponential"}, {"kind": "ring"}),
    ({"kind": "binary_tree"}, {"kind": "binary_tree"}),  # G_C the transpose of G_R
])
def test_nonrobust_tracking_matches_its_numpy_oracle(engine_name, pull, push):
    trace, run, ref = _replayed("rfast_nonrobust", NonRobustTrackingOracle, **{
        "graphs.pull": pull, "graphs.push": push, "run.engine": engine_name})
    ch = ref.ch
    assert {(a, b) for a, b, r in zip(ch.src, ch.dst, ch.role, strict=True) if r == ROLE_PULL} \
        != {(a, b) for a, b, r in zip(ch.src, ch.dst, ch.role, strict=True) if r == ROLE_PUSH}
    _lossy_and_reordered(trace)
    _close(run.final_state.nodes.x, ref.x)
    _close(run.final_state.nodes.z, ref.z)
    _close(run.final_state.nodes.g, ref.g)


@pytest.mark.parametrize("engine_name", ["simpy", "vector"])
@pytest.mark.parametrize("push", [{"kind": "exponential"}, {"kind": "directed_ring"}])
def test_osgp_matches_its_numpy_oracle(engine_name, push):
    # push-sum loses weight with every lost packet, and its effective step gamma / w_i grows
    # until it diverges (w_i ~ 1e-5 by t = 60 at 10% loss): a lighter loss, a shorter run
    trace, run, ref = _replayed("osgp", OSGPOracle, **{
        "graphs.push": push, "run.engine": engine_name, "timing.drop_prob": 0.1,
        "run.until": 30.0})
    _lossy_and_reordered(trace, loss=0.05)
    assert ref.w.min() < 0.1  # mass was lost
    _close(run.final_state.nodes.w, ref.w)
    _close(run.final_state.nodes.x, ref.x)
    _close(np.asarray(run.final_state.nodes.x) / np.asarray(run.final_state.nodes.w)[:, None],
           ref.models())


@pytest.mark.parametrize("engine_name", ["simpy", "vector"])
@pytest.mark.parametrize("graph", [{"kind": "erdos_renyi", "p": 0.5}, {"kind": "star"}])
def test_adpsgd_matches_its_numpy_oracle(engine_name, graph):
    trace, run, ref = _replayed("adpsgd", ADPSGDOracle, **{"graphs.undirected": graph,
                                                           "run.engine": engine_name})
    _lossy_and_reordered(trace)
    _close(run.final_state.nodes.x, ref.x)


@pytest.mark.parametrize("barrier", ["neighbour", "global"])
def test_dpsgd_matches_its_numpy_oracle_and_the_lock_step_recursion(barrier):
    trace, run, ref = _replayed("dpsgd", DPSGDOracle, **{
        "graphs.undirected": {"kind": "grid"}, "timing.barrier": barrier,
        "timing.retransmit_timeout": 0.5})
    assert trace.is_kind("drop").sum() > 0  # lost packets are resent
    _close(run.final_state.nodes.x, ref.x)
    # and the barrier makes it the synchronous recursion: node i's k-th computation holds X^k
    ch = ref.ch
    gossip = ch.role == ROLE_GOSSIP
    W = np.diag(ref.weights[0][ROLE_GOSSIP].self_w)
    W[ch.dst[gossip], ch.src[gossip]] = ref.weights[0][ROLE_GOSSIP].w[gossip]
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(W, W.T, atol=1e-15)
    xs = dpsgd_lock_step(W, ref.x0, STEP, ref.grad, int(ref.computations.max()))
    assert ref.computations.min() > 5
    for i in range(ref.n):
        _close(ref.x[i], xs[ref.computations[i] - 1][i])


def test_dpsgd_keeps_the_newest_model_when_a_timed_out_packet_arrives_late():
    # regression: with a barrier timeout a node goes on without a late packet; when it then
    # arrives after the neighbour's next one, D-PSGD used to overwrite the newer model with it
    trace, run, ref = _replayed("dpsgd", DPSGDOracle, **{
        "graphs.undirected": {"kind": "grid"}, "timing.barrier_timeout": 0.3,
        "timing.retransmit_timeout": 0.5})
    assert _stale_deliveries(trace) > 0
    _close(run.final_state.nodes.x, ref.x)


RESETS = {"timing.churn": {"mtbf": 8.0, "mttr": 2.0, "rejoin": "reset"}, "run.engine": "simpy"}


@pytest.mark.parametrize(("name", "oracle", "over"), [
    ("rfast_nonrobust", NonRobustTrackingOracle, {"graphs.pull.kind": "exponential",
                                                  "graphs.push.kind": "ring"}),
    ("osgp", OSGPOracle, {"graphs.push.kind": "exponential", "timing.drop_prob": 0.05,
                          "run.until": 30.0}),
    ("adpsgd", ADPSGDOracle, {"graphs.undirected": {"kind": "grid"}}),
    ("dpsgd", DPSGDOracle, {"graphs.undirected": {"kind": "grid"},
                            "timing.barrier_timeout": 0.5}),
])
def test_node_resets_match_the_oracles(name, oracle, over):
    # rejoin: reset: the node restarts from x0 and forgets what it received
    trace, run, ref = _replayed(name, oracle, **{**RESETS, **over})
    assert trace.is_kind("reset").sum() >= 3
    _close(run.final_state.nodes.x, ref.x)
