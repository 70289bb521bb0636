"""Node faults: churn and outages (closed forms), what a down node does, resets, barriers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

from rfast_sim.experiment.plan import prepare, timing_plan
from rfast_sim.maths.online import run_online
from rfast_sim.scenario import ScenarioError
from rfast_sim.timing import TimingModel, engine
from rfast_sim.timing.engine.trace import LOST_SENDER
from rfast_sim.timing.topology import ROLE_PUSH
from rfast_sim.timing.traces import record_trace


def _down_time(tm: TimingModel, n: int, until: float) -> float:
    return sum(min(b, until) - a for p in tm.faults.down.values() for a, b in p.spans()
               if a < until)


def test_churn_up_fraction_matches_mtbf_over_mtbf_plus_mttr():
    until, n = 20_000.0, 8  # 160,000 node-seconds, about 8,000 failures
    sc = scenario(**{"nodes": n, "run.until": until,
                     "timing.churn": {"mtbf": 16.0, "mttr": 4.0}})
    tm = TimingModel(timing_plan(sc), 0, 1.0)
    up = 1 - _down_time(tm, n, until) / (n * until)
    assert up == pytest.approx(16.0 / 20.0, rel=0.02)
    # mean down period = mttr, from the periods themselves
    lengths = [b - a for p in tm.faults.down.values() for a, b in p.spans() if b < until]
    assert np.mean(lengths) == pytest.approx(4.0, rel=0.05)


def test_async_update_rate_is_n_lambda_times_the_up_fraction():
    # exponential compute times are memoryless: a node that is up computes at rate lambda, the
    # computations cut by a failure are lost, so the network rate is n * lambda * up fraction
    until, n, mean = 15_000.0, 8, 2.0  # 120,000 node-seconds
    sc = scenario(**{"nodes": n, "run.until": until, "run.sample_every": until / 4,
                     "graphs.pull.kind": "directed_ring", "graphs.push.kind": "directed_ring",
                     "timing.nic": None, "timing.drop_prob": 0.0,
                     "timing.compute": {"dist": "exponential", "mean": mean},
                     "timing.churn": {"mtbf": 12.0, "mttr": 3.0}})
    tr = record_trace(prepare(sc, "rfast", 0))
    up = 1 - _down_time(TimingModel(timing_plan(sc), 0, 1.0), n, until) / (n * until)
    rate = tr.is_kind("compute").sum() / until
    assert rate == pytest.approx(n / mean * up, rel=0.02)
    assert up == pytest.approx(0.8, rel=0.02)


def _faulty(**extra):
    over = {"nodes": 6, "graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
            "timing.drop_prob": 0.0, "run.until": 80.0,
            "timing.churn": {"mtbf": 6.0, "mttr": 2.0},
            "timing.outages": [{"node": 3, "start": 20.0, "end": 45.0}]}
    over.update(extra)
    return scenario(**over)


def test_a_down_node_neither_computes_nor_receives_and_loses_its_send_queue():
    sc = _faulty(**{"timing.message_bytes": 1e6, "timing.bandwidth": 2e6})  # queues build up
    tr = record_trace(prepare(sc, "rfast", 0))
    down = tr.node_down
    assert set(down) == set(range(6))
    assert any(a <= 20.0 and b >= 45.0 for a, b in down[3])  # the explicit outage is in it

    def is_down(i: int, t: float) -> bool:
        return any(a <= t < b for a, b in down.get(i, []))

    comp = np.flatnonzero(tr.is_kind("compute"))
    assert not any(is_down(int(tr.node[e]), float(tr.time[e])) for e in comp)
    deliv = np.flatnonzero(tr.is_kind("deliver"))
    assert not any(is_down(int(tr.node[e]), float(tr.time[e])) for e in deliv)
    # packets to a down node are recorded as lost, and so are the unsent ones of a failed node
    drops = np.flatnonzero(tr.is_kind("drop"))
    assert any(is_down(int(tr.node[e]), float(tr.time[e])) for e in drops)
    assert sum(is_down(int(tr.peer[e]), float(tr.time[e])) for e in drops) > 0
    assert tr.sample_dropped[-1] == tr.dropped.sum()  # every loss counted, whatever its cause
    assert tr.network["resets"] == 0


def _residual(state, push: np.ndarray) -> np.ndarray:
    z, g = np.asarray(state.nodes.z), np.asarray(state.nodes.g)
    pending = np.asarray(state.chans.rho)[push] - np.asarray(state.chans.rho_tilde)[push]
    return z.sum(0) + pending.sum(0) - g.sum(0)


@pytest.mark.parametrize("nic", [True, False])
@pytest.mark.parametrize("name", ["dpsgd", "sync_gt"])
def test_a_resent_packet_that_leaves_counts_in_messages_and_bytes(name, nic):
    """A synchronous packet lost in its sender's queue (the sender went down) is resent after
    a timeout; when a resent copy leaves, it is on the wire like any other (the resent copies
    had been missed: D-PSGD counted 125 of the 149 with a NIC). A packet counts when its
    transfer ends with a NIC, when it is sent without: messages and bytes are the packet log's
    rows that got that far."""
    sc = _faulty(**{"graphs.pull.kind": "ring", "graphs.push.kind": "ring",
                    "algorithm.name": name, "timing.message_bytes": 1e6,
                    "timing.bandwidth": 2e6, "timing.nic": {"egress": 2e6} if nic else None,
                    "timing.retransmit_timeout": 0.5, "timing.drop_prob": 0.1})
    tr = record_trace(prepare(sc, name, 0), packets=True)
    log = tr.packets
    went = log.left if nic else np.where(log.fate == LOST_SENDER, np.nan, log.started)
    counted = np.isfinite(went) & (went <= sc.run.until)
    # a copy lost in its sender's queue whose resent copy then left
    lost_first = {(c, s) for c, s, f in zip(log.channel, log.seq, log.fate, strict=True)
                  if f == LOST_SENDER}
    resent = [(c, s) in lost_first for c, s in zip(log.channel[counted], log.seq[counted],
                                                   strict=True)]
    assert sum(resent) > 5
    assert tr.sample_messages[-1] == counted.sum()
    assert tr.sample_bytes[-1] == pytest.approx(counted.sum() * 1e6)


def test_invariant_holds_through_node_churn_and_outages_with_rejoin_keep():
    sc = _faulty(**{"timing.drop_prob": 0.2})
    setup = prepare(sc, "rfast", 0)
    push = np.asarray(setup.channels.role) == ROLE_PUSH
    worst = [0.0]

    def after(ev: engine.Event, state) -> None:
        worst[0] = max(worst[0], float(np.abs(_residual(state, push)).max()))

    run = run_online(setup, 0.05, after_event=after)
    assert run.trace.dropped.sum() > 50
    assert len(run.trace.node_down) == 6
    assert worst[0] < 1e-9


def test_a_reset_moves_the_invariant_by_exactly_what_the_node_loses():
    # rejoin: reset restarts node i from its initial row (x0, tracker = first gradient) and
    # clears what it holds: its receive buffers and absorbed sums (in-channels) and its
    # outgoing running sums. The invariant then moves by the change of i's own ledger
    # L_i = z_i - g_i - sum_in rho_tilde + sum_out rho (computed here from i's rows). R-FAST
    # keeps L_i = 0 at every event, and a reset puts it back to 0: the jump is zero, even though
    # the node's model, tracker and sums really are lost (checked too).
    sc = _faulty(**{"timing.drop_prob": 0.2,
                    "timing.churn": {"mtbf": 6.0, "mttr": 2.0, "rejoin": "reset"}})
    setup = prepare(sc, "rfast", 0)
    ch = setup.channels
    push = np.asarray(ch.role) == ROLE_PUSH
    prev: dict[str, np.ndarray] = {}
    errors: list[float] = []
    lost: list[float] = []

    def snapshot(state) -> dict[str, np.ndarray]:
        return {"x": np.array(state.nodes.x), "z": np.array(state.nodes.z),
                "g": np.array(state.nodes.g), "rho": np.array(state.chans.rho),
                "rt": np.array(state.chans.rho_tilde), "res": _residual(state, push)}

    def ledger(s: dict[str, np.ndarray], i: int) -> np.ndarray:
        ins, outs = push & (ch.dst == i), push & (ch.src == i)
        return s["z"][i] - s["g"][i] - s["rt"][ins].sum(0) + s["rho"][outs].sum(0)

    def after(ev: engine.Event, state) -> None:
        now = snapshot(state)
        if prev:
            jump = now["res"] - prev["res"]
            expected = ledger(now, ev.node) - ledger(prev, ev.node) \
                if ev.kind == engine.RESET else 0.0
            errors.append(float(np.abs(jump - expected).max()))
            if ev.kind == engine.RESET:
                i = ev.node
                lost.append(min(float(np.abs(now["x"][i] - prev["x"][i]).max()),
                                float(np.abs(prev["rho"][push & (ch.src == i)]).max())))
                errors.append(float(np.abs(ledger(now, i)).max()))  # and L_i = 0 after it
        prev.update(now)

    run = run_online(setup, 0.05, after_event=after)
    assert run.trace.network["resets"] >= 5
    # (a node reset again before it computed has nothing left to lose)
    assert sum(v > 1e-3 for v in lost) >= 5, "resets must really lose models and running sums"
    assert max(errors) < 1e-9


def test_a_barrier_waits_for_a_down_member_unless_it_times_out():
    # ring of 4, constant compute 1 s, node 0 down 5.5..20.5 (its round-5 computation is lost)
    base = {"nodes": 4, "graphs.undirected": {"kind": "ring"}, "algorithm.name": "dpsgd",
            "timing.compute": {"dist": "constant", "mean": 1.0},
            "timing.latency": {"dist": "constant", "mean": 0.01}, "timing.drop_prob": 0.0,
            "timing.nic": None, "run.until": 30.0,
            "timing.outages": [{"node": 0, "start": 5.5, "end": 20.5}]}
    waits = record_trace(prepare(scenario(**base), "dpsgd", 0))
    t_wait = waits.time[waits.is_kind("compute")]
    assert not ((t_wait > 8.0) & (t_wait < 21.0)).any()  # everyone is stuck behind node 0
    # node 0 redoes its lost computation when back (20.5 + 1); its neighbours follow a
    # latency later with their next one
    n_wait = waits.node[waits.is_kind("compute")]
    assert t_wait[(n_wait == 0) & (t_wait > 6)].min() == pytest.approx(21.5, abs=1e-9)
    assert t_wait[(n_wait == 1) & (t_wait > 7)].min() == pytest.approx(22.51, abs=1e-6)  # +B/W
    timed = record_trace(prepare(scenario(**{**base, "timing.barrier_timeout": 0.5}), "dpsgd", 0))
    node, t = timed.node[timed.is_kind("compute")], timed.time[timed.is_kind("compute")]
    during = (t > 8.0) & (t < 20.0)
    assert not (during & (node == 0)).any()
    # node 0's neighbours give up on it after 0.5 s each round: period tau + timeout = 1.5 s
    # (node 2, which waits for them only, keeps the same pace)
    for i in (1, 2, 3):
        np.testing.assert_allclose(np.diff(t[during & (node == i)]), 1.5, atol=1e-9)


def test_all_reduce_waits_until_every_member_is_up():
    base = {"nodes": 4, "algorithm.name": "allreduce_sgd", "timing.drop_prob": 0.0,
            "timing.compute": {"dist": "constant", "mean": 1.0},
            "timing.latency": {"dist": "constant", "mean": 0.0}, "timing.nic": None,
            "timing.bandwidth": 1e15, "run.until": 30.0,
            "timing.outages": [{"node": 2, "start": 3.5, "end": 10.0}]}
    tr = record_trace(prepare(scenario(**base), "allreduce_sgd", 0))
    # rounds end at 1, 2, 3; node 2's fourth computation is cut at 3.5 and redone 10..11
    np.testing.assert_allclose(tr.round_end[:5], [1.0, 2.0, 3.0, 11.0, 12.0], atol=1e-9)


@pytest.mark.parametrize(("over", "field"), [
    ({"timing.outages": [{"node": 9, "start": 1.0}]}, "timing.outages.0.node"),
    ({"timing.outages": [{"node": 1, "src": 0, "dst": 1, "start": 1.0}]}, "node"),
    ({"timing.outages": [{"src": 0, "start": 1.0}]}, "node"),
    ({"timing.churn": {"mtbf": 5.0, "mttr": 1.0}, "run.until": None, "run.max_updates": 10},
     "run.until"),
    ({"timing.churn": {"mtbf": 0.0, "mttr": 1.0}}, "mtbf"),
    ({"timing.churn": {"mtbf": 5.0}}, "give mtbf and mttr together"),
    ({"timing.churn": {"mtbf": 5.0, "mttr": 1.0, "rejoin": "later"}}, "rejoin"),
    ({"timing.barrier_timeout": -1.0}, "barrier_timeout"),
])
def test_bad_fault_entries_name_the_field(over, field):
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        scenario(**over)


def test_a_reset_is_recorded_even_when_the_node_was_only_waiting_at_a_barrier():
    # node 0 computes 0..1, then waits for its 5x slower neighbour 1 until about 5; it is down
    # 2..3, inside that wait: no computation is lost, but with rejoin: reset its state is
    base = {"nodes": 4, "graphs.undirected": {"kind": "ring"}, "algorithm.name": "dpsgd",
            "timing.compute": {"dist": "constant", "mean": 1.0},
            "timing.stragglers": {"nodes": [1], "slowdown": 5.0}, "timing.drop_prob": 0.0,
            "timing.outages": [{"node": 0, "start": 2.0, "end": 3.0}],
            "timing.churn": {"rejoin": "reset"}, "run.until": 8.0}  # no random failures
    tr = record_trace(prepare(scenario(**base), "dpsgd", 0))
    resets = tr.is_kind("reset")
    assert list(zip(tr.node[resets], tr.time[resets], strict=True)) == [(0, 3.0)]
    comp = tr.is_kind("compute") & (tr.node == 0)
    np.testing.assert_allclose(tr.time[comp][:1], [1.0])  # its first computation was not cut
