"""Timing from data: compute traces, empirical draws, latency matrices, their errors, sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import BASE, scenario
from typer.testing import CliRunner

from rfast_sim.cli import app
from rfast_sim.experiment.plan import prepare, timing_plan
from rfast_sim.scenario.loading import load_scenario
from rfast_sim.sweeps import expand
from rfast_sim.timing import TimingModel
from rfast_sim.timing.traces import record_trace

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _durations(tmp_path: Path, rows: dict[int, list[float]], name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text("node,duration\n" + "".join(f"{i},{d}\n" for i, ds in rows.items() for d in ds))
    return p


def _per_node(tr) -> dict[int, list[float]]:
    return {i: list(ds) for i, ds in tr.compute_durations.items()}


def test_a_trace_replays_each_nodes_durations_in_order_and_loops(tmp_path):
    rows = {i: [0.5 + 0.1 * i, 1.0 + 0.05 * i, 0.25] for i in range(4)}
    f = _durations(tmp_path, rows)
    sc = scenario(**{"nodes": 4, "graphs.pull.kind": "ring", "graphs.push.kind": "ring",
                     "timing.compute": {"dist": "trace", "file": str(f)}, "run.until": 9.0})
    tr = record_trace(prepare(sc, "rfast", 0))
    for i, ds in _per_node(tr).items():
        assert len(ds) >= 7
        np.testing.assert_allclose(ds, (rows[i] * 10)[: len(ds)], rtol=0, atol=0)
        # compute events are the cumulative sums of the node's rows
        t = tr.time[tr.is_kind("compute") & (tr.node == i)]
        np.testing.assert_allclose(t, np.cumsum(ds)[: len(t)], atol=1e-12)


def test_without_loop_a_node_stops_at_the_end_of_its_rows(tmp_path):
    f = _durations(tmp_path, {i: [1.0, 1.0] for i in range(4)})
    sc = scenario(**{"nodes": 4, "graphs.pull.kind": "ring", "graphs.push.kind": "ring",
                     "timing.compute": {"dist": "trace", "file": str(f), "loop": False},
                     "run.until": 20.0})
    tr = record_trace(prepare(sc, "rfast", 0))
    assert tr.is_kind("compute").sum() == 8
    assert tr.time[tr.is_kind("compute")].max() == pytest.approx(2.0)


def test_empirical_draws_come_from_each_nodes_own_rows(tmp_path):
    rows = {i: [float(i + 1), float(i + 1) * 3] for i in range(4)}
    f = _durations(tmp_path, rows)
    sc = scenario(**{"nodes": 4, "timing.compute": {"dist": "empirical", "file": str(f)},
                     "run.until": 400.0})
    tm = TimingModel(timing_plan(sc), 0, 1.0)
    for i in range(4):
        d = np.array([tm.clocks.next_duration(i) for _ in range(4000)])
        assert set(np.unique(d)) == set(rows[i])
        assert d.mean() == pytest.approx(2 * (i + 1), rel=0.05)  # each row equally likely


def test_a_pooled_file_and_a_latency_matrix(tmp_path):
    pooled = tmp_path / "pool.csv"
    pooled.write_text("duration\n0.5\n1.5\n")
    m = np.arange(16, dtype=float).reshape(4, 4) / 100
    mat = tmp_path / "lat.csv"
    mat.write_text("a,b,c,d\n" + "".join(",".join(str(v) for v in row) + "\n" for row in m))
    sc = scenario(**{"nodes": 4, "timing.compute": {"dist": "empirical", "file": str(pooled)},
                     "timing.latency": {"dist": "matrix", "file": str(mat)}})
    tm = TimingModel(timing_plan(sc), 0, 1.0)
    assert {tm.clocks.next_duration(3) for _ in range(200)} == {0.5, 1.5}
    for a in range(4):
        for b in range(4):
            if a != b:
                assert tm.links.fate(a, b)[0] == m[a, b]
    assert sc.timing.latency.expected() == pytest.approx(m[~np.eye(4, dtype=bool)].mean())


def _scenario_file(tmp_path: Path, timing: dict) -> Path:
    data = {**BASE, "nodes": 4, "timing": {**BASE["timing"], **timing}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(("content", "law", "message"), [
    (None, "trace", "no such file"),
    ("node,duration\n0,1.0\n1,abc\n", "trace", "line 3: duration 'abc' is not a number"),
    ("node,duration\n0,1.0\n1,-2\n", "trace", "line 3: duration must be a finite number >= 0"),
    ("node,duration\n0,1.0\n9,1.0\n", "trace", "node id 9 is out of range 0..3"),
    ("node,duration\n0,1.0\n1,1.0\n", "empirical", "node 2 has no rows"),
    ("node,time\n0,1.0\n", "trace", "line 1: the header must be 'node,duration' or 'duration'"),
    ("node,duration\n0,1.0,3\n", "empirical", "line 2: expected 2 values, got 3"),
    ("0.1,0.2\n0.3,0.4\n", "matrix", "timing.compute.dist: 'matrix' is not allowed here"),
])
def test_bad_trace_files_exit_2_naming_the_file_and_line(tmp_path, content, law, message):
    traces = tmp_path / "traces"
    traces.mkdir()
    if content is not None:
        (traces / "t.csv").write_text(content)
    p = _scenario_file(tmp_path, {"compute": {"dist": law, "file": "traces/t.csv"}})
    result = runner.invoke(app, ["validate", str(p)])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert "t.csv" in err or "not allowed" in err
    assert "Traceback" not in result.output


def test_matrix_size_and_law_placement_are_checked(tmp_path):
    (tmp_path / "m.csv").write_text("0,1\n1,0\n")
    p = _scenario_file(tmp_path, {"latency": {"dist": "matrix", "file": "m.csv"}})
    result = runner.invoke(app, ["validate", str(p)])
    assert result.exit_code == 2
    assert "holds a 2 x 2 matrix; nodes=4 needs 4 x 4" in result.stderr
    p = _scenario_file(tmp_path, {"latency": {"dist": "lognormal", "mean": 0.1,
                                              "file": "m.csv"}})
    assert "only the laws empirical, trace, matrix read a file" in \
        runner.invoke(app, ["validate", str(p)]).stderr


def test_paths_are_relative_to_the_scenario_file_not_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "traces").mkdir()
    _durations(tmp_path / "traces", {i: [1.0] for i in range(4)}, "t.csv")
    p = _scenario_file(tmp_path, {"compute": {"dist": "trace", "file": "traces/t.csv"}})
    monkeypatch.chdir(ROOT)
    sc = load_scenario(p)
    assert Path(sc.timing.compute.file or "") == (tmp_path / "traces/t.csv").resolve()


def test_a_sweep_run_id_changes_with_the_trace_files_content(tmp_path):
    f = _durations(tmp_path, {i: [1.0, 2.0] for i in range(4)})
    data = {**BASE, "nodes": 4,
            "timing": {**BASE["timing"], "compute": {"dist": "trace", "file": str(f)}}}
    spec = {"scenario": data, "grid": {"timing.compute.loop": [True, False]}}
    before = [p.run_id for p in expand(spec)]
    f.write_text(f.read_text() + "0,3.0\n")
    after = [p.run_id for p in expand(spec)]
    assert len(set(before)) == 2
    assert not set(before) & set(after)


def test_the_shipped_trace_matches_its_generating_script(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make", ROOT / "scenarios/traces/make_traces.py")
    assert spec is not None
    assert spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.HERE = tmp_path
    make.main()
    for name in ("devices.csv", "latency_8.csv"):
        assert (tmp_path / name).read_text() == (ROOT / "scenarios/traces" / name).read_text()
