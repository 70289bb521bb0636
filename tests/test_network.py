"""Every timing rule of the network and the barriers against a closed form computed here:
alpha-beta costs, egress FIFO, ingress water-filling, Ring-AllReduce rounds, neighbour barriers
as a max-plus recurrence, H_n for a global barrier, queue growth past the egress."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from conftest import scenario

from rfast_sim.experiment.plan import prepare, timing_plan
from rfast_sim.scenario import Nic
from rfast_sim.timing import TimingModel
from rfast_sim.timing.engine.network import Network, Packet
from rfast_sim.timing.traces import record_trace

B, W = 1e6, 1e8  # bytes per packet, bytes/s


def _network(n: int, nic: Nic | None, bandwidth: float = 1e12) -> tuple[simpy.Environment,
                                                                         Network]:
    sc = scenario(nodes=n, **{"timing.latency": {"dist": "constant", "mean": 0.0},
                              "timing.drop_prob": 0.0, "timing.bandwidth": bandwidth,
                              "timing.nic": nic.model_dump() if nic is not None else None})
    env = simpy.Environment()
    return env, Network(env, TimingModel(timing_plan(sc), 0, B), n, latest=False)


def _send_all(env: simpy.Environment, net: Network, pairs: list[tuple[int, int]]) -> list[float]:
    arrived: dict[int, float] = {}
    for k, (a, b) in enumerate(pairs):
        net.send(Packet(k, a, b, B, k, 1, -1, 0.0,
                        lambda p, lost: arrived.__setitem__(p.channel, env.now)))
    env.run()
    return [arrived[k] for k in range(len(pairs))]


def test_one_egress_serialises_packets_in_send_order():
    env, net = _network(6, Nic(egress=W))
    times = _send_all(env, net, [(0, j) for j in range(1, 6)])
    np.testing.assert_allclose(times, B / W * np.arange(1, 6), rtol=1e-12)


def test_a_slower_link_caps_each_transfer_and_no_nic_means_no_contention():
    env, net = _network(4, Nic(egress=W), bandwidth=W / 2)  # min(link, egress) = W/2
    np.testing.assert_allclose(_send_all(env, net, [(0, 1), (0, 2)]), [2 * B / W, 4 * B / W])
    env, net = _network(4, None, bandwidth=W)  # parallel transfers, each on its own link
    np.testing.assert_allclose(_send_all(env, net, [(0, 1), (0, 2), (0, 3)]), [B / W] * 3)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_incast_shares_the_ingress_max_min_fairly(k):
    # k senders whose own min(link, egress) >= W/k all finish at k B / W, whatever the order
    env, net = _network(k + 1, Nic(egress=W / k * 1.5, ingress=W))
    times = _send_all(env, net, [(j, 0) for j in range(1, k + 1)])
    np.testing.assert_allclose(times, [k * B / W] * k, rtol=1e-9)


def test_water_filling_gives_a_capped_sender_its_cap_and_the_rest_to_the_others():
    # egress caps: 0.1 W for sender 1 (saturates first), 2 W for sender 2 (gets W - 0.1 W)
    env, net = _network(3, Nic(egress=2 * W, ingress=W), bandwidth=1e12)
    net.rate = lambda a, b: 0.1 * W if a == 1 else 2 * W  # type: ignore[method-assign]
    times = _send_all(env, net, [(1, 0), (2, 0)])
    fast = B / (0.9 * W)  # sender 2 at 0.9 W until done; then sender 1 alone at 0.1 W
    slow = fast + (B - 0.1 * W * fast) / (0.1 * W)
    np.testing.assert_allclose(times, [slow, fast], rtol=1e-9)


def _constant(name: str, n: int, **extra) -> dict:
    return {"algorithm.name": name, "nodes": n, "timing.drop_prob": 0.0,
            "timing.compute": {"dist": "constant", "mean": 0.3},
            "timing.message_bytes": B, "timing.bandwidth": 2 * W, **extra}


@pytest.mark.parametrize("straggler", [False, True])
def test_ring_allreduce_round_closed_form(straggler):
    tau, alpha, n = 0.3, 0.02, 8
    sc = scenario(**_constant("allreduce_sgd", n, **{
        "timing.latency": {"dist": "constant", "mean": alpha}, "timing.nic": {"egress": W},
        "timing.stragglers": {"nodes": [3] if straggler else [], "slowdown": 5.0},
        "run.until": 30.0}))
    trace = record_trace(prepare(sc, "allreduce_sgd", sc.seed))
    slowest = 5 * tau if straggler else tau
    beta = min(2 * W, W)
    round_time = slowest + 2 * (n - 1) * (alpha + B / (n * beta))
    k = np.arange(1, len(trace.round_end) + 1)
    assert len(k) == int(30.0 / round_time + 1e-9)
    np.testing.assert_allclose(trace.round_end, k * round_time, rtol=1e-12)


def test_ring_allreduce_counts_each_chunk_when_its_transfer_ends():
    """messages(t) and bytes(t) of a Ring-AllReduce run: n chunks per step, each counted when
    its transfer ends (as a packet through a NIC is), not when the round's draws are made (the
    whole round's chunks had been counted as its computation ended)."""
    tau, alpha, n, until = 0.3, 0.02, 4, 3.0
    sc = scenario(**_constant("allreduce_sgd", n, **{
        "timing.latency": {"dist": "constant", "mean": alpha}, "timing.nic": {"egress": W},
        "run.until": until, "run.sample_every": 0.05}))
    trace = record_trace(prepare(sc, "allreduce_sgd", sc.seed))
    s = B / (n * min(2 * W, W))  # one chunk's transfer
    steps = 2 * (n - 1)
    rnd = tau + steps * (s + alpha)
    ends = np.array([k * rnd + tau + j * (s + alpha) + s
                     for k in range(int(until / rnd) + 1) for j in range(steps)])
    t = trace.sample_time
    clear = np.abs(t[:, None] - ends[None, :]).min(axis=1) > 1e-9  # no tie with a sample
    expected = n * (ends[None, :] <= t[:, None]).sum(axis=1)
    assert clear.sum() > 50
    np.testing.assert_array_equal(trace.sample_messages[clear], expected[clear])
    np.testing.assert_allclose(trace.sample_bytes[clear], expected[clear] * B / n, rtol=1e-12)


def test_dpsgd_ring_rounds_last_tau_plus_two_sends_from_the_first_round():
    tau = 0.3
    sc = scenario(**_constant("dpsgd", 8, **{
        "graphs.undirected": {"kind": "ring"}, "timing.nic": {"egress": W},
        "timing.latency": {"dist": "constant", "mean": 0.0}, "run.until": 20.0}))
    trace = record_trace(prepare(sc, "dpsgd", sc.seed))
    assert len(trace.round_end) > 8 * 30
    np.testing.assert_allclose(trace.round_end - trace.round_start, tau + 2 * B / W,
                               rtol=1e-12)


@pytest.mark.parametrize("barrier", ["neighbour", "global"])
def test_barrier_round_ends_follow_the_max_plus_recurrence(barrier):
    alpha, n = 0.01, 8
    sc = scenario(**_constant("sync_gt", n, **{
        "graphs.pull.kind": "exponential", "graphs.push.kind": "ring",
        "timing.speed": {"dist": "uniform", "low": 0.5, "high": 2.0},
        "timing.latency": {"dist": "constant", "mean": alpha}, "timing.nic": {"egress": W},
        "timing.barrier": barrier, "run.until": 15.0}))
    setup = prepare(sc, "sync_gt", sc.seed)
    trace = record_trace(setup)
    ch = setup.channels
    tau = 0.3 * setup.timing_model().clocks.node_factor  # each node's constant compute time
    outs = [[int(c) for c in ch.out_ch[i] if c >= 0] for i in range(n)]
    send = np.array([len(o) * B / W for o in outs])  # s_i: all of i's sends through its egress
    arrive = {c: (o.index(c) + 1) * B / W + alpha for o in outs for c in o}  # place in j's fifo
    end = np.zeros(n)
    rounds = min(int((trace.round_node == i).sum()) for i in range(n))
    assert rounds > 5
    for k in range(rounds):
        new = end + tau + send
        for c, delta in arrive.items():
            j, i = int(ch.src[c]), int(ch.dst[c])
            new[i] = max(new[i], end[j] + tau[j] + delta)
        end = np.full(n, new.max()) if barrier == "global" else new
        for i in range(n):
            got = trace.round_end[trace.round_node == i][k]
            assert got == pytest.approx(end[i], rel=1e-12, abs=1e-12), (k, i)


def test_neighbour_barrier_rate_lies_between_global_barrier_and_asynchrony():
    n, until = 8, 3000.0
    H_n = sum(1 / k for k in range(1, n + 1))
    rates = {}
    for graph, barrier in (("ring", "neighbour"), ("complete", "neighbour"), ("ring", "global")):
        sc = scenario(**{"algorithm.name": "dpsgd", "nodes": n, "timing.drop_prob": 0.0,
                         "timing.compute": {"dist": "exponential", "mean": 1.0},
                         "timing.latency": {"dist": "constant", "mean": 0.0}, "timing.nic": None,
                         "graphs.undirected": {"kind": graph}, "timing.barrier": barrier,
                         "problem.dim": 1, "run.until": until, "run.sample_every": until})
        trace = record_trace(prepare(sc, "dpsgd", sc.seed))
        rates[graph, barrier] = trace.sample_updates[-1] / until
    global_rate = n / H_n  # every round waits for the slowest of n Exp(1) draws: E = H_n
    assert rates["ring", "global"] == pytest.approx(global_rate, rel=0.04)
    assert rates["complete", "neighbour"] == pytest.approx(global_rate, rel=0.04)
    assert global_rate * 1.1 < rates["ring", "neighbour"] < n


@pytest.mark.parametrize("queue", ["fifo", "latest"])
def test_send_queue_grows_when_demand_exceeds_the_egress(queue):
    # R-FAST on a ring: K_out = 4 channels (2 pull + 2 push); lambda = 2 computations/s;
    # W/B = 5 packets/s leave: a fifo queue grows at lambda K_out - W/B = 3 packets/s
    lam, k_out, until = 2.0, 4, 400.0
    sc = scenario(**{"graphs.pull.kind": "ring", "graphs.push.kind": "ring",
                     "timing.compute": {"dist": "exponential", "mean": 1 / lam},
                     "timing.drop_prob": 0.0, "timing.message_bytes": B,
                     "timing.bandwidth": 10 * W, "timing.nic": {"egress": 5 * B, "queue": queue},
                     "run.until": until, "run.sample_every": 50.0})
    trace = record_trace(prepare(sc, "rfast", sc.seed))
    net = trace.network
    assert net["queue"] == queue
    slope = lam * k_out - 5
    if queue == "fifo":
        # the time-average of a queue growing linearly from 0 is half its end value
        assert net["mean_queue"] == pytest.approx(slope * until / 2, rel=0.1)
        assert net["superseded"] == 0
    else:
        assert net["max_queue"] <= k_out
        assert net["superseded"] == trace.sample_superseded[-1] > 0


def test_links_and_clusters_set_each_links_latency_and_bandwidth():
    sc = scenario(nodes=4, **{
        "timing.drop_prob": 0.0, "timing.bandwidth": 5e8,
        "timing.latency": {"dist": "constant", "mean": 0.01},
        "timing.clusters": {"groups": [[0, 1], [2, 3]],
                            "intra": {"latency": {"dist": "constant", "mean": 0.0002},
                                      "bandwidth": 1.25e9},
                            "inter": {"latency": {"dist": "constant", "mean": 0.03},
                                      "bandwidth": 1.25e8}},
        "timing.links": [{"src": 0, "dst": 3, "latency": {"dist": "constant", "mean": 0.08}}]})
    tm = TimingModel(timing_plan(sc), 0, B)
    # (link) -> (latency, bandwidth): its own entry first, field by field, then its cluster's
    expected = {(0, 1): (0.0002, 1.25e9), (2, 3): (0.0002, 1.25e9), (1, 2): (0.03, 1.25e8),
                (0, 3): (0.08, 1.25e8), (3, 0): (0.03, 1.25e8)}
    for (a, b), (latency, rate) in expected.items():
        assert tm.links.fate(a, b) == (pytest.approx(latency), False)
        assert tm.links.get(a, b).bandwidth == rate


def test_a_links_own_bandwidth_and_latency_set_its_arrival_times():
    tau, alpha = 0.5, 0.08
    sc = scenario(nodes=2, **{
        "graphs.pull": {"kind": "edges", "edges": [[0, 1]]},
        "graphs.push": {"kind": "edges", "edges": [[1, 0]]}, "timing.drop_prob": 0.0,
        "timing.compute": {"dist": "constant", "mean": tau}, "timing.message_bytes": B,
        "timing.nic": {"egress": 1e9}, "run.until": 5.0,
        "timing.links": [{"src": 0, "dst": 1, "bandwidth": W,
                          "latency": {"dist": "constant", "mean": alpha}}]})
    trace = record_trace(prepare(sc, "rfast", sc.seed))
    arrivals = trace.time[trace.is_kind("deliver") & (trace.channel == 0)]
    k = np.arange(1, len(arrivals) + 1)
    np.testing.assert_allclose(arrivals, k * tau + B / W + alpha, rtol=1e-12)


def test_bad_link_entries_are_refused_with_the_field():
    from rfast_sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"timing.links.0: node ids"):
        scenario(nodes=4, **{"timing.links": [{"src": 0, "dst": 9, "bandwidth": 1.0}]})
    with pytest.raises(ScenarioError, match="groups: a node may be in one group only"):
        scenario(nodes=4, **{"timing.clusters": {"groups": [[0, 1], [1, 2]]}})


def test_link_churn_up_fraction_matches_mtbf_over_mtbf_plus_mttr():
    sc = scenario(**{"timing.link_churn": {"mtbf": 10.0, "mttr": 2.0}})
    tm = TimingModel(timing_plan(sc), 0, B)
    times = np.arange(0.0, 40_000.0, 0.5)  # 3 links x 40,000 link-seconds, ~10,000 cycles
    up = np.array([[tm.links.up(a, b, t) for t in times] for a, b in ((0, 1), (1, 2), (5, 3))])
    assert up.mean() == pytest.approx(10.0 / 12.0, abs=0.02)
    # links fail independently: two links' states are uncorrelated
    assert abs(np.corrcoef(up[0], up[1])[0, 1]) < 0.05


def test_packets_leaving_onto_a_link_during_its_outage_are_lost():
    tau, alpha, start, end = 0.5, 0.1, 3.0, 6.0
    sc = scenario(nodes=2, **{
        "graphs.pull": {"kind": "edges", "edges": [[0, 1]]},
        "graphs.push": {"kind": "edges", "edges": [[1, 0]]}, "timing.drop_prob": 0.0,
        "timing.compute": {"dist": "constant", "mean": tau}, "timing.message_bytes": 1.0,
        "timing.latency": {"dist": "constant", "mean": alpha}, "run.until": 10.0,
        "timing.outages": [{"src": 0, "dst": 1, "start": start, "end": end}]})
    trace = record_trace(prepare(sc, "rfast", sc.seed))
    on_link = trace.channel == 0
    left = trace.time - alpha  # constant latency: departure = arrival - alpha (to 1 ns)
    dropped = left[on_link & trace.is_kind("drop")]
    delivered = left[on_link & trace.is_kind("deliver")]
    assert len(dropped) == 6  # the sends at 3.0, 3.5, ..., 5.5
    assert ((dropped >= start - 1e-6) & (dropped < end)).all()
    assert not ((delivered >= start) & (delivered < end - 1e-6)).any()
    assert not trace.is_kind("drop")[trace.channel == 1].any()  # the other link stays up


def test_faults_need_a_finite_run_until():
    from rfast_sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"run\.until: scenarios with faults"):
        scenario(**{"timing.link_churn": {"mtbf": 5.0, "mttr": 1.0}, "run.until": None,
                    "run.max_updates": 100})
