"""The outputs reference (``docs/reference/outputs.md``) lists everything the code writes.

Small runs write every kind of output folder (a comparison with a tuned step, the wave replay
and device classes; a timing-only run; a sweep and its summary); each file, column and
``summary.json`` key found there must be a row of the page, under the section of its file. A
column or key added to the code fails here until the page explains it.
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import DOCS, scenario, sweep_and_summarize

import rfast_sim
from rfast_sim import paper
from rfast_sim.experiment import metrics
from rfast_sim.plotting import plot_run
from rfast_sim.scenario.loading import scenario_to_dict

PAGE = DOCS / "reference" / "outputs.md"
FIRST_CELL = re.compile(r"^\| *(`[^|]*)\|", re.M)
METRIC_NAME = re.compile(r"time_to_(?!target)[a-z_]+?(_ci_low|_ci_high)?$")


def documented() -> dict[str, set[str]]:
    """Section (its title's name in backticks, or its first word) -> the backticked names in
    the first column of its tables."""
    sections: dict[str, set[str]] = {}
    for part in re.split(r"^## ", PAGE.read_text(), flags=re.M)[1:]:
        title = re.match(r"`([^`]+)`|(\w+)", part)
        assert title
        cells = FIRST_CELL.findall(part)
        sections[title.group(1) or title.group(2).lower()] = {
            name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}
    return sections


def normal(name: str) -> str:
    """A produced name as the page writes it: `time_to_opt_gap` is `time_to_<metric>`."""
    return METRIC_NAME.sub(lambda m: f"time_to_<metric>{m.group(1) or ''}", name)


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """The dotted paths of a JSON value's keys: ``runs[].timings.trace_s``; a list of mappings
    is ``[]``; keys that are values (an algorithm, a run id, a device class) are placeholders."""
    placeholders = {"tuning.": "<algorithm>", "points.": "<run_id>",
                    "runs[].device_nodes.": "<device class>"}
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = prefix + placeholders.get(prefix, normal(key))
            paths |= {path} | key_paths(sub, path + ".")
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            paths |= key_paths(item, prefix[:-1] + "[].")
    return paths


def missing(produced: set[str], names: set[str]) -> list[str]:
    """The produced names the page does not list: a listed ``a.*`` covers ``a`` and everything
    under it, ``final_*`` every name it matches."""
    def listed(name: str) -> bool:
        return name in names or any(
            fnmatch.fnmatchcase(name, n) or (n.endswith(".*") and name == n[:-2])
            for n in names if "*" in n)
    return sorted(n for n in map(normal, produced) if not listed(n))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """The output folders of small runs (about 15 s in all, most of it compiling)."""
    tmp = tmp_path_factory.mktemp("outputs")
    base = {"seeds": 2, "run.until": 20.0,
            "compare": {"baseline": "allreduce_sgd", "target": {"opt_gap": 1e-2}}}
    tuned = scenario(**base, **{
        "run.replay": "waves", "timing.stragglers": {"count": 1, "slowdown": 3.0},
        "algorithms": [{"name": "rfast", "step_size": {"auto": {
            "low": 0.02, "high": 0.08, "points": 2, "budget": 2}}},
                       {"name": "allreduce_sgd", "step_size": 0.05}]})
    res = rfast_sim.run(tuned)
    res.save(tmp / "run")
    plot_run(res.metrics, tmp / "run", res.target)
    devices = scenario(**{  # steps of ~50 us: a few hundred events in 2 ms
        "run.until": 0.002, "run.sample_every": 0.0005,
        "timing.latency": {"dist": "exponential", "mean": 1e-5},
        "timing.compute": {"dist": "exponential", "mean": "model"},
        "devices": [{"name": "t4", "count": 4}, {"name": "a100_40gb", "count": 4}]})
    rfast_sim.run(devices).save(tmp / "devices")
    timing = scenario(**{"problem": None, "timing.message_bytes": 1e3,
                         "graphs.undirected": {"kind": "ring"},
                         "algorithms": [{"name": "rfast"}, {"name": "dpsgd"}]})
    rfast_sim.run(timing).save(tmp / "timing")
    plain = scenario(**base, algorithms=[{"name": "rfast", "step_size": 0.05},
                                         {"name": "allreduce_sgd", "step_size": 0.05}])
    spec = {"scenario": scenario_to_dict(plain), "seeds": 1,
            "grid": {"timing.drop_prob": [0.0, 0.1]}}
    return {"run": tmp / "run", "devices": tmp / "devices", "timing": tmp / "timing",
            "sweep": sweep_and_summarize(tmp, spec)}


def _json_paths(*files: Path) -> set[str]:
    return set().union(*(key_paths(json.loads(f.read_text())) for f in files))


def test_every_file_a_run_or_a_sweep_writes_is_listed(outputs):
    files = documented()["files"]
    written = {p.relative_to(folder).as_posix() for folder in outputs.values()
               for p in folder.rglob("*") if p.is_file() and "jax_cache" not in p.parts}
    written = {re.sub(r"^points/[0-9a-f]+\.parquet$", "points/<run_id>.parquet", w)
               for w in written}
    assert not missing(written, files), missing(written, files)


def test_every_metrics_column_is_listed(outputs):
    frame = pd.read_parquet(outputs["run"] / "metrics.parquet")
    names = documented()["metrics.parquet"]
    produced = {*frame.columns, *metrics.METRIC_COLUMNS, *metrics.COUNTERS}
    assert not missing(produced, names), missing(produced, names)
    assert not names - produced, f"listed, but no run wrote them: {sorted(names - produced)}"


def test_every_summary_key_is_listed(outputs):
    paths = _json_paths(*(outputs[k] / "summary.json" for k in ("run", "devices", "timing")))
    names = documented()["summary.json"]
    assert not missing(paths, names), missing(paths, names)
    tried = {p.rsplit(".", 1)[1] for p in paths if ".tried[]." in p}
    assert not missing(tried, documented()["comparison.csv"])


def _columns(files: list[Path]) -> set[str]:
    assert files
    return set().union(*(pd.read_parquet(f).columns if f.suffix == ".parquet"
                         else pd.read_csv(f).columns for f in files))


def test_every_comparison_and_network_column_is_listed(outputs):
    pages = documented()
    for section, folders in (("comparison.csv", ("run", "devices")), ("network.csv", ("timing",))):
        columns = _columns([outputs[k] / section for k in folders])
        assert not missing(columns, pages[section]), (section, missing(columns, pages[section]))


def test_every_sweep_column_and_manifest_key_is_listed(outputs):
    """A swept key's column is ``<swept key>``; a point's rows are the metrics frame's."""
    pages = documented()
    folder = outputs["sweep"]
    swept = set(json.loads((folder / "manifest.json").read_text())["spec"]["grid"])

    def as_listed(columns: set[str]) -> set[str]:
        return {"<swept key>" if c in swept else c for c in columns}

    points = as_listed(_columns(list((folder / "points").glob("*.parquet"))))
    assert not missing(points, pages["points/<run_id>.parquet"] | pages["metrics.parquet"])
    summary = as_listed(_columns([folder / "summary.csv"]))
    assert not missing(summary, pages["summary.csv"]), missing(summary, pages["summary.csv"])
    timing_only = set(metrics.counters_table(pd.read_parquet(outputs["timing"] /
                                                             "metrics.parquet")).columns)
    assert not missing(timing_only - {"algorithm"}, pages["summary.csv"])
    paths = _json_paths(folder / "manifest.json")
    assert not missing(paths, pages["manifest.json"]), missing(paths, pages["manifest.json"])


def _row_keys(function: Any) -> set[str]:
    """The keys of the dict literals a function appends as a table's rows."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(function))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "append" and node.args
                and isinstance(node.args[0], ast.Dict)):
            keys |= {k.value for k in node.args[0].keys if isinstance(k, ast.Constant)}
    return keys


@pytest.mark.parametrize(("section", "function"), [("claims.csv", paper.reproduce),
                                                   ("designs.csv", paper._designs)])
def test_reproduce_tables_are_listed(section, function):
    """`reproduce` runs for many minutes: its tables' columns are read from its code."""
    columns = _row_keys(function)
    assert columns
    assert columns == documented()[section]


def test_every_timeline_key_and_event_is_listed(tmp_path):
    """Timelines of a lossy, churning, NIC-queued timing-only run: every ``otherData`` key,
    event category and loss name is on the page."""
    res = rfast_sim.run(scenario(**{
        "problem": None, "timing.message_bytes": 1e4, "timing.bandwidth": 1e5,
        "timing.nic": {"queue": "latest"}, "timing.churn": {"mtbf": 10.0, "mttr": 3.0,
                                                            "rejoin": "reset"},
        "graphs.undirected": {"kind": "ring"},
        "algorithms": [{"name": "rfast"}, {"name": "dpsgd"}, {"name": "allreduce_sgd"}]}))
    section = documented()["timeline-<algorithm>-<seed>.json"]
    text = PAGE.read_text().split("## `timeline-")[1]
    seen: dict[str, set[str]] = {"keys": set(), "cats": set(), "losses": set()}
    for name in ("rfast", "dpsgd", "allreduce_sgd"):
        data = json.loads(res.timeline(tmp_path / f"{name}.json", name).read_text())
        seen["keys"] |= {f"otherData.{k}" for k in data["otherData"]} | set(data) - {"otherData"}
        seen["cats"] |= {e["cat"] for e in data["traceEvents"] if "cat" in e}
        seen["losses"] |= {e["name"] for e in data["traceEvents"] if e.get("cat") == "loss"}
    assert {"fault", "loss", "queue", "round"} <= seen["cats"], seen["cats"]  # all were drawn
    assert not missing(seen["keys"] | seen["cats"], section), missing(seen["keys"] | seen["cats"],
                                                                      section)
    assert all(f"`{loss}`" in text for loss in seen["losses"]), seen["losses"]
