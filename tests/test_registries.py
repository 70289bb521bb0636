"""One place per concept: the kind registries, algorithm info without building, and the
timing quantities every trace builder shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml
from conftest import scenario
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.experiment import budget
from rfast_sim.experiment.plan import prepare, timing_plan
from rfast_sim.maths.algorithms import make
from rfast_sim.scenario import GRAPH_KINDS, LAWS, LOSS_MODELS, GraphKind, ScenarioError, registry
from rfast_sim.timing import TimingModel, transfer_rate
from rfast_sim.timing.topology import build_graph
from rfast_sim.timing.traces import record_trace

runner = CliRunner()


def _skip_ring(spec, n, role, seed):  # i -> i + 1 and i -> i + 2 (mod n): strongly connected
    g = nx.DiGraph()
    g.add_edges_from((i, (i + h) % n) for i in range(n) for h in (1, 2))
    return g


@pytest.fixture
def skip_ring():
    GRAPH_KINDS.register(GraphKind("skip_ring", "i -> i+1 and i -> i+2", _skip_ring,
                                   lambda spec, n: (2 * n, 2)))
    yield
    GRAPH_KINDS.unregister("skip_ring")


def test_a_new_graph_kind_is_one_registry_entry(skip_ring, tmp_path):
    sc = scenario(**{"graphs.pull": {"kind": "skip_ring"}, "graphs.push": {"kind": "skip_ring"},
                     "run.until": 20.0})
    # the builder, the memory estimate, the run and `rfast-sim list` all see it
    g = build_graph(sc.graphs.pull, 8, role="pull")
    assert sorted(d for _, d in g.out_degree()) == [2] * 8
    assert budget.estimate(sc).channels == 2 * (2 * 8)
    res = rfast_sim.run(sc)
    assert res.runs[0].trace.is_kind("deliver").any()
    listed = runner.invoke(app, ["list"])
    assert "skip_ring" in listed.stdout
    assert "i -> i+1 and i -> i+2" in listed.stdout
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "nodes": 6, "graphs": {
        "pull": {"kind": "skip_ring"}, "push": {"kind": "skip_ring"}}}))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


def test_unknown_kinds_name_the_field_and_the_known_ones():
    for key, value, family in [("graphs.pull", {"kind": "rign"}, "ring"),
                               ("timing.compute", {"dist": "gausian"}, "exponential"),
                               ("timing.loss", {"model": "gilbert"}, "gilbert_elliott")]:
        with pytest.raises(ScenarioError) as err:
            scenario(**{key: value, **({"timing.drop_prob": None} if "loss" in key else {})})
        assert "must be one of" in str(err.value)
        assert family in str(err.value)
    with pytest.raises(ScenarioError, match=r"set by timing\.drop_prob"):
        scenario(**{"timing.drop_prob": None, "timing.loss": {"model": "bernoulli"}})


def test_every_registered_kind_has_a_builder_and_a_description():
    for kind in GRAPH_KINDS:
        assert kind.description
        assert callable(kind.build())
        assert kind.size(scenario().graphs.pull, 16)[0] > 0 or kind.name == "edges"
    for law in LAWS:
        assert law.description
        assert law.reads_file or law.name == "constant" or law.build()
    for model in LOSS_MODELS:
        assert model.description
        assert callable(model.build())


def test_one_peer_exponential_validates_from_the_command_line(tmp_path):
    # the memory estimate reads the graph kinds' registry: no kind can be missing from it
    path = tmp_path / "one_peer.yaml"
    path.write_text(yaml.safe_dump({"name": "op", "nodes": 16, "graphs": {
        "pull": {"kind": "one_peer_exponential"}, "push": {"kind": "exponential"}},
        "algorithm": {"name": "rfast", "step_size": 0.05}, "run": {"until": 10.0}}))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "memory estimate" in result.stdout
    for kind in GRAPH_KINDS.names():
        spec = {"kind": kind, **({"edges": [[0, 1], [1, 0]]} if kind == "edges" else {})}
        budget.estimate(scenario(**{"graphs.pull": spec}))


def test_algorithm_info_is_read_without_building_or_importing_jax():
    info = registry.info("rfast")
    assert (info.pattern, info.graphs, info.supersedes) == ("all", ("pull", "push"), True)
    assert registry.info("adpsgd").pattern == "one"
    code = ("import sys; from rfast_sim.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['list']); assert r.exit_code == 0, r.output; "
            "assert 'R-FAST' in r.stdout; assert 'jax' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
    setup = prepare(scenario(), "rfast", 0)
    assert setup.algorithm.info is info
    assert make("osgp", setup.ops).info is registry.info("osgp")


def _draws(tm: TimingModel, scalar: bool, k: int) -> tuple:
    if scalar:
        d = [tm.clocks.next_duration(2) for _ in range(k)]
        c = [tm.clocks.choose(1, 5) for _ in range(k)]
        f = [tm.links.fate(0, 1) for _ in range(k)]
        return np.array(d), np.array(c), np.array([x[0] for x in f]), np.array([x[1] for x in f])
    lat, lost = tm.links.fates(0, 1, k)
    return tm.clocks.durations(2, k), tm.clocks.choices(1, k, 5), lat, lost


@pytest.mark.parametrize("loss", ["bernoulli", "gilbert_elliott"])
def test_scalar_draws_are_the_batched_functions_values(loss):
    over = {"timing.stragglers": {"prob": 0.2, "slowdown": 3.0}}
    if loss == "gilbert_elliott":
        over.update({"timing.drop_prob": None, "timing.loss": {"p_good_bad": 0.2}})
    sc = scenario(**over)
    one = _draws(TimingModel(timing_plan(sc), 7, 8.0), True, 1500)
    many = _draws(TimingModel(timing_plan(sc), 7, 8.0), False, 1500)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    mixed = TimingModel(timing_plan(sc), 7, 8.0)  # some one by one, then the rest in one call
    head = [mixed.links.fate(0, 1) for _ in range(37)]
    lat, lost = mixed.links.fates(0, 1, 1500 - 37)
    np.testing.assert_array_equal(np.r_[[h[0] for h in head], lat], many[2])
    np.testing.assert_array_equal(np.r_[[h[1] for h in head], lost], many[3])


def test_link_churn_periods_do_not_depend_on_the_order_of_queries():
    sc = scenario(**{"timing.link_churn": {"mtbf": 3.0, "mttr": 1.0}, "run.until": 100.0})
    times = np.linspace(0, 100, 401)
    forward, backward = TimingModel(timing_plan(sc), 3, 8.0), TimingModel(timing_plan(sc), 3, 8.0)
    up_f = [forward.links.up(0, 1, t) for t in times]
    up_b = [backward.links.up(0, 1, t) for t in times[::-1]][::-1]
    assert up_f == up_b
    assert any(up_f)
    assert not all(up_f)
    spans = forward.links.down_periods(100.0)[(0, 1)]
    down = [any(a <= t < b for a, b in spans) for t in times]
    assert down == [not u for u in up_f]


def test_transfer_rate_is_the_link_capped_by_the_nic():
    nic = scenario(**{"timing.bandwidth": 1e9, "timing.nic": {"egress": 4e8, "ingress": 1e8}})
    assert transfer_rate(5e8, nic.timing) == 4e8  # egress caps the link
    assert transfer_rate(2e8, nic.timing) == 2e8
    assert transfer_rate(5e8, nic.timing, alone=True) == 1e8  # all-reduce: alone on ingress
    free = scenario(**{"timing.nic": None})
    assert transfer_rate(5e8, free.timing, alone=True) == 5e8


def test_vector_and_simpy_report_the_same_network_figures():
    sc = scenario(**{"timing.nic": {"egress": 2e4}, "timing.message_bytes": 1000.0,
                     "run.until": 30.0})
    setup = prepare(sc, "rfast", 0)
    figures = []
    for engine in ("simpy", "vector"):
        s = prepare(sc.model_copy(update={"run": sc.run.model_copy(update={"engine": engine})}),
                    "rfast", 0)
        figures.append(record_trace(s).network)
    simpy_fig, vec_fig = figures
    assert setup.straggler_nodes == []
    assert simpy_fig.keys() - {"engine", "engine_reason"} == vec_fig.keys() - {
        "engine", "engine_reason"}
    for key in ("packets", "max_queue", "queue", "resets", "superseded"):
        assert simpy_fig[key] == vec_fig[key], key
    for key in ("mean_queue", "mean_queueing_delay", "mean_transfer_delay", "mean_latency"):
        assert simpy_fig[key] == pytest.approx(vec_fig[key], rel=1e-9), key
