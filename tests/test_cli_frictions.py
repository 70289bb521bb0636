"""What a researcher meets in the first hour: each friction found trying the tool as a new user
does (issue 26), with a regression test; in-process through typer's runner where possible."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.cli.common import _Count, print_table
from rfast_sim.experiment.metrics import comparison_table
from rfast_sim.paper import _write_markdown, verdict
from rfast_sim.scenario.loading import load_scenario, shipped_dir

runner = CliRunner()


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def _bad(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    return line


def test_version():
    assert _ok(["--version"]).stdout.strip() == f"rfast-sim {rfast_sim.__version__}"


def test_list_writes_plurals_right():
    out = _ok(["list"]).stdout
    assert "losses:" in out
    assert "losss" not in out


def test_a_value_where_a_block_is_expected_suggests_the_blocks_key():
    line = _bad(["validate", "quickstart", "--set", "graphs.pull=ring"])
    assert "did you mean graphs.pull.kind=ring?" in line
    assert "valid dictionary" not in line
    assert "did you mean timing.compute.dist=lognormal?" in _bad(
        ["validate", "quickstart", "--set", "timing.compute=lognormal"])


@pytest.mark.parametrize("command", ["run", "validate", "show"])
def test_a_misspelt_shipped_name_gets_a_did_you_mean(command):
    assert "did you mean quickstart?" in _bad([command, "quickstrat"])


def test_run_on_a_sweep_file_points_to_sweep():
    line = _bad(["run", "sweep_stragglers"])
    assert "this is a sweep file" in line
    assert "use rfast-sim sweep sweep_stragglers" in line


def test_a_shipped_sweep_runs_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a checkout: the name must come from the package
    out = _ok(["sweep", "sweep_when_async_pays", "--dry-run"]).stdout
    assert "36 points" in out  # 3 message sizes x 2 slowdowns x 2 queues x 3 seeds


def test_a_sweeps_base_may_name_a_shipped_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text("base: quickstart\ngrid: {nodes: [4, 6]}\n")
    out = _ok(["sweep", "mine.yaml", "--dry-run"]).stdout
    assert "2 points" in out
    assert "yes" in out
    assert "no:" not in out
    Path("typo.yaml").write_text("base: quickstrat\ngrid: {nodes: [4, 6]}\n")
    assert "did you mean quickstart?" in _bad(["sweep", "typo.yaml", "--dry-run"])


@pytest.mark.parametrize("name", ["quickstart", "paper/mlp_straggler", "sweep_stragglers"])
def test_show_prints_the_shipped_file_to_edit(tmp_path, name):
    text = _ok(["show", name]).stdout
    assert text == (shipped_dir() / f"{name}.yaml").read_text()
    assert isinstance(yaml.safe_load(text), dict)
    if not name.startswith("sweep"):
        (tmp_path / "mine.yaml").write_text(text)
        assert "ok" in _ok(["validate", str(tmp_path / "mine.yaml")]).stdout


def test_progress_never_shows_none_and_a_piped_run_prints_lines(tmp_path):
    task = SimpleNamespace(total=None, completed=0)
    assert str(_Count("runs").render(task)) == "preparing"  # type: ignore[arg-type]
    result = _ok(["run", "quickstart", "--set", "problem=null", "--set", "run.until=2",
                  "--set", "timing.message_bytes=1000",
                  "--set", "seeds=1", "--out", str(tmp_path / "t")])
    assert "None" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert re.search(r"rfast: 0/3 runs", lines[0]), lines  # the total from the start
    assert re.search(r"3/3 runs", lines[-1]), lines


def test_piped_tables_are_not_cut(capsys):
    name = "timing.stragglers.slowdown_" + "x" * 200
    print_table(pd.DataFrame({name: [1.0], "algorithm": ["rfast"]}), "a wide table")
    assert name in capsys.readouterr().out


def test_the_table_counters_are_medians_as_the_footer_says():
    rows = [{"algorithm": "rfast", "seed": s, "step_size": 1.0, "time": t,
             "updates": u * t, "messages": 2 * u * t, "bytes": 8.0 * u * t, "dropped": u * t,
             "opt_gap": 1.0 - t / 2, "loss": 1.0, "diverged": False}
            for s, u in enumerate([100, 112, 122]) for t in (0.0, 1.0)]
    table = comparison_table(pd.DataFrame(rows), "rfast", {"opt_gap": 0.75})
    row = table.iloc[0]
    assert row["updates"] == 112  # the median; the mean would be 111.33
    assert (row["messages"], row["bytes"], row["dropped"]) == (224, 896, 112)
    assert row["reached"] == "3/3"
    assert row["reached_fraction"] == 1.0
    assert np.isfinite(row["time_to_target"])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_claims_markdown_escapes_pipes_in_cells(tmp_path):
    claims = pd.DataFrame([{"claim": "linear", "seeds": 5, "measured": "max_i |x_i - x*| < 1e-6",
                            "without_contention": "", "verdict": "confirmed"}])
    designs = pd.DataFrame([{"design": "a | b", "reached": "5/5", "step_size": 0.1,
                             "speedup": 2.0, "speedup_ci_low": 1.5, "speedup_ci_high": 2.5,
                             "mean_queueing_delay": 0.01}])
    _write_markdown(tmp_path / "claims.md", claims, designs)
    tables = [line for line in (tmp_path / "claims.md").read_text().splitlines()
              if line.startswith("|")]
    assert len(_cells(tables[0])) == len(_cells(tables[2])) == 5
    assert _cells(tables[2])[2] == r"max_i \|x_i - x*\| < 1e-6"
    assert len(_cells(tables[-1])) == 5


def test_a_smoke_reproduce_is_inconclusive_not_a_refutation():
    designed = load_scenario("paper/mlp_homogeneous")

    def res(*overrides: str) -> SimpleNamespace:
        return SimpleNamespace(scenario=load_scenario("paper/mlp_homogeneous", list(overrides)))

    assert verdict(False, res("run.until=2", "seeds=1"), designed.run.until) == \
        "inconclusive (1 seeds, 2 s)"
    assert verdict(True, res("seeds=3"), designed.run.until) == "inconclusive (3 seeds, 40 s)"
    assert verdict(False, res("run.until=2"), designed.run.until) == "inconclusive (5 seeds, 2 s)"
    assert verdict(False, res(), designed.run.until) == "not confirmed"
    assert verdict(True, res(), designed.run.until) == "confirmed"
