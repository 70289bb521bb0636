"""Same scenario and seed -> identical results; another seed -> other timing; online = replay."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

import rfast_sim
from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.online import run_online
from rfast_sim.maths.replay import run_replay


def test_same_seed_gives_identical_metrics_and_other_seed_differs():
    sc = scenario(**{"problem.batch_size": 4, "run.until": 30.0})
    a = rfast_sim.run(sc).metrics
    b = rfast_sim.run(sc).metrics
    assert a.equals(b)
    c = rfast_sim.run(scenario(**{"seed": 1, "problem.batch_size": 4, "run.until": 30.0}))
    assert not np.array_equal(a["updates"], c.metrics["updates"])


ALGOS = ["rfast", "rfast_nonrobust", "osgp", "adpsgd", "allreduce_sgd", "dpsgd", "sync_gt"]


@pytest.mark.parametrize("name", ALGOS)
@pytest.mark.parametrize("case", ["drops_stragglers", "minibatch_logistic", "contention",
                                  "link_faults", "node_reset", "node_keep_timeout"])
def test_online_and_replay_agree(name, case):
    over = {"graphs.pull.kind": "ring", "graphs.push.kind": "exponential",
            "algorithm.name": name, "run.until": 25.0, "timing.drop_prob": 0.2,
            "timing.stragglers": {"count": 2, "slowdown": 4.0, "prob": 0.1}}
    if case == "minibatch_logistic":
        over.update({"problem.kind": "logistic", "problem.batch_size": 4,
                     "problem.heterogeneity": {"kind": "label_skew", "alpha": 0.3},
                     "timing.drop_prob": 0.0})
    if case == "contention":  # queues that grow, superseded packets, shared ingress
        over.update({"timing.message_bytes": 1e6, "timing.bandwidth": 1e7,
                     "timing.nic": {"egress": 2e6, "queue": "latest", "ingress": 3e6}})
    if case == "link_faults":  # bursty loss, random link failures and an explicit outage
        over.update({"timing.drop_prob": None, "timing.loss": {"p_good_bad": 0.05},
                     "timing.link_churn": {"mtbf": 6.0, "mttr": 1.0},
                     "timing.outages": [{"src": 0, "dst": 1, "start": 2.0, "end": 9.0}]})
    if case == "node_reset":  # node churn, nodes restarting from x0, an explicit node outage
        over.update({"timing.churn": {"mtbf": 6.0, "mttr": 1.5, "rejoin": "reset"},
                     "timing.outages": [{"node": 1, "start": 3.0, "end": 8.0}]})
    if case == "node_keep_timeout":  # a node down for good; sync methods stop waiting for it
        over.update({"timing.churn": {"mtbf": 8.0, "mttr": 2.0},
                     "timing.outages": [{"node": 2, "start": 10.0}],
                     "timing.barrier_timeout": 0.5})
    sc = scenario(**over)
    setup = prepare(sc, name, sc.seed)
    online = run_online(setup, 0.05)
    (replay,) = run_replay([setup], [0.05])
    assert online.metrics.shape == replay.metrics.shape
    np.testing.assert_allclose(online.metrics, replay.metrics, rtol=1e-9, atol=1e-9)
    assert online.trace.sample_updates[-1] > 0
