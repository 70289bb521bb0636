"""Wave replay: levels are correct, waves equal the sequential replay (1e-12) and online (1e-9)
for every algorithm, and each algorithm's read/write declaration holds."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import scenario
from hypothesis import HealthCheck, given, settings
from scenario_strategies import materialize, scenarios

import rfast_sim
from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.algorithms import make
from rfast_sim.maths.algorithms.base import Algorithm
from rfast_sim.maths.layout import bucket, build_layout, wave_layout
from rfast_sim.maths.levels import access_masks, levels
from rfast_sim.maths.online import run_online
from rfast_sim.maths.replay import run_replay
from rfast_sim.maths.setup import Setup
from rfast_sim.scenario import ScenarioError, registry
from rfast_sim.scenario.loading import parse_scenario
from rfast_sim.timing import engine
from rfast_sim.timing.traces import record_trace

LOSSY = {"nodes": 16, "timing.drop_prob": 0.3, "run.until": 25.0, "run.sample_every": 2.5,
         "graphs.pull.kind": "exponential", "graphs.push.kind": "exponential"}
UNDIRECTED = {"graphs.undirected": {"kind": "grid"}}
RESETS = {"timing.churn": {"mtbf": 8.0, "mttr": 2.0, "rejoin": "reset"}, "run.engine": "simpy"}
ONE_PEER = {"graphs.pull.kind": "one_peer_exponential",
            "graphs.push.kind": "one_peer_exponential"}
LATEST = {"timing.nic": {"egress": 2e3, "queue": "latest"}, "problem.dim": 5,
          "timing.bandwidth": 1e9}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("rfast", {}),
    ("rfast", RESETS),
    ("rfast", ONE_PEER),
    ("rfast", {"graphs.schedule": [{"at": 8.0, "push": {"kind": "one_peer_exponential"}},
                                   {"at": 16.0, "pull": {"kind": "ring"}}]}),
    ("rfast", LATEST),
    ("rfast", {**RESETS, **ONE_PEER}),
    ("rfast_nonrobust", {**RESETS}),
    ("rfast_nonrobust", ONE_PEER),
    ("osgp", {"timing.drop_prob": 0.05}),
    ("osgp", {"timing.drop_prob": 0.05, **RESETS}),
    ("adpsgd", UNDIRECTED),
    ("adpsgd", {**UNDIRECTED, **RESETS}),
    ("dpsgd", {**UNDIRECTED, "timing.barrier_timeout": 0.3, "timing.retransmit_timeout": 0.5}),
    ("dpsgd", {**UNDIRECTED, **RESETS, "timing.barrier_timeout": 0.5}),
    ("sync_gt", {}),
    ("allreduce_sgd", {}),
]


def with_replay(setup: Setup, mode: str) -> Setup:
    run = setup.plan.run.model_copy(update={"replay": mode})
    return dataclasses.replace(setup, plan=dataclasses.replace(setup.plan, run=run))


def _close(a: Any, b: Any, tol: float) -> None:
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(1.0, float(np.nanmax(np.abs(y), initial=0.0)))
        np.testing.assert_allclose(x, y, rtol=0, atol=tol * scale, equal_nan=True)


@pytest.mark.parametrize(("name", "over"), CASES,
                         ids=[f"{n}-{'-'.join(k.split('.')[-1] for k in o) or 'lossy'}"
                              for n, o in CASES])
def test_waves_equal_the_sequential_replay_and_online(name, over):
    sc = scenario(**{**LOSSY, **over, "algorithm.name": name})
    setup = prepare(sc, name, 0)
    trace = record_trace(setup)
    (seq,) = run_replay([with_replay(setup, "sequential")], [0.05], [trace])
    (wav,) = run_replay([with_replay(setup, "waves")], [0.05], [trace])
    info = wav.extra["replay"]
    if name == "allreduce_sgd":  # rounds stay one event per step
        assert info["driver"] == "sequential"
    else:
        assert info["driver"] == "waves"
        assert 0 < info["levels"] < len(trace)
    if "timing.churn" in over:
        assert trace.is_kind("reset").sum() >= 3
    if "timing.nic" in over:
        assert trace.network["superseded"] > 0
    _close(wav.metrics, seq.metrics, 1e-12)
    _close(wav.final_state, seq.final_state, 1e-12)
    online = run_online(setup, 0.05)
    _close(online.metrics, wav.metrics, 1e-9)


@pytest.mark.long
def test_vmapped_seeds_and_step_sizes_by_waves_equal_single_runs():
    sc = scenario(**{**LOSSY, "run.replay": "waves"})
    setups = [prepare(sc, "rfast", s) for s in (0, 1, 2)]
    batched = run_replay(setups, [0.02, 0.05], vmap_seeds=True)
    looped = run_replay(setups, [0.02, 0.05], vmap_seeds=False)
    seq = run_replay([with_replay(s, "sequential") for s in setups], [0.02, 0.05])
    for a, b, c in zip(batched, looped, seq, strict=True):
        assert a.extra["replay"]["driver"] == "waves"
        _close(a.metrics, c.metrics, 1e-12)
        _close(b.metrics, c.metrics, 1e-12)


# ---- levels: an independent check on small traces ------------------------------------------

def _resources(alg: Algorithm, setup: Setup, trace: engine.EventTrace, state: Any,
               ) -> list[tuple[int, set, set]]:
    """(trace index, reads, writes) of each math event, from the declarations and the trace
    alone (packets by the computation that last wrote the slot, in trace order)."""
    nf, cf = state.nodes._fields, state.chans._fields
    acc = alg.access
    ch = setup.channels
    writer: dict[int, tuple[int, int]] = {}  # slot -> packet (compute index, position)
    out: list[tuple[int, set, set]] = []
    last_sample = np.flatnonzero(trace.is_kind("sample")).max()
    fresh_seen: dict[int, int] = {}
    for e in range(last_sample):
        kind = int(trace.kind[e])
        if kind in (engine.COMPUTE, engine.RESET):
            i = int(trace.node[e])
            rows = {"node": [("n", i)],
                    "in": [("c", int(c)) for c in ch.in_ch[i] if c >= 0],
                    "out": [("c", int(c)) for c in ch.out_ch[i] if c >= 0]}
            if kind == engine.RESET:
                reads: set = set()
                writes = {(*r, f) for r in rows["node"] for f in nf}
                writes |= {(*r, f) for r in rows["in"] for f in cf if f not in alg.sender_fields}
                writes |= {(*r, f) for r in rows["out"] for f in cf if f in alg.sender_fields}
            else:
                def expand(names: tuple[str, ...], rows: dict = rows) -> set:
                    return {(*r, name.split(".")[1]) for name in names
                            for r in rows[name.split(".")[0]]}
                reads, writes = expand(acc.compute.reads), expand(acc.compute.writes)
                for k, s in enumerate(trace.out_slots[e]):
                    if s >= 0:
                        writes.add(("p", e, k))
                        writer[int(s)] = (e, k)
            out.append((e, reads, writes))
        elif kind == engine.DELIVER:
            c = int(trace.channel[e])
            seq = int(trace.seq[e])
            stale = seq <= fresh_seen.get(c, -1)
            fresh_seen[c] = max(seq, fresh_seen.get(c, -1))
            packet = writer[int(trace.slot[e])]
            if stale and alg.supersedes:
                continue  # changes nothing: left out
            rows = {"dst": [("n", int(ch.dst[c]))], "src": [("n", int(ch.src[c]))],
                    "chan": [("c", c)]}

            def expand_d(names: tuple[str, ...], rows: dict = rows) -> set:
                return {(*r, name.split(".")[1]) for name in names
                        for r in rows[name.split(".")[0]]}
            out.append((e, expand_d(acc.receive.reads) | {("p", *packet)},
                        expand_d(acc.receive.writes)))
    return out


def _laid_out_levels(setup: Setup, trace: engine.EventTrace) -> tuple[dict[int, int], Any]:
    alg = setup.algorithm
    sched, (steps,) = build_layout([trace], False)
    st = jax.eval_shape(alg.init, setup.env(0.05), jax.random.PRNGKey(0))
    masks = access_masks(alg, st.nodes._fields, st.chans._fields)
    ch = setup.channels
    lv = levels(sched, steps, ch.in_ch, ch.out_ch, ch.src, ch.dst, masks,
                bucket(trace.num_slots), alg.supersedes)
    # the layout keeps deliveries in trace order: map positions back to trace indices
    by_event = {int(steps.c_index[q]): int(lv.c_level[q]) for q in np.flatnonzero(steps.c_active)}
    last_sample = np.flatnonzero(trace.is_kind("sample")).max()
    d_events = [e for e in np.flatnonzero(trace.is_kind("deliver")) if e < last_sample]
    positions = np.flatnonzero(steps.d_active)
    assert len(positions) == len(d_events)
    order = np.argsort(positions)
    for e, pos in zip(d_events, positions[order], strict=True):
        by_event[int(e)] = int(lv.d_level[pos])
    return by_event, (sched, steps, lv)


@pytest.mark.parametrize(("name", "over"), [
    ("rfast", {}), ("rfast", RESETS), ("osgp", {"timing.drop_prob": 0.05}),
    ("adpsgd", UNDIRECTED), ("dpsgd", {**UNDIRECTED, "timing.barrier_timeout": 0.3}),
])
def test_levels_respect_every_conflict_and_one_level_holds_no_conflict(name, over):
    sc = scenario(**{**LOSSY, "nodes": 8, "run.until": 12.0, "run.sample_every": 3.0, **over,
                     "algorithm.name": name})
    setup = prepare(sc, name, 0)
    trace = record_trace(setup)
    level, _ = _laid_out_levels(setup, trace)
    st = jax.eval_shape(setup.algorithm.init, setup.env(0.05), jax.random.PRNGKey(0))
    events = _resources(setup.algorithm, setup, trace, st)
    assert {e for e, _, _ in events} == {e for e, lv in level.items() if lv > 0}
    sample_pos = np.flatnonzero(trace.is_kind("sample"))
    checked = 0
    for a in range(len(events)):
        ea, ra, wa = events[a]
        for b in range(a + 1, len(events)):
            eb, rb, wb = events[b]
            conflict = bool(wa & (rb | wb) or ra & wb)
            if conflict:
                assert level[eb] > level[ea], (ea, eb)
                checked += 1
            if level[eb] == level[ea]:  # one level: independent, and in one metric segment
                assert not conflict, (ea, eb)
                assert np.searchsorted(sample_pos, ea) == np.searchsorted(sample_pos, eb)
    assert checked > 100
    # and as low as that allows: each event sits right above its highest conflicting
    # predecessor or its segment's floor (the highest level of the segments before)
    floor = {}
    for e, _, _ in events:
        seg = int(np.searchsorted(sample_pos, e))
        floor[seg + 1] = max(floor.get(seg + 1, 0), level[e])
    for b, (eb, rb, wb) in enumerate(events):
        seg = int(np.searchsorted(sample_pos, eb))
        below = [level[ea] for ea, ra, wa in events[:b] if wa & (rb | wb) or ra & wb]
        assert level[eb] == 1 + max([max(floor.get(k, 0) for k in range(seg + 1)), *below])


def test_reallocated_slots_never_hold_two_packets_at_once():
    sc = scenario(**{**LOSSY, "run.until": 30.0})
    setup = prepare(sc, "rfast", 0)
    trace = record_trace(setup)
    _, (sched, steps, lv) = _laid_out_levels(setup, trace)
    _, (ws,), stats = wave_layout(sched, [steps], [lv], 4, 8)  # narrow waves: many steps
    held: dict[int, list[tuple[int, int]]] = {}
    sent_at: dict[int, list[int]] = {}
    for s in range(ws.c_node.shape[0]):
        for col in np.flatnonzero(ws.c_active[s]):
            for slot in ws.c_out_slots[s, col]:
                if slot >= 0:
                    sent_at.setdefault(int(slot), []).append(s)
    for s in range(ws.d_channel.shape[0]):
        for col in np.flatnonzero(ws.d_active[s]):
            slot = int(ws.d_slot[s, col])
            start = max(x for x in sent_at[slot] if x < s)  # its packet: the last write before
            held.setdefault(slot, []).append((start + 1, s))  # writes land a step late
    assert stats.steps > stats.levels
    for spans in held.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start > end
    # and no write lands in a slot while its packet waits to be read
    for slot, spans in held.items():
        for s in sent_at[slot]:
            assert not any(a <= s + 1 <= b and s + 1 != a for a, b in spans)


# ---- the declarations ---------------------------------------------------------------------

DECLARED = ["rfast", "rfast_nonrobust", "osgp", "adpsgd", "dpsgd", "sync_gt"]


def _setup(name: str) -> Setup:
    over = UNDIRECTED if registry.info(name).graphs == ("gossip",) else {}
    return prepare(scenario(**{**LOSSY, **over, "algorithm.name": name}), name, 0)


def _perturb(rows: Any, keep: set[str], key: jax.Array) -> Any:
    return type(rows)(*(v if f in keep else v + jax.random.normal(
        jax.random.fold_in(key, k), v.shape, v.dtype) for k, (f, v) in
        enumerate(zip(rows._fields, rows, strict=True))))


def _random_state(alg: Algorithm, env: Any) -> Any:
    st = alg.init(env, jax.random.PRNGKey(1))
    leaves, tree = jax.tree_util.tree_flatten(st)
    key = jax.random.PRNGKey(2)
    return jax.tree_util.tree_unflatten(tree, [
        x + 0.5 + jax.random.uniform(jax.random.fold_in(key, k), x.shape, x.dtype)
        for k, x in enumerate(leaves)])


@pytest.mark.parametrize("name", DECLARED)
def test_each_declaration_holds_perturbing_what_is_not_read_changes_nothing(name):
    setup = _setup(name)
    alg = setup.algorithm
    assert alg.access is not None
    env = setup.env(0.05)
    st = _random_state(alg, env)
    ch = setup.channels
    kinds = {"compute": alg.access.compute, "receive": alg.access.receive}
    for row in ("node", "in", "out", "dst", "src", "chan"):
        names = {n.split(".")[1] for a in kinds.values() for n in a.reads + a.writes
                 if n.split(".")[0] == row}
        fields = st.nodes._fields if row in ("node", "dst", "src") else st.chans._fields
        assert names <= set(fields), (row, names)

    def reads(kind: str, row: str) -> set[str]:
        return {n.split(".")[1] for n in kinds[kind].reads if n.split(".")[0] == row}

    def writes(kind: str, row: str) -> tuple[str, ...]:
        return tuple(sorted(n.split(".")[1] for n in kinds[kind].writes
                            if n.split(".")[0] == row))

    def take(arrays: Any, idx: Any) -> Any:
        return type(arrays)(*(a[jnp.maximum(idx, 0)] for a in arrays))

    key = jax.random.PRNGKey(3)
    for i in range(4):
        node = jax.tree_util.tree_map(lambda a, i=i: a[i], st.nodes)
        ins, outs = take(st.chans, ch.in_ch[i]), take(st.chans, ch.out_ch[i])
        base = alg.on_compute(env, jnp.int32(i), key, node, ins, outs)
        for w, row in zip(base[:3], ("node", "in", "out"), strict=True):
            assert tuple(sorted(w._fields)) == writes("compute", row), (row, w._fields)
        other = alg.on_compute(env, jnp.int32(i), key,
                               _perturb(node, reads("compute", "node"), key),
                               _perturb(ins, reads("compute", "in"), key),
                               _perturb(outs, reads("compute", "out"), key))
        for x, y in zip(jax.tree_util.tree_leaves(base), jax.tree_util.tree_leaves(other),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for c in range(0, ch.num, max(1, ch.num // 6)):
        a, b = int(ch.src[c]), int(ch.dst[c])
        payload = jax.random.normal(key, (alg.payload_width,), env.data.x0.dtype)
        for fresh in (True, False):
            row = lambda arrays, k: type(arrays)(*(x[k] for x in arrays))  # noqa: E731
            dst, src, chan = row(st.nodes, b), row(st.nodes, a), row(st.chans, c)
            base = alg.on_receive(env, jnp.int32(c), payload, jnp.bool_(fresh), dst, src, chan)
            for w, r in zip(base, ("dst", "src", "chan"), strict=True):
                assert tuple(sorted(w._fields)) == writes("receive", r), (r, w._fields)
            other = alg.on_receive(env, jnp.int32(c), payload, jnp.bool_(fresh),
                                   _perturb(dst, reads("receive", "dst"), key),
                                   _perturb(src, reads("receive", "src"), key),
                                   _perturb(chan, reads("receive", "chan"), key))
            for x, y in zip(jax.tree_util.tree_leaves(base), jax.tree_util.tree_leaves(other),
                            strict=True):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_declaration_that_misses_a_read_is_caught_by_the_perturbation():
    # the perturbation test can fail: R-FAST's computation does read its absorbed sums
    setup = _setup("rfast")
    alg, env = setup.algorithm, setup.env(0.05)
    st = _random_state(alg, env)
    ch = setup.channels
    node = jax.tree_util.tree_map(lambda a: a[0], st.nodes)
    ins = type(st.chans)(*(a[jnp.maximum(ch.in_ch[0], 0)] for a in st.chans))
    outs = type(st.chans)(*(a[jnp.maximum(ch.out_ch[0], 0)] for a in st.chans))
    key = jax.random.PRNGKey(0)
    base = alg.on_compute(env, jnp.int32(0), key, node, ins, outs)
    other = alg.on_compute(env, jnp.int32(0), key, node, _perturb(ins, {"recv"}, key), outs)
    assert not np.array_equal(np.asarray(base.node.z), np.asarray(other.node.z))


def test_an_algorithm_without_a_declaration_falls_back_to_whole_rows():
    info = registry.AlgorithmInfo("rfast_undeclared", "all", ("pull", "push"),
                                  supersedes=True)

    def factory(ops: Any) -> Algorithm:
        return dataclasses.replace(make("rfast", ops), info=info, access=None)

    registry.register(info, factory)
    sc = scenario(**{**LOSSY, "algorithm.name": "rfast_undeclared"})
    setup = prepare(sc, "rfast_undeclared", 0)
    st = jax.eval_shape(setup.algorithm.init, setup.env(0.05), jax.random.PRNGKey(0))
    masks = access_masks(setup.algorithm, st.nodes._fields, st.chans._fields)
    assert all(m.all() for m in (masks.node_r, masks.in_r, masks.in_w, masks.out_w,
                                 masks.chan_r, masks.dst_w, masks.src_w))
    trace = record_trace(setup)
    (seq,) = run_replay([with_replay(setup, "sequential")], [0.05], [trace])
    (wav,) = run_replay([with_replay(setup, "waves")], [0.05], [trace])
    declared = run_replay([with_replay(prepare(scenario(**LOSSY), "rfast", 0), "waves")],
                          [0.05], [trace])[0]
    _close(wav.metrics, seq.metrics, 1e-12)
    # whole rows conflict more: more levels than R-FAST's declaration gives
    assert wav.extra["replay"]["levels"] > declared.extra["replay"]["levels"]


@pytest.mark.long
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=scenarios(max_nodes=12, max_algorithms=2))
def test_waves_equal_sequential_on_generated_scenarios(data, tmp_path_factory):
    data = materialize(data, tmp_path_factory.mktemp("draw"))
    data["run"]["mode"] = "replay"
    try:
        sc = parse_scenario(data)
        runs = {m: rfast_sim.run(sc.model_copy(update={"run": sc.run.model_copy(
            update={"replay": m})})) for m in ("sequential", "waves")}
    except ScenarioError:
        return  # a refusal (tested in test_valid_scenarios) is not this test's subject
    if sc.problem is None:
        return  # a timing-only run replays nothing
    tol = 1e-5 if sc.dtype == "float32" else 1e-12
    for a, b in zip(runs["waves"].runs, runs["sequential"].runs, strict=True):
        rounds = registry.info(a.name).pattern == "sync_allreduce"  # one round per step
        assert a.extra["replay"]["driver"] == ("sequential" if rounds else "waves")
        _close(a.metrics, b.metrics, tol)


def test_summary_records_the_driver_levels_and_wave_width():
    sc = scenario(**{**LOSSY, "run.replay": "waves"})
    summary = rfast_sim.run(sc).summary()["runs"][0]["replay"]
    assert summary["driver"] == "waves"
    assert summary["reason"] == "run.replay: waves"
    assert summary["levels"] > 0
    assert summary["mean_wave_width"] > 1
    auto = rfast_sim.run(scenario(**LOSSY)).summary()["runs"][0]["replay"]
    assert auto["driver"] == "sequential"
    assert auto["reason"].startswith("auto: ")


def test_run_replay_is_a_checked_field():
    with pytest.raises(ScenarioError, match=r"run\.replay"):
        parse_scenario({"run": {"replay": "wave"}})
