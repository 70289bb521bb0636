"""Inputs that cannot hurt: malformed scenarios (fuzzed from the shipped ones), unsafe names,
scenarios too large for memory, and runs that diverge."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import scenario
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.loading import set_path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["quickstart", "compare_homogeneous", "compare_stragglers", "compare_packet_loss",
           "paper/mlp_homogeneous", "paper/linear_convergence"]
# (dotted key, bad value, what the one-line message must name)
MUTATIONS = [
    ("nodes", -3, "nodes"),
    ("nodes", "eight", "nodes"),
    ("nodes", 1_000_000_000, "memory"),
    ("timing.compute.mean", 0, "compute"),
    ("timing.compute", {"dist": "uniform", "low": 0, "high": 0}, "compute"),
    ("timing.compute.mean", float("nan"), "timing.compute.mean"),
    ("timing.latency.mean", float("inf"), "timing.latency.mean"),
    ("run.until", float("inf"), "run.until"),
    ("problem.samples_per_node", 1_000_000_000_000, "memory"),
    ("nodez", 8, "nodez: unknown key"),
    ("timing.drop_prob", 1.5, "timing.drop_prob"),
    ("graphs.pull.kind", "moebius", "graphs.pull.kind"),
]
BOMB = "".join(f"{chr(97 + k)}: &{chr(97 + k)} [" + ", ".join(
    [f"*{chr(96 + k)}"] * 9 if k else ['"lol"'] * 9) + "]\n" for k in range(9))
FILES = [
    ("yaml tag", "nodes: !!python/object/apply:os.system ['echo hacked']\n", "malformed YAML"),
    ("alias bomb", BOMB, "expands to more than"),
    ("empty", "", "empty"),
    ("a list", "- 1\n- 2\n", "must be a YAML mapping"),
    ("deep", "a: " + "[" * 5000 + "]" * 5000 + "\n", "s.yaml"),
]


def _cases(tmp_path: Path) -> list[tuple[str, str, str]]:
    cases = []
    for name in SHIPPED:
        base = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
        for k, (key, value, expected) in enumerate(MUTATIONS):
            data = json.loads(json.dumps(base))
            set_path(data, key, value)
            if base["problem"]["kind"] == "dataset" and expected == "memory":
                # a dataset refuses these first: more nodes than samples; a built-in's key
                expected = key.split(".")[-1]
            path = tmp_path / f"{name.replace('/', '_')}_{k}.yaml"
            path.write_text(yaml.safe_dump(data))
            cases.append((f"{name}: {key}={value!r}", str(path), expected))
    for k, (label, text, expected) in enumerate(FILES):
        path = tmp_path / f"file_{k}" / "s.yaml"
        path.parent.mkdir()
        path.write_text(text)
        cases.append((label, str(path), expected))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    cases.append(("binary", str(binary), "not a text file"))
    return cases


FUZZ = textwrap.dedent("""
    import json, resource, sys, time
    from typer.testing import CliRunner
    from rfast_sim.cli import app
    out = []
    for label, path, command in json.load(open(sys.argv[1])):
        t0 = time.perf_counter()
        r = CliRunner().invoke(app, [command, path])
        out.append([label, command, r.exit_code, r.stderr, r.output, time.perf_counter() - t0])
    try:  # this process's own peak: ru_maxrss survives exec, so it may be pytest's at the fork
        rss = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status")
                   if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"results": out, "peak_rss": rss}))
""")


def test_fuzzed_scenarios_exit_2_with_one_line_naming_the_field(tmp_path):
    cases = _cases(tmp_path)
    assert len(cases) >= 60
    jobs = [[label, path, command] for label, path, _ in cases for command in ("validate", "run")]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([sys.executable, "-c", FUZZ, str(tmp_path / "jobs.json")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {label: e for label, _, e in cases}
    for label, command, code, err, output, seconds in report["results"]:
        where = f"{command} {label}: {output!r}"
        assert code == 2, where
        assert len(err.strip().splitlines()) == 1, where
        assert expected[label] in err, where
        assert "Traceback" not in output, where
        assert seconds < 30, where
    assert report["peak_rss"] < 2e9


def test_a_name_never_writes_outside_runs(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    path = work / "s.yaml"
    data = yaml.safe_load((ROOT / "scenarios/quickstart.yaml").read_text())
    data.update(name="../../escaped", nodes=4)
    data["run"]["until"] = 5.0
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    outside = [p for p in tmp_path.rglob("*") if work not in p.parents and p != work
               and p not in work.parents]
    assert outside == []
    (folder,) = (work / "runs").iterdir()
    assert folder.name.startswith("escaped-")
    assert (folder / "metrics.parquet").exists()


def test_memory_guard_refuses_before_allocating():
    big = scenario(nodes=2_000_000, **{"graphs.pull.kind": "ring", "graphs.push.kind": "ring"})
    with pytest.raises(ScenarioError, match=r"memory: this scenario needs about .* over the limit"):
        rfast_sim.run(big)
    with pytest.raises(ScenarioError, match="memory: "):
        rfast_sim.run(scenario(**{"problem.dim": 10**12}))
    with pytest.raises(ScenarioError, match="--max-memory"):
        rfast_sim.run(scenario(), max_memory=1e3)
    result = CliRunner().invoke(app, ["validate", str(ROOT / "scenarios/quickstart.yaml")])
    assert result.exit_code == 0
    assert "memory estimate about" in result.output
    result = CliRunner().invoke(app, ["run", "quickstart", "--max-memory", "1MB"])
    assert result.exit_code == 2
    assert "over the limit of 1 MB" in result.stderr


def test_diverged_runs_are_marked_and_never_chosen():
    sc = scenario(**{"algorithm.step_size": [0.05, 50.0], "timing.drop_prob": 0.0,
                     "run.until": 60.0})
    res = rfast_sim.run(sc)
    m = res.metrics
    big = m[m.step_size == 50.0]
    assert big["diverged"].any()
    first = big.index[big["diverged"].to_numpy()][0]
    assert big.loc[first:, ["loss", "opt_gap", "accuracy"]].isna().all().all()
    assert np.isfinite(big.loc[: first - 1, "loss"]).all()
    summary = res.summary()
    assert [r["diverged"] for r in summary["runs"]] == [False, True]
    table = res.comparison()
    assert table.loc[0, "step_size"] == 0.05
    assert table.loc[0, "diverged"] == 0
