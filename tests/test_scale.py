"""100,000-node networks: an honest memory estimate, link streams without a generator per link,
a compact trace, and the 100,000-node run itself (slow, in a subprocess, under its bound)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import scenario

from rfast_sim.experiment import budget
from rfast_sim.experiment.plan import prepare
from rfast_sim.scenario.loading import parse_scenario
from rfast_sim.timing.links import Links
from rfast_sim.timing.traces import record_trace


def big(nodes: int, until: float, **run: Any) -> dict[str, Any]:
    return {"name": "scale", "nodes": nodes,
            "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"}},
            "timing": {"compute": {"dist": "exponential", "mean": 1.0},
                       "latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5},
                       "drop_prob": 0.1},
            "problem": {"kind": "least_squares", "dim": 10, "samples_per_node": 20,
                        "batch_size": None},
            "algorithm": {"name": "rfast", "step_size": 0.01},
            "run": {"until": until, "sample_every": until / 10, **run}}


def test_the_estimate_charges_the_builder_that_runs_and_one_trace_per_seed():
    data = big(100_000, 5.5)
    est = budget.estimate(parse_scenario(data))
    assert 1.5e7 < est.events_per_run < 2.5e7
    assert est.total < 16e9, est.describe()
    simpy = budget.estimate(parse_scenario({**data, "run": {**data["run"], "engine": "simpy"}}))
    assert simpy.total > est.total + 5e9  # SimPy's rows and its generator per link
    steps = budget.estimate(parse_scenario({**data, "algorithm": {
        "name": "rfast", "step_size": [0.01, 0.02, 0.05, 0.1]}}))
    assert steps.parts["kept traces"] == est.parts["kept traces"]  # one trace serves all steps
    seeds = budget.estimate(parse_scenario({**data, "seeds": 3}))
    assert seeds.parts["kept traces"] == pytest.approx(3 * est.parts["kept traces"])


@pytest.mark.parametrize("over", [
    {},  # independent losses, a chunk-free law: drawn without making a Link
    {"timing.link_drop_prob": [{"src": 3, "dst": 1, "drop_prob": 0.9}]},
    {"timing.latency": {"dist": "constant", "mean": 0.2}},
    {"timing.drop_prob": None, "timing.loss": {"model": "gilbert_elliott", "p_good_bad": 0.2,
                                              "p_bad_good": 0.5, "loss_bad": 0.8}}])
def test_link_fates_without_a_kept_generator_equal_those_of_made_links(over):
    sc = scenario(**over)
    src, dst = np.array([0, 3, 5, 7, 2]), np.array([1, 1, 2, 0, 6])
    counts = np.array([40, 0, 7, 1500, 3])
    once = Links(sc.timing, 7)
    made = Links(sc.timing, 7)
    for (lat, lost), a, b, k in zip(once.fates_once(src, dst, counts), src, dst, counts,
                                    strict=True):
        want = made.fates(int(a), int(b), int(k))
        np.testing.assert_array_equal(lat, want[0])
        np.testing.assert_array_equal(lost, want[1])
    assert not once._links  # nothing kept
    np.testing.assert_array_equal(once.rates(src, dst), made.open(src, dst))


def test_the_trace_keeps_out_slots_per_computation():
    setup = prepare(scenario(**{"run.engine": "vector"}), "rfast", 0)
    tr = record_trace(setup)
    computes = tr.is_kind("compute")
    assert tr.sent_slots.shape == (computes.sum(), setup.channels.out_ch.shape[1])
    dense = tr.out_slots
    assert (dense[~computes] == -1).all()
    np.testing.assert_array_equal(dense[computes], tr.sent_slots)
    assert (tr.compute_rank(np.flatnonzero(computes)) == np.arange(computes.sum())).all()


SCALE_CHILD = """
import json, sys, time
import rfast_sim
from rfast_sim.scenario.loading import parse_scenario
t0 = time.perf_counter()
res = rfast_sim.run(parse_scenario(json.loads(sys.argv[1])))
run = res.runs[0]
rss = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"events": len(run.trace), "rss": rss, "seconds": time.perf_counter() - t0,
                  "engine": run.trace.network["engine"], "replay": run.extra["replay"]}))
"""


@pytest.mark.slow
def test_100k_nodes_end_to_end_under_16_gb():
    out = subprocess.run([sys.executable, "-c", SCALE_CHILD, json.dumps(big(100_000, 5.5))],
                         capture_output=True, text=True, check=True, timeout=1200)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["events"] > 1.5e7
    assert stats["engine"] == "vector"
    assert stats["rss"] < 16e9, stats
