"""Timing-only runs (`problem: null`): the engine alone gives the same counters and network
figures as a run with maths, imports no JAX, and its frame works with plot, summarize and
sweeps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import sweep_and_summarize
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.experiment.metrics import METRIC_COLUMNS
from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.loading import parse_scenario

runner = CliRunner()

BASE = {
    "name": "net", "seed": 5, "seeds": 2, "nodes": 6,
    "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"},
               "undirected": {"kind": "ring"}},
    "timing": {"compute": {"dist": "exponential", "mean": 1.0},
               "stragglers": {"count": 1, "slowdown": 4.0},
               "latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5},
               "bandwidth": 1.0e8, "nic": {"queue": "fifo"}, "message_bytes": 2.0e6,
               "drop_prob": 0.1},
    "problem": {"kind": "least_squares", "dim": 4, "samples_per_node": 10},
    "algorithms": [{"name": a, "step_size": 0.05} for a in
                   ("rfast", "osgp", "adpsgd", "allreduce_sgd", "dpsgd", "sync_gt")],
    "run": {"until": 15.0, "sample_every": 1.0},
}
COUNTERS = ["time", "updates", "messages", "bytes", "dropped", "superseded"]


@pytest.mark.parametrize("engine", ["auto", "simpy"])
def test_a_timing_only_run_has_the_counters_of_the_same_run_with_maths(engine):
    with_maths = rfast_sim.run(parse_scenario({**BASE, "run": {**BASE["run"], "engine": engine}}))
    alone = rfast_sim.run(parse_scenario({**BASE, "problem": None,
                                          "run": {**BASE["run"], "engine": engine}}))
    assert alone.timing_only
    assert not with_maths.timing_only
    for a, b in zip(with_maths.runs, alone.runs, strict=True):
        assert (a.name, a.seed) == (b.name, b.seed)
        for field in ("time", "kind", "node", "peer", "channel", "seq", "dropped",
                      "sample_updates", "sample_messages", "sample_dropped", "sample_bytes",
                      "sample_superseded", "round_start", "round_end"):
            np.testing.assert_array_equal(getattr(a.trace, field), getattr(b.trace, field))
        assert a.trace.network == b.trace.network
    pd.testing.assert_frame_equal(with_maths.network(), alone.network())
    frame = alone.metrics
    pd.testing.assert_frame_equal(
        frame[COUNTERS].reset_index(drop=True),
        with_maths.metrics[COUNTERS].reset_index(drop=True))
    assert frame[list(METRIC_COLUMNS)].isna().all().all()
    assert frame["step_size"].isna().all()


def test_network_figures_follow_from_the_trace():
    res = rfast_sim.run(parse_scenario({**BASE, "problem": None, "seeds": 1}))
    table = res.network().set_index("algorithm")
    for r in res.runs:
        row = table.loc[r.name]
        assert row["updates"] == r.trace.sample_updates[-1]
        assert row["drop_rate"] == pytest.approx(row["dropped"] / row["messages"])
        assert row["node_rate_min"] <= row["node_rate_median"] <= row["node_rate_max"]
        # every update is some node's: the per-node rates add up to the total
        if r.name != "allreduce_sgd":
            assert row["node_rate_median"] > 0
    # the straggler is the slowest node of an asynchronous method
    rf = table.loc["rfast"]
    assert rf["node_rate_min"] < 0.5 * rf["node_rate_median"]
    # a synchronous method reports its rounds; an all-reduce round updates every node
    ar = table.loc["allreduce_sgd"]
    assert ar["node_rate_min"] == ar["node_rate_max"]
    assert ar["mean_round"] > ar["mean_round_comm"] > 0
    assert ar["mean_latency"] > 0  # the ring's chunks are counted like any packet


SCRIPT = textwrap.dedent("""
    import sys
    from typer.testing import CliRunner
    import rfast_sim
    from rfast_sim.cli import app
    from rfast_sim.scenario.loading import load_scenario
    res = rfast_sim.run(load_scenario(sys.argv[1]))
    assert res.timing_only
    out = CliRunner().invoke(app, ["run", sys.argv[1], "--out", sys.argv[2]])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(app, ["plot", sys.argv[2]])
    assert out.exit_code == 0, out.output
    loaded = sorted(m for m in sys.modules if m == "jax" or m.startswith(("jax.", "jaxlib")))
    print("JAX:", loaded)
""")


def test_a_timing_only_run_imports_no_jax(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "problem": None}))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "JAX: []" in proc.stdout
    assert (tmp_path / "out" / "network.csv").exists()
    assert (tmp_path / "out" / "metrics_vs_time.png").exists()


def test_the_cli_prints_the_network_table(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "problem": None}))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "timing only" in result.output
    assert "upd/node/s" in result.output
    assert "speedup" not in result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [row["algorithm"] for row in summary["network"]] == [
        a["name"] for a in BASE["algorithms"]]
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_a_timing_only_sweep_runs_and_summarizes(tmp_path):
    spec = {"scenario": {**BASE, "problem": None, "algorithms": BASE["algorithms"][:2]},
            "grid": {"timing.drop_prob": [0.0, 0.3]}, "seeds": 2}
    out = sweep_and_summarize(tmp_path, spec)
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 4
    lossy = table[table["timing.drop_prob"] == 0.3]
    clean = table[table["timing.drop_prob"] == 0.0]
    assert (clean["dropped"] == 0).all()
    assert (lossy["dropped"] > 0).all()
    assert (table["updates_per_s"] > 0).all()


@pytest.mark.parametrize(("change", "message"), [
    ({"timing": {**BASE["timing"], "message_bytes": "auto"}},
     "timing.message_bytes: auto sizes a packet from the model"),
    ({"run": {**BASE["run"], "mode": "online"}}, "run.mode: online"),
    ({"algorithms": [{"name": "rfast", "step_size": "auto"}]}, "algorithms.step_size: auto"),
])
def test_what_needs_maths_is_refused_in_one_line(tmp_path, change, message):
    data = {**BASE, "problem": None, **change}
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        parse_scenario(data)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
