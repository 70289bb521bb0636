"""The command line: bad inputs give exit code 2 and one line naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rfast_sim.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


BAD = [
    ("name: x\nnodes: 4\nnodez: 3\n", "nodez: unknown key; did you mean 'nodes'?"),
    ("nodes: four\n", "nodes:"),
    ("timing:\n  latency: {dist: lognormal, mean: -1}\n",
     "timing.latency.mean: must be >= 0 (got -1)"),
    ("timing:\n  drop_prob: 1.5\n", "timing.drop_prob: must be < 1 (got 1.5)"),
    ("", "the scenario is empty"),
    ("nodes: [1, 2\n", "malformed YAML"),
    ("graphs:\n  pull: {kind: edges, edges: [[0, 1]]}\n  push: {kind: edges, edges: [[1, 0]]}\n"
     "nodes: 3\n", "share no common root"),
    ("algorithm: {name: rfats}\n", "did you mean rfast"),
    ("timing:\n  compute: {dist: gaussian}\n", "timing.compute.dist: must be one of"),
    ("problem: {kind: least_squares, batch_size: 0}\n", "problem.batch_size: must be >= 1"),
    ("algorithms: [{name: dpsgd}]\ngraphs: {pull: {kind: exponential}}\n",
     "graphs.pull: dpsgd need(s) an undirected graph"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_input_gives_exit_2_and_one_line(tmp_path, text, expected, command):
    result = runner.invoke(app, [command, str(_write(tmp_path, text))])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert expected in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_file(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such scenario file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_override():
    result = runner.invoke(app, ["validate", str(ROOT / "scenarios/quickstart.yaml"),
                                 "--set", "timing.drop_prob=2"])
    assert result.exit_code == 2
    assert "timing.drop_prob: must be < 1 (got 2)" in result.stderr


def test_validate_checks_several_scenarios_one_line_each(tmp_path):
    """Several scenarios in one call: one line each, exit 2 if any is refused (a bad one
    does not hide the verdict on the others)."""
    bad = _write(tmp_path, "timing:\n  drop_prob: 1.5\n")
    result = runner.invoke(app, ["validate", "quickstart", str(bad), "faults_churn"])
    assert result.exit_code == 2, result.output
    assert [line.split(":")[0] for line in result.stdout.strip().splitlines()] == [
        "quickstart", "faults_churn"]
    (err,) = result.stderr.strip().splitlines()
    assert str(bad) in err
    assert "timing.drop_prob: must be < 1 (got 1.5)" in err
    good = runner.invoke(app, ["validate", "quickstart", "faults_churn"])
    assert good.exit_code == 0, good.output
    assert good.stdout.count(": ok (") == 2


@pytest.mark.long
def test_run_writes_outputs_and_resolved_scenario_reruns_identically(tmp_path):
    out = tmp_path / "quick"
    args = ["run", str(ROOT / "scenarios/quickstart.yaml"), "--out", str(out),
            "--set", "run.until=20", "--set", "nodes=6"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("metrics.parquet", "scenario.yaml", "summary.json", "comparison.csv"):
        assert (out / name).exists()
    df = pd.read_parquet(out / "metrics.parquet")
    for col in ("algorithm", "seed", "time", "updates", "messages", "dropped", "loss",
                "opt_gap", "grad_norm", "consensus", "accuracy"):
        assert col in df.columns
    assert yaml.safe_load((out / "scenario.yaml").read_text())["nodes"] == 6
    again = runner.invoke(app, ["run", str(out / "scenario.yaml"), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert pd.read_parquet(tmp_path / "b" / "metrics.parquet").equals(df)


def test_list_names_everything():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for word in ("exponential", "pareto", "logistic", "rfast", "osgp", "quickstart",
                 "paper/mlp_straggler", "one_peer_exponential", "gilbert_elliott", "empirical",
                 "trace", "matrix", "churn", "faults_trace_cluster"):
        assert word in result.output


@pytest.mark.long
def test_compare_run_writes_table_and_plot_makes_pngs(tmp_path):
    out = tmp_path / "cmp"
    result = runner.invoke(app, [
        "run", str(ROOT / "scenarios/compare_packet_loss.yaml"), "--out", str(out),
        "--set", "run.until=30", "--set", "seeds=2", "--set", "compare.target={opt_gap: 0.01}",
        "--set",
        "algorithms=[{name: rfast, step_size: [1, 2]}, {name: allreduce_sgd, step_size: 1},"
        " {name: osgp, step_size: 0.5}]"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["algorithm"]) == ["rfast", "allreduce_sgd", "osgp"]
    for col in ("time_to_target", "updates", "messages", "bytes", "dropped", "final_opt_gap",
                "speedup", "step_size", "reached", "reached_fraction"):
        assert col in table.columns
    # the 0.2 name stays readable one more release, equal to the one name
    assert table["time_to_opt_gap"].equals(table["time_to_target"])
    assert table["reached"].str.fullmatch(r"\d/2").all()  # k/n, as the terminal table
    # the speed-up, recomputed here from the metrics: time from which opt_gap stays <= 0.01
    metrics = pd.read_parquet(out / "metrics.parquet")
    best = table.set_index("algorithm")["step_size"]

    def settle(name: str) -> float:  # the median over seeds, a miss counting as inf
        times = []
        for _, run in metrics[(metrics.algorithm == name)
                              & (metrics.step_size == best[name])].groupby("seed"):
            above = run["time"][~(run["opt_gap"] <= 0.01)]
            later = run["time"][run["time"] > above.max()] if len(above) else run["time"]
            times.append(float(later.min()) if len(later) else float("inf"))
        return float(np.median(times))

    expected = settle("allreduce_sgd") / settle("rfast")
    assert table.set_index("algorithm").loc["rfast", "speedup"] == pytest.approx(expected)
    assert set(pd.read_parquet(out / "metrics.parquet")["algorithm"]) == {"rfast",
                                                                          "allreduce_sgd", "osgp"}
    plotted = runner.invoke(app, ["plot", str(out)])
    assert plotted.exit_code == 0, plotted.output
    for name in ("metrics_vs_time.png", "metrics_vs_updates.png"):
        assert (out / name).stat().st_size > 10_000
