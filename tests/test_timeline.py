"""A run's timeline: Chrome trace-event JSON that Perfetto reads (format, counts against the
run's summary, closed forms), from the command line and from Python."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import scenario
from typer.testing import CliRunner

import rfast_sim
from rfast_sim.cli import app
from rfast_sim.experiment.plan import packet_trace
from rfast_sim.scenario import ScenarioError
from rfast_sim.timing.timeline import chrome_trace, write_timeline

runner = CliRunner()

TIMING_ONLY = {"problem": None, "timing.message_bytes": 1000.0, "run.until": 30.0}
CASES = {  # asynchronous with losses and a `latest` queue; a neighbour barrier; churn
    "latest": ({"timing.message_bytes": 1e5, "timing.bandwidth": 1e6,
                "timing.nic": {"egress": 4e5, "queue": "latest"}}, "rfast"),
    "barrier": ({"graphs.undirected": {"kind": "ring"}, "timing.drop_prob": 0.2}, "dpsgd"),
    "churn": ({"timing.churn": {"mtbf": 8.0, "mttr": 2.0, "rejoin": "reset"}}, "rfast"),
}


def _events(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["traceEvents"]


def check_format(events: list[dict[str, Any]]) -> None:
    """What Perfetto needs: complete spans, one end per flow start, time order per track,
    slices that nest (its rule: intervals closed on the left, open on the right, instants at
    one time stack), and each flow event right after the slice it binds to."""
    starts, ends = Counter(), Counter()
    last: dict[int, float] = {}
    stacks: dict[int, list[tuple[int, int]]] = defaultdict(list)
    previous: dict[int, dict[str, Any]] = {}
    for ev in events:
        if ev["ph"] == "M":
            continue
        assert {"ts", "pid", "tid"} <= set(ev)
        tid, ts = ev["tid"], ev["ts"]
        assert ts >= last.get(tid, 0.0)
        last[tid] = ts
        if ev["ph"] in ("s", "f"):
            (starts if ev["ph"] == "s" else ends)[ev["id"]] += 1
            bound = previous[tid]
            assert bound["ts"] == ts
            assert bound["ph"] in ("X", "i")
            assert bound.get("dur", 0) == 0
            continue
        assert ev["ph"] in ("X", "i")
        if ev["ph"] == "X":
            assert ev["dur"] >= 0
        # Perfetto's nanoseconds, truncated (a reader that rounds gets the same: 0.3 ns guard)
        t0, dur = int(ts * 1000), int(ev.get("dur", 0) * 1000)
        assert t0 == round(ts * 1000)
        stack = stacks[tid]
        while stack and (stack[-1][0] < t0 or (stack[-1][0] == t0
                                               and not (stack[-1][1] == 0 and dur == 0))):
            stack.pop()
        assert not stack or t0 + dur <= stack[-1][0], ev
        stack.append((t0 + dur, dur))
        previous[tid] = ev
    assert set(starts) == set(ends)
    assert set(starts.values()) <= {1}
    assert set(ends.values()) <= {1}


def _run(case: str, tmp_path: Path) -> tuple[Any, dict[str, Any], Path]:
    over, algorithm = CASES[case]
    sc = scenario(**{**TIMING_ONLY, **over, "algorithm.name": algorithm})
    res = rfast_sim.run(sc)
    res.save(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())["runs"][0]
    return res, summary, tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_counts_in_the_file_equal_the_runs_summary(case, tmp_path):
    res, summary, folder = _run(case, tmp_path)
    out = runner.invoke(app, ["timeline", str(folder)])
    assert out.exit_code == 0, out.output
    path = folder / f"timeline-{CASES[case][1]}-0.json"
    assert str(path) in out.output
    assert "ui.perfetto.dev" in out.output
    events = _events(path)
    check_format(events)
    kinds = Counter((e["ph"], e.get("cat"), e["name"] if e["ph"] == "i" else "")
                    for e in events)
    assert kinds["X", "compute", ""] == summary["updates"]
    losses = sum(v for (ph, cat, name), v in kinds.items() if cat == "loss"
                 and name != "superseded")
    assert losses == summary["dropped"]
    assert kinds["i", "loss", "superseded"] == summary["superseded"]
    assert kinds["i", "fault", "reset"] == summary["network"]["resets"]
    assert kinds["X", "transfer", ""] == summary["network"]["packets"]
    receives = sum(e["name"].startswith("receive") for e in events)
    trace = res.runs[0].trace
    if case == "barrier":  # rounds; a packet for a round its receiver has not reached yet
        assert kinds["X", "round", ""] > 0
        assert 0 <= receives - trace.is_kind("deliver").sum() <= 2 * res.scenario.nodes
    else:
        assert receives == trace.is_kind("deliver").sum()
    if case == "latest":
        assert summary["superseded"] > 0
        assert kinds["X", "queue", ""] > 0
    if case == "churn":
        assert sum(e["name"] == "down" for e in events) > 0
        assert summary["network"]["resets"] > 0


def test_closed_form_spans_and_flows():
    """Constant compute time 1 s and latency 0.2 s on a directed ring of 4: each node sends
    two packets (pull and push rings) at t = 1, ..., 5; the first leaves the NIC at once, the
    second waits for it; each takes bytes / bandwidth = 1 ms to leave."""
    sc = scenario(**{**TIMING_ONLY, "nodes": 4, "graphs.pull.kind": "directed_ring",
                     "graphs.push.kind": "directed_ring", "timing.drop_prob": 0.0,
                     "timing.compute": {"dist": "constant", "mean": 1.0},
                     "timing.latency": {"dist": "constant", "mean": 0.2},
                     "timing.bandwidth": 1e6, "run.until": 5.5})
    trace = packet_trace(sc, "rfast", 0)
    events = chrome_trace(trace, sc.nodes)["traceEvents"]
    check_format(events)
    spans = [e for e in events if e["ph"] == "X" and e["cat"] == "compute"]
    assert len(spans) == 4 * 5
    assert sorted({round(e["ts"]) for e in spans}) == [0, 1_000_000, 2_000_000, 3_000_000,
                                                       4_000_000]
    np.testing.assert_allclose([e["dur"] for e in spans], 1e6, atol=1e-3)
    by_id: dict[int, dict[str, float]] = defaultdict(dict)
    for e in events:
        if e["ph"] in ("s", "f"):
            by_id[e["id"]][e["ph"]] = e["ts"]
    lengths = sorted(round(f["f"] - f["s"], 3) for f in by_id.values())
    assert lengths == [201_000.0] * 20 + [202_000.0] * 20  # 4 nodes x 5 sends x 2 packets
    np.testing.assert_allclose([e["dur"] for e in events if e.get("cat") == "transfer"], 1000.0,
                               atol=1e-3)
    np.testing.assert_allclose([e["dur"] for e in events if e.get("cat") == "queue"], 1000.0,
                               atol=1e-3)
    assert len([e for e in events if e.get("cat") == "queue"]) == 20


def test_windows_and_node_selection_from_python(tmp_path):
    sc = scenario(**{**TIMING_ONLY, **CASES["latest"][0]})
    res = rfast_sim.run(sc)
    path = res.timeline(tmp_path / "t.json", start=5.0, until=10.0, nodes=[0, 1, 2])
    doc = json.loads(path.read_text())
    assert doc["otherData"]["time_unit"] == "microseconds of simulated time"
    assert doc["otherData"]["window_s"] == [5.0, 10.0]
    events = doc["traceEvents"]
    check_format(events)
    names = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"node 0", "node 1", "node 2", "node 0 NIC"} <= names
    assert not any(n.startswith("node 3") for n in names)
    sends = [e for e in events if e["name"].startswith("send")]
    assert sends
    assert all(5e6 <= e["ts"] <= 10e6 + 1 for e in sends)
    # the re-derived trace has the run's own events
    again = res.packet_trace()
    np.testing.assert_array_equal(again.time, res.runs[0].trace.time)
    with pytest.raises(ScenarioError, match=r"nodes: .* give some of them"):
        res.timeline(tmp_path / "u.json", nodes=[9])
    with pytest.raises(ScenarioError, match="algorithm: 'nope' is not one of"):
        res.packet_trace("nope")


def test_bad_options_give_one_line(tmp_path):
    _res, _summary, folder = _run("barrier", tmp_path)
    cases = {("timeline", str(tmp_path / "missing")): "is not a folder",
             ("timeline", str(folder), "--seed", "9"): "--seed: 9 is not one of this run's",
             ("timeline", str(folder), "--algorithm", "x"): "--algorithm: 'x' is not one",
             ("timeline", str(folder), "--from", "9", "--until", "3"): "--until: must be after",
             ("timeline", str(folder), "--until", "99"): "--until: the run ends at 30",
             ("timeline", str(folder), "--nodes", "2-99"): "--nodes: '2-99' is not in"}
    for args, message in cases.items():
        out = runner.invoke(app, list(args))
        assert out.exit_code == 2, args
        assert message in out.output, out.output
        assert "Traceback" not in out.output
    out = runner.invoke(app, ["timeline", str(folder), "--from", "2", "--until", "6",
                              "--nodes", "0-3", "--out", str(tmp_path / "w.json")])
    assert out.exit_code == 0, out.output
    check_format(_events(tmp_path / "w.json"))


def test_a_run_without_the_log_still_draws_its_spans(tmp_path):
    sc = scenario(**TIMING_ONLY)
    res = rfast_sim.run(sc)
    count = write_timeline(res.runs[0].trace, sc.nodes, tmp_path / "plain.json")
    events = _events(tmp_path / "plain.json")
    assert count == len(events)
    assert not any(e["ph"] == "s" for e in events)
    assert sum(e.get("cat") == "compute" for e in events) == res.runs[0].trace.is_kind(
        "compute").sum()


def test_the_static_figure_draws_each_packet_its_queueing_and_the_rounds():
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from rfast_sim.plotting import plot_timeline

    sc = scenario(**{**TIMING_ONLY, **CASES["latest"][0], "run.until": 12.0})
    trace = packet_trace(sc, "rfast", 0)
    ax = plot_timeline(trace, start=2.0, until=8.0, nodes=[0, 1, 2, 3])
    p = trace.packets
    shown = (p.sent >= 2.0) & (p.sent <= 8.0) & (p.src < 4) & (p.dst < 4) & (p.fate != 5)
    lines = [seg for c in ax.collections if isinstance(c, LineCollection)
             for seg in c.get_segments()]
    assert len(lines) == shown.sum() > 0
    assert sorted(round(s[0][0], 9) for s in lines) == sorted(np.round(p.sent[shown], 9))
    labels = ax.get_legend_handles_labels()[1]
    assert "egress queueing" in labels
    assert "superseded in the queue" in labels
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2", "3"]
    plt.close(ax.figure)
    sync = scenario(**{**TIMING_ONLY, **CASES["barrier"][0]})
    ax = plot_timeline(packet_trace(sync, "dpsgd", 0), until=10.0)
    assert {"round", "barrier wait"} <= set(ax.get_legend_handles_labels()[1])
    plt.close(ax.figure)


def test_the_memory_estimate_counts_the_packet_log_when_asked():
    from rfast_sim.experiment import budget

    sc = scenario(**TIMING_ONLY)
    assert budget.estimate(sc).parts["packet log"] == 0
    assert budget.estimate(sc, packets=True).parts["packet log"] > 0


def test_a_run_stopped_by_max_updates(tmp_path):
    sc = scenario(**{**TIMING_ONLY, "run.until": None, "run.max_updates": 60})
    res = rfast_sim.run(sc)
    doc = json.loads(res.timeline(tmp_path / "m.json").read_text())
    assert doc["otherData"]["window_s"] == [0.0, None]
    check_format(doc["traceEvents"])
    assert sum(e.get("cat") == "compute" for e in doc["traceEvents"]) == 60
