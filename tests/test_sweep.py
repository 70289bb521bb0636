"""Parameter sweeps: expansion, local vs Dask, resume after a kill, failures, summaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.scenario import ScenarioError
from rfast_sim.sweeps import expand, failures, load_results, run_sweep, summarize

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

TINY = {
    "name": "tiny",
    "nodes": 4,
    "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
    "timing": {"latency": {"dist": "lognormal", "mean": 0.05, "sigma": 0.5}},
    "problem": {"kind": "least_squares", "dim": 3, "samples_per_node": 10, "batch_size": None},
    "algorithms": [{"name": "rfast", "step_size": 0.2},
                   {"name": "allreduce_sgd", "step_size": 0.2}],
    "compare": {"baseline": "allreduce_sgd", "target": {"opt_gap": 0.05}},
    "run": {"until": 30.0, "sample_every": 3.0},
}


def spec(**extra):
    return {"scenario": TINY, "grid": {"timing.drop_prob": [0.0, 0.2], "nodes": [4, 5]},
            "seeds": 3, **extra}


def test_dry_run_lists_grid_times_zip_times_seeds():
    sweep = yaml.safe_load((ROOT / "scenarios/sweep_stragglers.yaml").read_text())
    points = expand(ROOT / "scenarios/sweep_stragglers.yaml")
    n_grid = 1
    for values in sweep["grid"].values():
        n_grid *= len(values)
    n_zip = len(next(iter(sweep["zip"].values())))
    assert len(points) == n_grid * n_zip * sweep["seeds"] == 360
    assert len({p.run_id for p in points}) == len(points)
    assert all(p.error is None for p in points)
    # zip keys vary together, and algorithm.step_size reached every algorithm of the list
    for p in points[:10]:
        assert p.scenario is not None
        steps = {a.step_size for a in p.scenario.algorithm_list}
        assert steps == {p.params["algorithm.step_size"]}
        assert p.scenario.problem.batch_size == p.params["problem.batch_size"]
    result = runner.invoke(app, ["sweep", str(ROOT / "scenarios/sweep_stragglers.yaml"),
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "360 points" in result.output


@pytest.mark.parametrize(("bad", "message"), [
    ({"grid": {"timing.drop_prop": [0.1]}}, "closest valid keys: timing.drop_prob"),
    ({"grid": {}, "seeds": 1}, "the sweep is empty"),
    ({"grid": {"nodes": []}}, "grid.nodes: an empty list"),
    ({"zip": {"nodes": [4, 5], "seed": [1]}}, "zip: all lists must have the same length"),
    ({"gird": {"nodes": [4]}}, "gird: unknown key"),
])
def test_bad_sweeps_are_refused_with_the_key(bad, message):
    data = {"scenario": TINY, "grid": {"nodes": [4]}, **bad}
    with pytest.raises(ScenarioError, match=message):
        expand(data)


def test_workers_use_the_cache_the_user_set_else_the_sweep_folders(tmp_path):
    code = ("import sys; from pathlib import Path; import jax; "
            "from rfast_sim.sweeps.executors import use_compile_cache; "
            "use_compile_cache(Path(sys.argv[1])); "
            "print(jax.config.values['jax_compilation_cache_dir'])")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    for user_set in (str(tmp_path / "user"), None):
        if user_set:
            env["JAX_COMPILATION_CACHE_DIR"] = user_set
        else:
            env.pop("JAX_COMPILATION_CACHE_DIR")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sweep" / "jax_cache")],
                             env=env, capture_output=True, text=True, check=True).stdout
        assert out.strip() == (user_set or str(tmp_path / "sweep" / "jax_cache"))


@pytest.mark.long
def test_local_and_dask_give_identical_results(tmp_path):
    local = run_sweep(spec(), tmp_path / "local", workers=2)
    dask = run_sweep(spec(), tmp_path / "dask", executor="dask", workers=2)
    # the worker processes shared their compiled code through the cache the suite set
    # (JAX_COMPILATION_CACHE_DIR, in conftest), not one of the sweep's own
    assert os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert not (tmp_path / "local" / "jax_cache").exists()
    assert local["run_id"].nunique() == 12
    key = ["run_id", "algorithm", "time"]
    a = local.sort_values(key).reset_index(drop=True)
    b = dask.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_a_failing_point_is_recorded_and_the_rest_complete(tmp_path):
    # dpsgd needs an undirected graph: directed_ring makes exactly those points fail
    s = spec(grid={"graphs.pull.kind": ["ring", "directed_ring"]}, seeds=2)
    s["scenario"] = {**TINY, "algorithms": [{"name": "dpsgd", "step_size": 0.2}],
                     "compare": None}
    frame = run_sweep(s, tmp_path / "sw", workers=1)
    failed = failures(tmp_path / "sw")
    assert len(failed) == 2
    assert all("undirected graph" in m for m in failed.values())
    assert frame["run_id"].nunique() == 2
    result = runner.invoke(app, ["sweep", str(_write(tmp_path, s)), "--out",
                                 str(tmp_path / "sw"), "--resume"])
    assert result.exit_code == 1  # failures are reported, not hidden
    assert "undirected graph" in result.output


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.long
def test_interrupted_sweep_resumes_each_point_exactly_once(tmp_path):
    s = spec(grid={"timing.drop_prob": [0.0, 0.1, 0.2, 0.3], "nodes": [4, 5, 6]}, seeds=1)
    path = _write(tmp_path, s)
    out = tmp_path / "sw"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "rfast_sim.cli", "sweep", str(path), "--out", str(out),
           "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "points").glob("*.parquet"))) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.parquet")}
    assert 3 <= len(before) < 12, "the kill should land mid-sweep"
    with pytest.raises(ScenarioError, match="--resume"):
        run_sweep(path, out, workers=1)
    frame = run_sweep(path, out, workers=1, resume=True)
    after = {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.parquet")}
    assert len(after) == 12
    assert all(after[name] == t for name, t in before.items()), "done points were rerun"
    assert not list((out / "points").glob(".*tmp")), "a partial file was left behind"
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(p["state"] == "done" for p in manifest["points"].values())
    assert all(p.get("runs", 0) <= 1 for p in manifest["points"].values())
    rows = frame.groupby(["run_id", "algorithm"]).size()
    assert rows.nunique() == 1, "every point has the same number of rows: none partial"
    assert not frame.duplicated(["run_id", "algorithm", "time"]).any()


def test_summarize_gives_speedups_with_confidence_intervals(tmp_path):
    rfast_sim.sweep(spec(grid={"timing.drop_prob": [0.0, 0.2]}), tmp_path / "sw", workers=1)
    table = summarize(tmp_path / "sw")
    assert set(table["algorithm"]) == {"rfast", "allreduce_sgd"}
    assert (table["seeds"] == 3).all()
    frame = load_results(tmp_path / "sw")
    # the speed-up of one point, recomputed here: ratio of the medians over its seeds of the
    # time from which opt_gap stays <= 0.05
    point = frame[frame["timing.drop_prob"] == 0.2]

    def settle(run: pd.DataFrame) -> float:
        above = run["time"][~(run["opt_gap"] <= 0.05)]
        later = run["time"][run["time"] > above.max()] if len(above) else run["time"]
        return float(later.min()) if len(later) else float("inf")

    med = {alg: np.median([settle(r) for _, r in g.groupby("seed")])
           for alg, g in point.groupby("algorithm")}
    row = table[(table["timing.drop_prob"] == 0.2) & (table["algorithm"] == "rfast")].iloc[0]
    assert row["speedup"] == pytest.approx(med["allreduce_sgd"] / med["rfast"])
    assert row["speedup_ci_low"] <= row["speedup"] <= row["speedup_ci_high"]
    assert {"timing.drop_prob", "run_id", "seed"} <= set(frame.columns)
    result = runner.invoke(app, ["summarize", str(tmp_path / "sw")])
    assert result.exit_code == 0, result.output
    assert "3/3" in result.output  # reached k/n
    assert "few seeds" in result.output
    result = runner.invoke(app, ["plot", str(tmp_path / "sw"), "--x", "timing.drop_prob"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sw" / "speedup_vs_timing_drop_prob.png").stat().st_size > 1000


FAULT_AXES = {
    "timing.churn.mtbf": [10.0, 40.0],
    "timing.churn.rejoin": ["keep", "reset"],
    "timing.loss.p_good_bad": [0.01, 0.1],
    "timing.link_churn.mttr": [1.0, 3.0],
    "timing.barrier_timeout": [0.5, 2.0],
    "timing.outages": [[], [{"node": 1, "start": 5.0, "end": 15.0}]],
    "graphs.push.kind": ["exponential", "one_peer_exponential"],
    "graphs.schedule": [[], [{"at": 10.0, "pull": {"kind": "exponential"}}]],
}


@pytest.mark.parametrize("key", sorted(FAULT_AXES))
def test_every_fault_key_can_be_swept(key):
    base = {**TINY, "algorithms": [{"name": "rfast", "step_size": 0.2}], "compare": None,
            "timing": {**TINY["timing"], "churn": {"mtbf": 20.0, "mttr": 2.0},
                       "loss": {"p_good_bad": 0.05}, "link_churn": {"mtbf": 20.0, "mttr": 2.0}}}
    points = expand({"scenario": base, "grid": {key: FAULT_AXES[key]}})
    assert [p.error for p in points] == [None, None]
    assert points[0].run_id != points[1].run_id


def test_a_churn_sweep_runs(tmp_path):
    base = {**TINY, "timing": {**TINY["timing"], "churn": {"mtbf": 20.0, "mttr": 4.0}}}
    s = {"scenario": base, "grid": {"timing.churn.mtbf": [5.0, 50.0],
                                    "timing.churn.rejoin": ["keep", "reset"]}}
    frame = run_sweep(s, tmp_path / "sw", workers=1)
    assert frame["run_id"].nunique() == 4
    last = frame.sort_values("time").groupby(["run_id", "algorithm"]).tail(1)
    # more failures, fewer updates in the same time
    rf = last[last["algorithm"] == "rfast"].set_index(["timing.churn.mtbf",
                                                       "timing.churn.rejoin"])["updates"]
    assert rf[(5.0, "keep")] < rf[(50.0, "keep")]
