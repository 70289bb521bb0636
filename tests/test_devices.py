"""Devices and `mean: model`: XLA's cost of a step against closed forms, the roofline, rates on
devices of known step times, the assignment's stream, traces unchanged without devices, bad
input in one line, summary.json and `rfast-sim profile`."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from conftest import scenario
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.cli.profile import implied_efficiency
from rfast_sim.experiment.plan import model_dim, scenario_graphs, timing_plan, timing_setup
from rfast_sim.maths.workload import cost_of, problem_cost, summed_cost
from rfast_sim.scenario import DEVICES, DeviceClass, PeakFlops, ScenarioError
from rfast_sim.scenario.devices import table_class
from rfast_sim.scenario.loading import load_scenario, parse_scenario
from rfast_sim.timing import TimingModel
from rfast_sim.timing.devices import StepCost, assign, compute_rate, roofline
from rfast_sim.timing.traces import record_trace

runner = CliRunner()
DATA = Path(__file__).parent / "data"


# --- the cost of a step -------------------------------------------------------------------------

def _mse_tanh(params: list[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """A dense network with tanh units and a squared loss: nonlinear, so XLA keeps the
    forward pass (a linear loss's gradient would not need it)."""
    h = x
    for w in params:
        h = jnp.tanh(h @ w)
    return jnp.sum((h - y) ** 2)


@pytest.mark.parametrize("widths", [(256, 256), (256, 128, 64)])
def test_cost_analysis_of_dense_layers_is_2bmn_per_matmul(widths):
    """A layer's step is its forward matmul and its weight gradient's, plus its input
    gradient's for every layer but the first: 2 b m n FLOPs each."""
    b = 32
    key = jax.random.key(0)
    params = [jax.random.normal(key, (m, n)) for m, n in itertools.pairwise(widths)]
    x, y = jnp.ones((b, widths[0])), jnp.zeros((b, widths[-1]))
    cost = cost_of(jax.grad(_mse_tanh), params, x, y)
    layers = list(itertools.pairwise(widths))
    closed = sum((2 if k == 0 else 3) * 2 * b * m * n for k, (m, n) in enumerate(layers))
    # the rest is elementwise (tanh, its derivative, the loss): O(b n) per layer, < 3% here
    assert closed <= cost.flops <= 1.03 * closed, (cost.flops, closed)
    assert cost.bytes_accessed >= 4 * sum(m * n for m, n in layers)  # every weight read once


def test_a_cost_analysis_is_read_as_a_dict_or_a_list_of_dicts():
    one = {"flops": 10.0, "bytes accessed": 4.0, "transcendentals": 1.0}
    assert summed_cost(one) == StepCost(10.0, 4.0)
    assert summed_cost([one, {"flops": 5.0}]) == StepCost(15.0, 4.0)  # older JAX versions
    with pytest.raises(ScenarioError, match="gives no cost analysis"):
        summed_cost(None)
    with pytest.raises(ScenarioError, match="gives no cost analysis"):
        summed_cost([])


def test_a_problems_local_step_is_costed_alone_and_cached():
    """The built-in MLP's minibatch gradient (64 -> h -> 10, cross-entropy): two matmuls for
    the first layer, three for the second, at the scenario's batch size."""
    sc = scenario(**{"problem": {"kind": "mlp", "hidden": 256, "batch_size": 32}})
    _, _, cost = problem_cost(sc.problem, sc.nodes, sc.seed, sc.dtype)
    closed = 2 * 32 * (2 * 64 * 256 + 3 * 256 * 10)
    # the rest: tanh units and their derivatives, the softmax, the L2 term over all 19k
    # parameters; O(b h + d), 6.4% at this size
    assert closed <= cost.flops <= 1.08 * closed, (cost.flops, closed)
    again = problem_cost(sc.problem, sc.nodes, sc.seed, sc.dtype)[2]
    assert again is cost  # the same compile key: not analysed again
    single = scenario(**{"problem": {"kind": "mlp", "hidden": 256, "batch_size": 32},
                         "dtype": "float32"})
    f32 = problem_cost(single.problem, single.nodes, single.seed, single.dtype)[2]
    assert f32.flops == pytest.approx(cost.flops, rel=0.01)
    assert f32.bytes_accessed < 0.75 * cost.bytes_accessed  # 4-byte floats


# --- the roofline ---------------------------------------------------------------------------

DEVICE = DeviceClass(name="d", peak_flops=PeakFlops(float32=1e12, float64=2.5e11),
                     memory_bandwidth=1e11, efficiency=0.5, overhead_s=1e-4)


def test_roofline_compute_bound_memory_bound_and_the_overhead():
    compute = roofline(StepCost(flops=1e9, bytes_accessed=1e7), DEVICE, "float32")
    assert compute.bound == "compute"
    assert compute.step_time_s == pytest.approx(1e-4 + (1e9 / 1e12) / 0.5)
    f64 = roofline(StepCost(flops=1e9, bytes_accessed=1e7), DEVICE, "float64")
    assert f64.step_time_s == pytest.approx(1e-4 + (1e9 / 2.5e11) / 0.5)
    memory = roofline(StepCost(flops=1e6, bytes_accessed=1e9), DEVICE, "float32")
    assert memory.bound == "memory"
    assert memory.step_time_s == pytest.approx(1e-4 + (1e9 / 1e11) / 0.5)
    tiny = roofline(StepCost(flops=1.0, bytes_accessed=1.0), DEVICE, "float32")
    assert tiny.step_time_s == pytest.approx(1e-4)  # a tiny model is all overhead
    assert implied_efficiency(StepCost(1e9, 1e7), DEVICE, "float32",
                              compute.step_time_s) == pytest.approx(0.5)


def test_the_table_holds_plain_rates_and_the_t4s_float64_is_1_32():
    assert {"v100", "a100_40gb", "a100_80gb", "h100_sxm", "t4", "cpu"} <= set(DEVICES.names())
    t4 = DEVICES["t4"]
    assert t4.peak_float64 == pytest.approx(t4.peak_float32 / 32)
    assert DEVICES["a100_80gb"].memory_bandwidth > DEVICES["a100_40gb"].memory_bandwidth
    assert DEVICES["a100_40gb"].peak_float32 == 19.5e12  # not TF32's 156e12
    for d in DEVICES:
        assert d.source, d.name
        assert d.overhead_s > 0, d.name
        assert 0 < d.efficiency <= 1, d.name
    assert table_class("a100") == table_class("a100_40gb").model_copy(update={"name": "a100"})


# --- rates on devices of known step times -------------------------------------------------------

COST = StepCost(flops=1e9, bytes_accessed=1.0)
CLASSES = [  # name, count, FLOP/s, efficiency, overhead: m = overhead + 1e9 / peak / efficiency
    {"name": "fast", "count": 2, "peak_flops": {"float32": 1e10, "float64": 1e10},
     "memory_bandwidth": 1e12, "efficiency": 1.0, "overhead_s": 0.0},
    {"name": "mid", "count": 3, "peak_flops": {"float32": 4e9, "float64": 4e9},
     "memory_bandwidth": 1e12, "efficiency": 1.0, "overhead_s": 0.05},
    {"name": "slow", "default": True, "peak_flops": {"float32": 4e9, "float64": 4e9},
     "memory_bandwidth": 1e12, "efficiency": 0.25, "overhead_s": 0.0},
]
MEANS = {"fast": 0.1, "mid": 0.3, "slow": 1.0}  # written out from the formula


def _device_scenario(**over: Any) -> Any:
    return scenario(**{"devices": CLASSES, "timing.compute": {"dist": "constant",
                                                              "mean": "model"},
                       "timing.latency": {"dist": "constant", "mean": 0.0},
                       "timing.drop_prob": 0.0, "timing.nic": None,
                       "timing.message_bytes": 1.0, "timing.bandwidth": 1e12, **over})


def test_asynchronous_rates_are_one_over_each_nodes_step_time():
    until = 20.05  # no finish at the run's end itself (accumulated times straddle it)
    sc = _device_scenario(**{"run.until": until})
    setup = timing_setup(sc, "rfast", 0, dim=5, step_cost=COST)
    trace = record_trace(setup)
    per_node = np.bincount(trace.node[trace.is_kind("compute")], minlength=8)
    means = np.array([MEANS[name] for name in assign(timing_plan(sc), 0)])
    # constant laws: node i finishes at m_i, 2 m_i, ...: floor(until / m_i) updates
    np.testing.assert_array_equal(per_node, np.floor(until / means))
    total_rate = sum(k / MEANS[c["name"]] for c, k in zip(CLASSES, (2, 3, 3), strict=True))
    assert per_node.sum() / until == pytest.approx(total_rate, rel=0.02)
    assert compute_rate(timing_plan(sc), COST) == pytest.approx(total_rate)
    classes = assign(timing_plan(sc), 0)
    assert setup.device_nodes == {name: [i for i, d in enumerate(classes) if d == name]
                                  for name in MEANS}


def test_a_global_barrier_round_lasts_the_slowest_devices_step():
    sc = _device_scenario(**{"timing.barrier": "global", "run.until": 10.0,
                             "graphs.undirected": {"kind": "ring"}})
    trace = record_trace(timing_setup(sc, "dpsgd", 0, dim=5, step_cost=COST))
    lengths = trace.round_end - trace.round_start
    assert len(lengths)
    assert np.allclose(lengths, max(MEANS.values()), atol=1e-9)


def test_both_trace_builders_agree_on_devices():
    """The devices are per-node factors of the compute law: the vector builder and SimPy see
    the same durations, event for event."""
    sc = _device_scenario(**{"timing.compute": {"dist": "lognormal", "mean": "model",
                                                "sigma": 0.5},
                             "timing.latency": {"dist": "exponential", "mean": 0.01},
                             "run.until": 10.0})
    traces = [record_trace(timing_setup(sc.model_copy(update={"run": sc.run.model_copy(
        update={"engine": engine})}), "rfast", 1, dim=5, step_cost=COST))
        for engine in ("simpy", "vector")]
    assert [t.network["engine"] for t in traces] == ["simpy", "vector"]
    for name in ("kind", "node", "peer", "channel", "dropped"):
        np.testing.assert_array_equal(getattr(traces[0], name), getattr(traces[1], name))
    np.testing.assert_allclose(traces[0].time, traces[1].time, rtol=1e-12, atol=1e-12)


def test_stragglers_compose_with_devices():
    sc = _device_scenario(**{"timing.stragglers": {"nodes": [0], "slowdown": 5.0}})
    tm = TimingModel(timing_plan(sc), 0, 1.0, COST)
    name = assign(timing_plan(sc), 0)[0]
    assert tm.clocks.node_factor[0] == pytest.approx(5.0 * MEANS[name])
    assert tm.clocks.next_duration(0) == pytest.approx(5.0 * MEANS[name])
    with pytest.raises(ScenarioError, match="mean: model needs the step's cost"):
        TimingModel(timing_plan(sc), 0, 1.0)


# --- the assignment's stream, and traces without devices ----------------------------------------

def test_devices_come_from_their_own_stream():
    explicit = [{"name": "t4", "nodes": [6, 7]}, {"name": "a100", "count": 4},
                {"name": "cpu", "default": True}]
    sc = scenario(**{"devices": explicit, "timing.compute.mean": "model",
                     "timing.stragglers": {"count": 2}})
    first = assign(timing_plan(sc), 3)
    assert first == assign(timing_plan(sc), 3)  # deterministic
    assert first[6:] == ["t4", "t4"]
    assert first.count("a100") == 4
    assert first.count("cpu") == 2
    assert any(assign(timing_plan(sc), s) != first for s in range(4, 10))  # drawn per seed
    plain = scenario(**{"timing.stragglers": {"count": 2}})
    for seed in range(5):  # the "nodes" stream (stragglers) is not moved by the devices
        mine = TimingModel(timing_plan(sc), seed, 1.0, COST).clocks.straggler_nodes
        assert mine == TimingModel(timing_plan(plain), seed, 1.0).clocks.straggler_nodes


def _fingerprints(name: str) -> dict[str, str]:
    sc = load_scenario(name, ["run.until=3", "seeds=1"])
    graphs = scenario_graphs(sc, [a.name for a in sc.algorithm_list])
    out = {}
    for a in sc.algorithm_list:
        for engine in ("simpy", "vector"):
            s = sc.model_copy(update={"run": sc.run.model_copy(update={"engine": engine})})
            try:
                trace = record_trace(timing_setup(s, a.name, s.seed, graphs,
                                                  dim=model_dim(sc) or None))
            except ScenarioError:  # the vector builder does not cover it
                continue
            h = hashlib.sha256()
            for f in ("time", "kind", "node", "peer", "channel", "slot", "seq", "dropped",
                      "sent_slots"):
                h.update(np.ascontiguousarray(getattr(trace, f)).tobytes())
            out[f"{a.name}/{engine}"] = h.hexdigest()[:16]
    return out


@pytest.mark.parametrize("name", ["quickstart", "compare_heterogeneity", "compare_stragglers",
                                  "faults_churn", "paper/mlp_straggler"])
def test_traces_without_devices_are_bit_identical_to_before_devices(name):
    """Recorded on the code before devices existed (tests/data/trace_fingerprints.json): every
    event's time, kind, node, peer, channel, slot and fate, bit for bit, on both builders."""
    before = json.loads((DATA / "trace_fingerprints.json").read_text())[name]
    assert _fingerprints(name) == before


# --- a NIC per device class ------------------------------------------------------------------

def _nic_scenario(**over: Any) -> Any:
    """Two nodes; node 0 is on a slow NIC (1 MB/s, 0.2 s links), node 1 on the scenario's
    (1 GB/s, 0.01 s); compute times are typed (devices set only the NICs here)."""
    return scenario(**{"nodes": 2, "graphs.pull": {"kind": "complete"},
                       "graphs.push": {"kind": "complete"},
                       "devices": [{"name": "cpu", "nodes": [0], "nic": {
                           "bandwidth": 1e6, "latency": {"dist": "constant", "mean": 0.2}}},
                           {"name": "t4", "default": True}],
                       "timing.compute": {"dist": "constant", "mean": 1.0},
                       "timing.latency": {"dist": "constant", "mean": 0.01},
                       "timing.bandwidth": 1e9, "timing.drop_prob": 0.0,
                       "timing.nic": {"queue": "fifo"}, "timing.message_bytes": 1e6,
                       "run.until": 2.5, **over})


def test_a_device_class_nic_sets_its_nodes_egress_and_link_latency():
    trace = record_trace(timing_setup(_nic_scenario(), "rfast", 0, dim=5))
    deliver = trace.is_kind("deliver")
    arrivals = {src: np.sort(trace.time[deliver & (trace.peer == src)]) for src in (0, 1)}
    # both compute at t = 1 and send their packets (one per channel) through their egress:
    # 1e6 bytes at 1 MB/s then 0.2 s of latency from node 0; at 1 GB/s and 0.01 s from node 1
    assert arrivals[0][0] == pytest.approx(1.0 + 1e6 / 1e6 + 0.2)
    assert arrivals[1][0] == pytest.approx(1.0 + 1e6 / 1e9 + 0.01)
    assert arrivals[1][1] == pytest.approx(1.0 + 2 * 1e6 / 1e9 + 0.01)  # queued behind
    links = TimingModel(timing_plan(_nic_scenario(**{"timing.links": [
        {"src": 0, "dst": 1, "bandwidth": 5e5}]})), 0, 1e6).links
    assert links.get(0, 1).bandwidth == 5e5  # a link's own entry comes first
    assert links.get(1, 0).rate == 1e9
    plain = TimingModel(scenario(), 0, 1e6).links
    assert plain.egress(0) is None


def test_vectorised_link_rates_equal_each_links_own_rate():
    """A class whose NIC sets no bandwidth (``nic: {}``) falls back to the scenario's egress
    in the vector builder's batched rates as in SimPy's per-link ones (a NaN rate once made
    every packet of such a run vanish from the vector trace)."""
    sc = _nic_scenario(**{"devices": [
        {"name": "cpu", "nodes": [0], "nic": {"bandwidth": 1e6}},
        {"name": "t4", "default": True, "nic": {}}], "timing.nic": {"egress": 5e8}})
    links = TimingModel(timing_plan(sc), 0, 1e6).links
    src, dst = np.array([0, 1]), np.array([1, 0])
    np.testing.assert_array_equal(links.rates(src, dst), [links.get(0, 1).rate,
                                                          links.get(1, 0).rate])
    assert links.get(1, 0).rate == 5e8
    assert links.get(0, 1).rate == 1e6
    trace = record_trace(timing_setup(sc.model_copy(update={"run": sc.run.model_copy(
        update={"engine": "vector"})}), "rfast", 0, dim=5))
    assert trace.is_kind("deliver").sum() > 0


def test_devices_with_typed_compute_times_need_a_nic():
    with pytest.raises(ScenarioError, match="and links through nic"):
        parse_scenario({"devices": [{"name": "t4", "default": True}]})
    assert _nic_scenario().timing.compute.mean == 1.0


# --- bad input: one line, naming the field and the fix ------------------------------------------

MODEL = {"timing": {"compute": {"dist": "lognormal", "mean": "model", "sigma": 0.3}}}
BAD = [
    ({**MODEL, "devices": [{"name": "a1000", "count": 8}]},
     "devices.0.name: unknown device 'a1000'; did you mean a100"),
    ({**MODEL, "devices": [{"name": "t4", "count": 5}, {"name": "v100", "count": 4}]},
     "devices.1: the entries give 9 devices (counts and nodes) for nodes=8"),
    ({**MODEL, "devices": [{"name": "t4", "count": 5}]}, "devices: 3 of the 8 nodes have no "
     "device"),
    ({**MODEL, "devices": [{"name": "mine", "default": True, "memory_bandwidth": 1e9,
                            "peak_flops": {"float32": -1.0, "float64": 1e9}}]},
     "devices.0.peak_flops.float32: must be > 0 (got -1.0)"),
    ({**MODEL, "problem": None, "devices": [{"name": "t4", "default": True}],
      "timing": {**MODEL["timing"], "message_bytes": 100.0}},
     "timing.compute.mean: model times the problem's local step, and a timing-only run"),
    (MODEL, "timing.compute.mean: model needs the nodes' devices"),
    ({"devices": [{"name": "t4", "default": True}]}, "devices: device classes set compute "
     "times through timing.compute.mean: model"),
    ({**MODEL, "devices": [{"name": "t4", "count": 4, "nodes": [1]}]},
     "devices.0: give one of count, nodes or default: true (got count, nodes)"),
    ({**MODEL, "devices": [{"name": "t4", "nodes": [9]}, {"name": "cpu", "default": True}]},
     "devices.0.nodes: node ids must be in 0..7"),
    ({"timing": {"compute": {"mean": "modle"}}},
     "timing.compute.mean: must be seconds (a number) or model (got 'modle')"),
    ({"timing": {"compute": {"dist": "uniform", "mean": "model", "low": 0.1, "high": 0.3}},
      "devices": [{"name": "t4", "default": True}]}, "timing.compute.low: with mean: model"),
]


@pytest.mark.parametrize(("data", "expected"), BAD)
def test_bad_devices_are_refused_in_one_line(tmp_path, data, expected):
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"nodes": 8, **data})
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"nodes": 8, **data}))
    for command in ("validate", "run", "profile"):
        out = runner.invoke(app, [command, str(path)])
        assert out.exit_code == 2, out.output
        assert expected in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


# --- a run's summary.json, validate and profile ----------------------------------------------

def test_a_run_records_each_device_class(tmp_path):
    slow = [{"name": "t4", "count": 3, "overhead_s": 0.5},
            {"name": "mine", "default": True, "peak_flops": {"float32": 1e6, "float64": 1e6},
             "memory_bandwidth": 1e12, "overhead_s": 0.5}]
    sc = scenario(**{"devices": slow, "timing.compute": {"dist": "gamma", "mean": "model"},
                     "run.until": 10.0, "problem.batch_size": 4})
    result = rfast_sim.run(sc)
    summary = json.loads((result.save(tmp_path) / "summary.json").read_text())
    records = {d["name"]: d for d in summary["devices"]}
    assert set(records) == {"t4", "mine"}
    assert records["t4"]["nodes"] == 3
    assert records["mine"]["nodes"] == 5
    cost = problem_cost(sc.problem, sc.nodes, sc.seed, sc.dtype)[2]
    for d in records.values():
        assert set(d) == {"name", "dtype", "flops", "bytes", "step_time_s", "bound", "nodes"}
        assert d["flops"] == cost.flops
        assert d["bytes"] == cost.bytes_accessed
    assert records["mine"]["bound"] == "compute"
    assert records["mine"]["step_time_s"] == pytest.approx(0.5 + cost.flops / 1e6)
    assert records["t4"]["step_time_s"] == pytest.approx(0.5, rel=1e-3)  # all overhead
    nodes = summary["runs"][0]["device_nodes"]
    assert sorted(nodes["t4"] + nodes["mine"]) == list(range(8))
    assert len(nodes["t4"]) == 3
    assert "devices" not in json.loads((rfast_sim.run(scenario(**{"run.until": 2.0})).save(
        tmp_path / "plain") / "summary.json").read_text())


def test_online_and_replay_see_the_same_device_times():
    """Online mode (one jitted call per SimPy event, the reference) draws its compute times
    from the same per-node factors."""
    slow = [{"name": "mine", "default": True, "peak_flops": {"float32": 1e6, "float64": 1e6},
             "memory_bandwidth": 1e12, "overhead_s": 0.5}]
    sc = scenario(**{"devices": slow, "timing.compute": {"dist": "exponential",
                                                         "mean": "model"},
                     "run.until": 8.0, "problem.batch_size": 4})
    replay = rfast_sim.run(sc).metrics
    online = rfast_sim.run(sc, mode="online").metrics
    np.testing.assert_array_equal(replay["updates"], online["updates"])
    np.testing.assert_allclose(replay["loss"], online["loss"], rtol=1e-9)


def test_validate_and_profile_a_shipped_device_scenario():
    out = runner.invoke(app, ["validate", "devices_mixed"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["profile", "devices_mixed", "--json", "--repeats", "5"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert set(report) == {"model", "devices", "measured"}
    assert report["model"]["parameters"] == 4810
    assert report["model"]["message_bytes"] == 4810 * 8
    names = [(d["name"], d["where"]) for d in report["devices"]]
    assert names == [*((n, "table") for n in DEVICES.names()), ("a100_40gb", "scenario"),
                     ("t4", "scenario")]
    for d in report["devices"]:
        assert {"name", "dtype", "flops", "bytes", "step_time_s", "bound"} <= set(d)
        assert d["flops"] == report["model"]["flops"]
        assert d["bound"] in ("compute", "memory")
    cpu = report["measured"]["cpu"]
    assert cpu["repeats"] == 5
    assert 0 < cpu["min_s"] <= cpu["median_s"]
    assert cpu["table_entry"] == "cpu"
    assert math.isfinite(cpu["implied_efficiency"] or 0.0)
    text = runner.invoke(app, ["profile", "devices_mixed", "--repeats", "3"])
    assert text.exit_code == 0
    assert "t4" in text.stdout
    assert "measured on cpu" in text.stdout


def test_profile_times_the_step_of_a_scenario_too_big_to_run():
    """profile builds the problem and the timing plan only: a run's memory estimate or its
    graphs' conditions do not concern one step (validate refuses what profile times)."""
    big = ["--set", "run.until=1e9", "--set", "nodes=512"]
    assert runner.invoke(app, ["validate", "quickstart", *big]).exit_code == 2
    out = runner.invoke(app, ["profile", "quickstart", *big, "--json", "--repeats", "3"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["model"]["problem"] == "logistic"
