"""`step_size: auto`: the search's rounds, its pick against gradient descent's closed-form stable
range and a dense hand grid, widening past an edge, determinism, and the CLI and sweep faces."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import sweep_and_summarize
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.experiment.tuning import FINEST_RATIO, bracket, next_steps
from rfast_sim.maths.problems import make_problem
from rfast_sim.scenario import AutoStep, ScenarioError
from rfast_sim.scenario.loading import parse_scenario

runner = CliRunner()


# --- the search's rounds (pure) -------------------------------------------------------------

def test_bracket_is_log_spaced_from_low_to_high():
    steps = bracket(AutoStep(low=0.01, high=10.0, points=4))
    assert steps == [0.01, 0.1, 1.0, 10.0]


def test_a_best_step_at_an_edge_widens_past_it_on_the_same_ratio():
    s = AutoStep(low=0.01, high=10.0, points=5, budget=12)
    ratio = 1000 ** (1 / 4)
    why, steps = next_steps(bracket(s), 10.0, s)
    assert why == "widen up"  # half a bracket (ceil(points / 2) steps) at a time
    assert steps == pytest.approx([10 * ratio, 10 * ratio ** 2, 10 * ratio ** 3], rel=1e-5)
    why, steps = next_steps(bracket(s), 0.01, s)
    assert why == "widen down"
    assert steps == pytest.approx([0.01 / ratio, 0.01 / ratio ** 2, 0.01 / ratio ** 3],
                                  rel=1e-5)


def test_an_interior_best_is_refined_between_its_neighbours_until_fine():
    s = AutoStep(low=0.01, high=10.0, points=4, budget=30)
    tried = bracket(s)
    why, steps = next_steps(tried, 1.0, s)
    assert why == "refine"
    # each neighbour interval (ratio 10) in ceil(points / 2) = 2 log parts
    assert steps == pytest.approx([10 ** -0.5, 10 ** 0.5], rel=1e-5)
    tried += steps
    while True:
        why, steps = next_steps(tried, 1.0, s)
        if not steps:
            break
        assert why == "refine"
        tried += steps
    near = sorted(tried)
    k = near.index(1.0)
    assert near[k + 1] / 1.0 <= FINEST_RATIO
    assert 1.0 / near[k - 1] <= FINEST_RATIO


def test_the_budget_caps_every_round_nearest_steps_first():
    s = AutoStep(low=0.01, high=10.0, points=4, budget=5)
    tried = bracket(s)
    why, steps = next_steps(tried, 10.0, s)
    assert (why, steps) == ("widen up", [100.0])
    assert next_steps(tried + steps, 1e3, s) == ("", [])
    s = AutoStep(low=0.01, high=10.0, points=7, budget=9)
    tried = bracket(s)
    why, steps = next_steps(tried, 1.0, s)  # 6 candidates, 2 left: one on each side
    assert why == "refine"
    assert steps == pytest.approx([10 ** -0.125, 10 ** 0.125], rel=1e-5)


@pytest.mark.parametrize(("value", "expected"), [
    ("auto", AutoStep()),
    ({"auto": {"low": 0.1, "high": 2.0, "points": 3, "budget": 9}},
     AutoStep(low=0.1, high=2.0, points=3, budget=9)),
    ({"auto": {}}, AutoStep()),
])
def test_step_size_auto_parses(value, expected):
    sc = parse_scenario({"algorithm": {"name": "rfast", "step_size": value}})
    assert sc.algorithm_list[0].auto == expected
    assert sc.algorithm_list[0].step_sizes == []


@pytest.mark.parametrize(("value", "message"), [
    ({"auto": {"low": 1.0, "high": 0.5}}, "high: must be > low"),
    ({"auto": {"points": 8, "budget": 4}}, "budget: must be >= points"),
    ({"auto": {"lo": 1.0}}, "lo: unknown key"),
    ("automatic", "step_size"),
    ({"auto": {"low": -1}}, "low"),
])
def test_bad_auto_settings_are_refused_in_one_line(tmp_path, value, message):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"algorithm": {"name": "rfast", "step_size": value}}))
    for command in ("validate", "run"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# --- the pick against closed forms and a dense grid --------------------------------------------

# Ring-AllReduce with exact gradients is gradient descent on F = 0.5 mean(r^2) + l2/2 |x|^2:
# stable exactly below 2/L, L = lambda_max(A'A/N) + l2
GD = {
    "name": "gd", "seed": 3, "seeds": 2, "nodes": 4,
    "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
    "timing": {"compute": {"dist": "exponential", "mean": 1.0},
               "latency": {"dist": "constant", "mean": 0.01}, "message_bytes": 80.0},
    "problem": {"kind": "least_squares", "dim": 10, "samples_per_node": 30, "batch_size": None,
                "l2": 0.01},
    "compare": {"baseline": "allreduce_sgd", "target": {"opt_gap": 1e-8}},
    "run": {"until": 60.0, "sample_every": 0.25},
}


def _lipschitz(sc) -> float:
    _, data = make_problem(sc.problem, sc.nodes, sc.seed, sc.dtype)
    A = np.asarray(data.feats).reshape(-1, sc.problem.dim)
    return float(np.linalg.eigvalsh(A.T @ A / len(A)).max()) + sc.problem.l2


def _scenario(step_size, **kw):
    return parse_scenario({**GD, "algorithm": {"name": "allreduce_sgd", "step_size": step_size},
                           **kw})


def test_auto_stays_below_two_over_l_and_matches_a_dense_grid():
    settings = {"low": 0.01, "high": 10.0, "points": 7, "budget": 16}
    tuned = rfast_sim.run(_scenario({"auto": settings}))
    record = tuned.tuning["allreduce_sgd"]
    L = _lipschitz(tuned.scenario)
    # data differ per seed: the stable range is the smallest seed's
    L = max(L, *(_lipschitz(tuned.scenario.model_copy(update={"seed": s}))
                 for s in tuned.scenario.seed_list))
    assert record.chosen < 2.0 / L
    assert record.chosen == tuned.comparison()["step_size"].iloc[0]
    assert set(tuned.metrics["step_size"]) == set(record.tried)

    dense = list(np.geomspace(0.01, 10.0, 61))
    grid = rfast_sim.run(_scenario(dense))
    best = float(grid.comparison()["step_size"].iloc[0])
    assert best < 2.0 / L
    # within one refinement: auto's final spacing around its pick, plus the dense grid's
    ratio = 1000 ** (1 / 6)
    spacing = ratio ** (1 / math.ceil(7 / 2)) * (1000 ** (1 / 60))
    assert abs(math.log(record.chosen / best)) <= math.log(spacing) + 1e-9


def test_auto_widens_past_an_edge_to_an_interior_pick():
    sc = _scenario({"auto": {"low": 1e-4, "high": 1e-3, "points": 4, "budget": 24}})
    record = rfast_sim.run(sc).tuning["allreduce_sgd"]
    whys = [why for why, _ in record.rounds]
    assert whys[0] == "bracket"
    assert "widen up" in whys
    tried = record.tried
    assert not record.at_edge
    assert tried[0] < record.chosen < tried[-1]
    assert record.chosen > 1e-3


def test_every_step_diverging_widens_down():
    sc = _scenario({"auto": {"low": 50.0, "high": 500.0, "points": 3, "budget": 12}})
    record = rfast_sim.run(sc).tuning["allreduce_sgd"]
    assert [why for why, _ in record.rounds][1] == "widen down"
    assert record.chosen < 50.0


# --- determinism, summary.json, the CLI and sweeps --------------------------------------------

TWO = {**GD, "algorithms": [
    {"name": "rfast", "step_size": {"auto": {"low": 0.03, "high": 3.0, "points": 3,
                                             "budget": 6}}},
    {"name": "allreduce_sgd", "step_size": {"auto": {"low": 0.03, "high": 3.0, "points": 3,
                                                     "budget": 6}}}],
    "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"}},
    "compare": {"baseline": "allreduce_sgd", "target": {"opt_gap": 1e-4}},
    "run": {"until": 20.0, "sample_every": 0.5}}


def test_the_cli_marks_tuned_steps_and_summary_json_lists_every_step_tried(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(TWO))
    picks = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        result = runner.invoke(app, ["run", str(path), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "(auto)" in result.output
        summary = json.loads((out / "summary.json").read_text())
        tuning = summary["tuning"]
        assert set(tuning) == {"rfast", "allreduce_sgd"}
        for name, t in tuning.items():
            tried = [row["step_size"] for row in t["tried"]]
            assert tried == sorted(h for r in t["rounds"] for h in r["steps"])
            assert len(tried) <= 6
            assert t["chosen"] in tried
            assert {"reached", "diverged", "time_to_target", "final_opt_gap"} <= set(
                t["tried"][0])
            runs = [r for r in summary["runs"] if r["algorithm"] == name]
            assert {r["step_size"] for r in runs} == set(tried)
        comparison = (out / "comparison.csv").read_text()
        assert "tuned" in comparison.splitlines()[0]
        picks.append({n: (t["chosen"], [r["steps"] for r in t["rounds"]])
                      for n, t in tuning.items()})
    assert picks[0] == picks[1]


def test_a_sweep_can_tune_each_point(tmp_path):
    spec = {"scenario": {**TWO, "algorithms": None,
                         "algorithm": {"name": "allreduce_sgd", "step_size": 0.1}},
            "grid": {"algorithm.step_size": [0.1, {"auto": {"low": 0.03, "high": 3.0,
                                                            "points": 3, "budget": 5}}]},
            "seeds": 2}
    del spec["scenario"]["algorithms"]
    out = sweep_and_summarize(tmp_path, spec)
    table = rfast_sim.sweeps.summarize(out)
    assert len(table) == 2
    fixed, auto = table.iloc[0], table.iloc[1]
    assert fixed["step_size"] == 0.1
    assert auto["step_size"] != 0.1  # the point's search picked its own


def test_a_timing_only_run_refuses_auto():
    with pytest.raises(ScenarioError, match=r"algorithm\.step_size: auto tunes"):
        parse_scenario({**GD, "problem": None, "algorithm": {"name": "rfast",
                                                             "step_size": "auto"}})


def test_online_mode_tunes_by_the_same_rule():
    sc = _scenario({"auto": {"low": 0.1, "high": 1.0, "points": 2, "budget": 3}},
                   run={"until": 6.0, "sample_every": 0.5, "mode": "online"}, seeds=1)
    online = rfast_sim.run(sc).tuning["allreduce_sgd"]
    replay = rfast_sim.run(sc, mode="replay").tuning["allreduce_sgd"]
    assert online.rounds == replay.rounds
    assert online.chosen == replay.chosen


def test_summary_json_round_trips(tmp_path: Path):
    res = rfast_sim.run(_scenario({"auto": {"low": 0.1, "high": 1.0, "points": 2, "budget": 3}},
                                  seeds=1, run={"until": 5.0, "sample_every": 1.0}))
    res.save(tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    t = data["tuning"]["allreduce_sgd"]
    assert t["settings"] == {"low": 0.1, "high": 1.0, "points": 2, "budget": 3}
    assert t["seconds"] > 0
