"""The vectorised trace builder equals the SimPy engine, event for event."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfast_sim.experiment.plan import prepare, scenario_graphs
from rfast_sim.maths.replay import run_replay
from rfast_sim.maths.setup import Setup
from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.loading import load_scenario, shipped_scenarios
from rfast_sim.timing import TimingModel, engine
from rfast_sim.timing.engine import vector
from rfast_sim.timing.engine.trace import DELIVERED, IN_FLIGHT, LOST_LINK, PacketLog
from rfast_sim.timing.traces import choose_engine, record_trace


def _both(setup: Setup, packets: bool = True) -> tuple[engine.EventTrace, engine.EventTrace]:
    """Both builders' traces of one setup, with the packet log (compared too) unless not."""
    run = setup.plan.run

    def timing() -> TimingModel:
        return setup.timing_model()

    simpy = engine.simulate(timing(), setup.channels, setup.algorithm.pattern, until=run.until,
                            max_updates=run.max_updates, sample_every=run.sample_every,
                            supersedes=setup.algorithm.supersedes, packets=packets)
    vec = vector.build(timing(), setup.channels, until=run.until, sample_every=run.sample_every,
                       pattern=setup.algorithm.pattern, max_updates=run.max_updates,
                       packets=packets)
    return simpy, vec


def assert_same_trace(a: engine.EventTrace, b: engine.EventTrace) -> None:
    assert len(a) == len(b)
    for name in ("kind", "node", "peer", "channel", "seq", "dropped"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_allclose(a.time, b.time, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.out_slots >= 0, b.out_slots >= 0)
    for name in ("sample_time", "sample_updates", "sample_messages", "sample_dropped",
                 "sample_bytes"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                   err_msg=name)
    assert a.num_slots == b.num_slots
    assert {i: len(d) for i, d in a.compute_durations.items()} == \
        {i: len(d) for i, d in b.compute_durations.items()}
    for key, value in a.network.items():
        if isinstance(value, int | float):
            assert b.network[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert (a.packets is None) == (b.packets is None)
    if a.packets is not None and b.packets is not None:
        assert_same_packets(a.packets, b.packets)


def assert_same_packets(a: PacketLog, b: PacketLog) -> None:
    """The packet logs row for row: the same packets, fates and times (1e-12; NaN where a
    time was not reached by the end of the run, in both)."""
    assert len(a) == len(b)
    for name in ("src", "dst", "channel", "seq", "round", "fate"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("sent", "started", "left", "end"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12,
                                   err_msg=name)


def _shipped_cases() -> list[tuple[str, str]]:
    cases = []
    for name in shipped_scenarios():
        if name.startswith("sweep_"):  # sweep files, not scenarios
            continue
        sc = load_scenario(name)
        for spec in sc.algorithm_list:
            cases.append((name, spec.name))
    return cases


@pytest.mark.parametrize(("name", "algorithm"), _shipped_cases())
def test_equal_on_every_shipped_scenario_it_covers(name, algorithm):
    sc = load_scenario(name, overrides=["run.until=20", "run.sample_every=2"])
    setup = prepare(sc, algorithm, sc.seed, scenario_graphs(sc, [algorithm]))
    gap = vector.covers(setup.plan.timing, setup.channels, setup.algorithm.pattern,
                        setup.algorithm.supersedes)
    if gap is not None:
        assert choose_engine(setup, False)[0] == "simpy"
        return
    assert_same_trace(*_both(setup))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12),
       graph=st.sampled_from(["ring", "exponential", "complete", "directed_ring"]),
       compute=st.sampled_from(["exponential", "lognormal", "gamma", "uniform",
                                "shifted_exponential"]),
       latency=st.sampled_from(["constant", "exponential", "lognormal"]),
       drop=st.floats(0.0, 0.5), bursty=st.booleans(),
       nic=st.sampled_from(["none", "fifo", "slow"]),
       straggle=st.booleans(),
       algorithm=st.sampled_from(["rfast", "osgp", "rfast_nonrobust", "adpsgd"]),
       stop=st.sampled_from(["until", "updates", "both"]))
def test_equal_on_generated_scenarios(seed, n, graph, compute, latency, drop, bursty, nic,
                                      straggle, algorithm, stop):
    over = {"seed": seed, "nodes": n, "graphs.pull.kind": graph, "graphs.push.kind": graph,
            "timing.compute": {"dist": compute, "mean": 1.0},
            "timing.latency": {"dist": latency, "mean": 0.2}, "timing.drop_prob": drop,
            "algorithm.name": algorithm, "run.until": 25.0, "run.sample_every": 2.5,
            "graphs.undirected": {"kind": "ring"}}  # AD-PSGD's: one random neighbour a time
    if stop != "until":  # the run ends at its max_updates-th computation (or at until)
        over.update({"run.max_updates": 15 * n,
                     "run.until": None if stop == "updates" else 25.0})
    if bursty:  # Gilbert-Elliott loss instead of independent drops
        over.update({"timing.drop_prob": None, "timing.loss": {
            "p_good_bad": 0.05 + drop, "p_bad_good": 0.3, "loss_good": drop / 4}})
    if nic == "none":
        over["timing.nic"] = None
    if nic == "slow":  # queues that grow: the FIFO departure recursion matters
        over.update({"timing.message_bytes": 1e6, "timing.nic": {"egress": 4e6},
                     "timing.bandwidth": 1e7})
    if straggle:
        over["timing.stragglers"] = {"count": 1, "prob": 0.2, "slowdown": 3.0}
    setup = prepare(scenario(**over), algorithm, seed)
    # the packets of a computation arrive together
    if not vector.ties_unlikely(setup.plan.timing):
        assert latency == "constant"
        assert nic == "none"
        assert choose_engine(setup, False)[0] == "simpy"
        return
    assert_same_trace(*_both(setup))


def test_the_packet_log_is_off_by_default_and_agrees_with_the_trace():
    sc = scenario(**{"timing.message_bytes": 1e6, "timing.nic": {"egress": 4e6},
                     "timing.bandwidth": 1e7, "run.until": 30.0})
    setup = prepare(sc, "rfast", 0)
    assert record_trace(setup).packets is None
    for tr in _both(setup):
        p = tr.packets
        assert p is not None
        assert p.count(DELIVERED) == tr.is_kind("deliver").sum()
        assert p.count(LOST_LINK) == tr.is_kind("drop").sum() == tr.sample_dropped[-1]
        assert p.count(IN_FLIGHT) > 0  # a slow NIC: packets still queued at the end
        assert len(p) == int((tr.sent_slots >= 0).sum())
        assert np.all((p.started >= p.sent) | np.isnan(p.started))
        done = p.fate != IN_FLIGHT
        assert (p.end[done] >= p.left[done]).all()
        assert (p.left[done] > p.started[done]).all()


def test_replay_of_a_vector_trace_equals_replay_of_the_simpy_trace():
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "ring",
                     "nodes": 10, "run.until": 60.0, "timing.drop_prob": 0.2,
                     "timing.message_bytes": 2e5, "timing.bandwidth": 2e6})
    setup = prepare(sc, "rfast", 0)
    simpy, vec = _both(setup)
    (a,) = run_replay([setup], [0.05], [simpy])
    (b,) = run_replay([setup], [0.05], [vec])
    np.testing.assert_allclose(a.metrics, b.metrics, rtol=1e-12, atol=1e-12)


def test_engine_choice_and_its_reason_are_recorded():
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
                     "graphs.undirected": {"kind": "ring"}})
    assert record_trace(prepare(sc, "rfast", 0)).network["engine"] == "vector"
    assert record_trace(prepare(sc, "dpsgd", 0)).network["engine_reason"].startswith(
        "auto: the vector builder does not cover pattern 'sync_neighbors'")
    faulty = scenario(**{"timing.churn": {"mtbf": 10.0, "mttr": 1.0}})
    tr = record_trace(prepare(faulty, "rfast", 0))
    assert tr.network["engine"] == "simpy"
    assert "faults" in tr.network["engine_reason"]
    const = scenario(**{"timing.compute": {"dist": "constant", "mean": 1.0}})
    assert "tie" in record_trace(prepare(const, "rfast", 0)).network["engine_reason"]
    assert record_trace(prepare(scenario(**{"run.engine": "simpy"}), "rfast", 0)) \
        .network["engine"] == "simpy"
    with pytest.raises(ScenarioError, match=r"run\.engine: the vector builder does not cover"):
        record_trace(prepare(scenario(**{"run.engine": "vector",
                                         "timing.churn": {"mtbf": 9.0, "mttr": 1.0}}),
                             "rfast", 0))


def test_summary_json_says_which_engine_ran_and_where_the_time_went(tmp_path):
    import rfast_sim

    res = rfast_sim.run(scenario(**{"run.until": 10.0}))
    res.save(tmp_path)
    run = json.loads((tmp_path / "summary.json").read_text())["runs"][0]
    assert run["engine"] == "vector"
    assert set(run["timings"]) == {"trace_s", "replay_s", "metrics_s", "events",
                                   "peak_rss_bytes"}
    assert run["timings"]["events"] == run["events"] > 0


@pytest.mark.slow
def test_ten_thousand_nodes_in_bounded_memory():
    code = """
import resource, rfast_sim
from rfast_sim.scenario.loading import parse_scenario
sc = parse_scenario({"name": "big", "nodes": 10000,
    "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"}},
    "timing": {"compute": {"dist": "exponential", "mean": 1.0},
               "latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5},
               "drop_prob": 0.1},
    "problem": {"kind": "least_squares", "dim": 10, "samples_per_node": 5},
    "algorithm": {"name": "rfast", "step_size": 0.05},
    "run": {"until": 2.0, "sample_every": 1.0}})
res = rfast_sim.run(sc)
# this process's own peak (VmHWM): ru_maxrss survives exec, so it may be pytest's at the fork
rss = next((int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:")),
           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(len(res.runs[0].trace), rss)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=900)
    events, rss = map(int, out.stdout.split()[-2:])
    assert events > 100_000
    assert rss < 4e9


@given(seed=st.integers(0, 1000), count=st.integers(1, 400), spread=st.floats(0.1, 50.0))
@settings(max_examples=40, deadline=None)
def test_windowed_slots_never_share_a_slot_between_packets_in_flight(seed, count, spread):
    rng = np.random.default_rng(seed)
    sent = np.sort(rng.uniform(0, spread, count)).round(1)  # ties included
    freed = sent + rng.lognormal(-1.0, 1.0, count).round(1)
    end = float(np.quantile(freed, 0.9))
    slot, size = vector._slots(sent, freed, end, lifo_max=0)
    assert slot.min() >= 0
    assert slot.max() < size
    read = np.flatnonzero(freed <= end)  # a packet released after the end is never read
    for p in read:  # both ends included: a send and a release at one instant do not share
        same = np.flatnonzero(slot == slot[p])
        others = same[same != p]
        assert not ((sent[others] <= freed[p]) & (freed[others] >= sent[p])).any()


def test_replay_is_unchanged_by_windowed_slots(monkeypatch):
    sc = scenario(**{"graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
                     "nodes": 12, "run.until": 40.0, "timing.drop_prob": 0.2})
    setup = prepare(sc, "rfast", 0)
    simpy, lifo = _both(setup)
    monkeypatch.setattr(vector, "_LIFO_MAX", 0)
    windowed = _both(setup)[1]
    assert_same_trace(simpy, lifo)
    assert windowed.num_slots > lifo.num_slots  # a bigger store, the same replay
    (a,) = run_replay([setup], [0.05], [simpy])
    (b,) = run_replay([setup], [0.05], [windowed])
    np.testing.assert_allclose(a.metrics, b.metrics, rtol=1e-12, atol=1e-12)


@given(moves=st.lists(st.floats(0, 1, exclude_max=True), max_size=60),
       p=st.floats(0.01, 1), r=st.floats(0.01, 1), bad0=st.booleans())
def test_gilbert_elliott_states_without_a_loop_follow_the_chain(moves, p, r, bad0):
    from rfast_sim.timing.laws import gilbert_elliott_states

    expected, bad = [], bad0
    for u in moves:  # the chain as SimPy's link_fate walks it, packet by packet
        expected.append(bad)
        if u < (r if bad else p):
            bad = not bad
    states, after = gilbert_elliott_states(np.array(moves), p, r, bad0)
    assert states.tolist() == expected
    assert after == bad
