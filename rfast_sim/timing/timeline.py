"""A run's timeline: a trace with the packet log (re-derived, timing only:
:func:`rfast_sim.experiment.plan.packet_trace`) written as Chrome trace-event JSON for Perfetto
(https://ui.perfetto.dev) or ``chrome://tracing`` (:mod:`rfast_sim.timing.trace_events`), and
the checks of a window's options. ``rfast-sim timeline RUN_DIR`` and
:meth:`rfast_sim.Result.timeline` call it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from rfast_sim.scenario import ScenarioError
from rfast_sim.timing.engine import EventTrace
from rfast_sim.timing.trace_events import trace_events

TIME_UNIT = "microseconds of simulated time"


def pick_run(algs: list[str], seeds: list[int], algorithm: str | None, seed: int | None,
             names: tuple[str, str] = ("algorithm", "seed")) -> tuple[str, int]:
    """(algorithm, seed): the given ones checked against a run's algorithms and seeds, or its
    first ones. `names` name the options in the error messages."""
    if algorithm is None:
        algorithm = algs[0]
    elif algorithm not in algs:
        raise ScenarioError(f"{names[0]}: {algorithm!r} is not one of this run's algorithms; "
                            f"give one of {', '.join(algs)}")
    if seed is None:
        seed = seeds[0]
    elif seed not in seeds:
        raise ScenarioError(f"{names[1]}: {seed} is not one of this run's seeds; give one of "
                            f"{', '.join(map(str, seeds))}")
    return algorithm, seed


def check_window(run_end: float | None, start: float, until: float | None,
                 names: tuple[str, str] = ("start", "until")) -> tuple[float, float]:
    """(start, until) of a window in simulated seconds, checked: 0 <= start < until, and
    until at most the run's own end `run_end` (None: unbounded; the default window's end)."""
    end = run_end if run_end is not None else math.inf
    until = end if until is None else until
    if not (math.isfinite(start) and start >= 0):
        raise ScenarioError(f"{names[0]}: must be a time >= 0 in seconds (got {start:g})")
    if not until > start:
        raise ScenarioError(f"{names[1]}: must be after {names[0]} ({start:g} s; got "
                            f"{until:g})")
    if until > end:
        raise ScenarioError(f"{names[1]}: the run ends at {end:g} s (run.until); give a time "
                            f"up to {end:g}")
    return start, until


def derive_until(run_end: float | None, start: float, until: float) -> float | None:
    """How far to re-derive the trace for the window [start, until]: a window's length past
    its end (capped at the run's end `run_end`: None), so that what is under way at `until`
    (a computation, a packet in flight) shows where it ends."""
    end = run_end if run_end is not None else math.inf
    return None if until >= end else min(end, until + (until - start))


def parse_nodes(text: str, n: int, name: str = "nodes") -> list[int]:
    """'0-7,12' -> [0, ..., 7, 12] (nodes of an n-node run)."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ScenarioError(f"{name}: {part!r} is not a node or a range; give e.g. 0-7,12")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a > b or b >= n:
            raise ScenarioError(f"{name}: {part!r} is not in this run's nodes 0-{n - 1}; give "
                                "e.g. 0-7,12")
        out += range(a, b + 1)
    return sorted(set(out))


def check_nodes(nodes: list[int] | None, n: int, name: str = "nodes") -> list[int] | None:
    """The node list, checked against an n-node run (None: all nodes)."""
    if nodes is None:
        return None
    bad = [i for i in nodes if not 0 <= int(i) < n]
    if bad or not nodes:
        raise ScenarioError(f"{name}: {bad or 'an empty list'} is not in this run's nodes "
                            f"0-{n - 1}; give some of them")
    return sorted({int(i) for i in nodes})


def chrome_trace(trace: EventTrace, n: int, *, start: float = 0.0, until: float = math.inf,
                 nodes: list[int] | None = None, title: str = "run",
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Chrome trace-event JSON object of a trace (:mod:`rfast_sim.timing.trace_events`): spans
    overlapping [start, until] and packets sent in it, of `nodes` (default: all n)."""
    nodes = check_nodes(nodes, n)
    return {"traceEvents": list(trace_events(trace, n, start=start, until=until, nodes=nodes,
                                             title=title)),
            "displayTimeUnit": "ms", "otherData": _meta(trace, start, until, nodes, meta)}


def _meta(trace: EventTrace, start: float, until: float, nodes: list[int] | None,
          meta: dict[str, Any] | None) -> dict[str, Any]:
    return {"time_unit": TIME_UNIT, "window_s": [start, until if math.isfinite(until) else None],
            "nodes": "all" if nodes is None else nodes, "engine": trace.network.get("engine"),
            **(meta or {})}


def write_timeline(trace: EventTrace, n: int, path: str | Path, *, start: float = 0.0,
                   until: float = math.inf, nodes: list[int] | None = None,
                   title: str = "run", meta: dict[str, Any] | None = None) -> int:
    """Write `chrome_trace` to `path`, an event a line as it is made (a big window never
    sits in memory as one object); return the number of events."""
    nodes = check_nodes(nodes, n)
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        head = {"displayTimeUnit": "ms", "otherData": _meta(trace, start, until, nodes, meta)}
        f.write(json.dumps(head)[:-1] + ', "traceEvents": [\n')
        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for ev in trace_events(trace, n, start=start, until=until, nodes=nodes, title=title):
            f.write((",\n" if count else "") + encode(ev))
            count += 1
        f.write("\n]}\n")
    return count
