"""`rfast-sim reproduce`: every paper scenario is valid without running it, and `--only` runs
the claims on one scenario (and the runs they compare against) and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rfast_sim.cli import app
from rfast_sim.paper import BASE, CLAIMS, _scenarios_of, reproduce, select_claims
from rfast_sim.scenario.loading import shipped_dir

PAPER = sorted(p.stem for p in (shipped_dir() / "paper").glob("*.yaml"))


@pytest.mark.parametrize("name", PAPER)
def test_every_paper_scenario_validates(name):
    result = CliRunner().invoke(app, ["validate", f"paper/{name}"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_every_paper_scenario_carries_a_claim():
    assert sorted({c.scenario.removesuffix(".yaml") for c in CLAIMS}) == PAPER


def test_only_selects_the_claims_of_a_scenario_and_what_they_compare_against():
    assert select_claims(None) == CLAIMS
    (loss,) = select_claims(["mlp_packet_loss"])
    assert _scenarios_of([loss]) == ["mlp_packet_loss.yaml", BASE]
    assert [c.scenario for c in select_claims(["mlp_straggler.yaml"])] == ["mlp_straggler.yaml"] * 2


def test_only_an_unknown_scenario_is_one_line_naming_the_choices(tmp_path):
    result = CliRunner().invoke(app, ["reproduce", "--only", "mlp_homogenous", "--out",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "--only" in result.output
    assert "mlp_homogeneous" in result.output
    assert "Traceback" not in result.output


def test_only_runs_one_scenario_without_reruns_or_designs(tmp_path: Path):
    table = reproduce(tmp_path, overrides=["run.until=2", "seeds=1"],
                      only=["linear_convergence"])
    assert list(table["scenario"]) == ["linear_convergence.yaml"]
    assert (table["without_contention"] == "").all()
    assert len((tmp_path / "claims.md").read_text().splitlines()) == 3  # header, rule, claim
    assert not (tmp_path / "designs.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["linear_convergence"]
