"""An event trace as Chrome trace events (the JSON that Perfetto and ``chrome://tracing`` open).

One process per run, one thread (track) per node and one per node's NIC; spans that would not
nest on a track (Perfetto drops a slice that partly overlaps another) go to a lane of their
own below it ("node 3 · 2"). Times are kept in integer nanoseconds, so nesting is decided on
the values Perfetto reads, and written in microseconds of simulated time with a 0.3 ns guard
(a reader that truncates and one that rounds get the same nanosecond).

Per packet: a zero-length send slice on the sender's track, a flow (``s`` / ``f`` events with
the packet's id) to a zero-length receive slice on the receiver's, or to an instant event
that says why it was lost (link, receiver down, sender down) or superseded; its wait in the
sender's egress queue and its transfer as spans on the sender's NIC track.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfast_sim.timing.engine.trace import (
    DELIVERED,
    FATE_NAMES,
    IN_FLIGHT,
    LOST_LINK,
    LOST_RECEIVER,
    EventTrace,
    PacketLog,
)

PID = 1
_LANES = 500  # lanes per node track (and as many for its NIC): tid = (node + 1) * 1000 + lane
_RING = 1  # the all-reduce rounds' track


def node_tid(i: int, nic: bool = False) -> int:
    return (i + 1) * 1000 + (_LANES if nic else 0)


def us(ns: int) -> float | int:
    """Nanoseconds as the file's microseconds (see the module docstring: the 0.3 ns guard)."""
    return round((ns + 0.3) / 1000, 4) if ns else 0


def _ns(t: float) -> int:
    return round(t * 1e9)


@dataclass
class _Item:
    ts: int  # ns
    dur: int  # ns; -1: an instant event
    base: int  # the track it belongs to (lane 0's tid)
    name: str
    cat: str
    args: dict[str, Any] | None = None
    flows: list[tuple[str, int]] = field(default_factory=list)  # ("s" | "f", packet id)


@dataclass
class _Stack:
    ends: list[tuple[int, int]] = field(default_factory=list)  # (end, dur) of open slices


class _Tracks:
    """Lane assignment with Perfetto's own nesting rule (intervals closed on the left, open
    on the right; instants at one time stack): a slice goes on the first lane of its track
    where it nests."""

    def __init__(self) -> None:
        self.stacks: dict[int, _Stack] = {}
        self.used: dict[int, int] = {}  # tid -> its track's base

    def place(self, base: int, ts: int, dur: int) -> int:
        end, zero = ts + max(dur, 0), dur <= 0
        for lane in range(_LANES):
            tid = base + lane
            st = self.stacks.setdefault(tid, _Stack()).ends
            while st and (st[-1][0] < ts or (st[-1][0] == ts and not (st[-1][1] <= 0 and zero))):
                st.pop()
            if not st or end <= st[-1][0]:
                st.append((end, dur))
                self.used[tid] = base
                return tid
        return base + _LANES - 1  # never in practice: 500 spans open at once on one node


def _window(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (end >= lo) & (start <= hi)


def _node_items(trace: EventTrace, keep: np.ndarray, lo: float, hi: float,
                stop: float) -> Iterator[_Item]:
    """Computations, down periods, resets and rounds of the kept nodes."""
    node, begin, dur = trace.compute_spans()
    pick = keep[node] & _window(begin, begin + dur, lo, hi)
    for i, b, d in zip(node[pick].tolist(), begin[pick].tolist(), dur[pick].tolist(),
                       strict=True):
        yield _Item(_ns(b), _ns(b + d) - _ns(b), node_tid(i), "compute", "compute")
    for i, spans in trace.node_down.items():
        for a, b in spans:
            b = min(b, stop)
            if keep[i] and b >= lo and a <= hi:
                yield _Item(_ns(a), _ns(b) - _ns(a), node_tid(i), "down", "fault")
    resets = trace.is_kind("reset") & (trace.time >= lo) & (trace.time <= hi)
    for i, t in zip(trace.node[resets].tolist(), trace.time[resets].tolist(), strict=True):
        if keep[i]:
            yield _Item(_ns(t), -1, node_tid(i), "reset", "fault")
    yield from _round_items(trace, keep, lo, hi)


def _round_items(trace: EventTrace, keep: np.ndarray, lo: float, hi: float) -> Iterator[_Item]:
    """Synchronous rounds (a node's, or the all-reduce's) and their waiting part."""
    rn, rs, rc, re = trace.round_node, trace.round_start, trace.round_compute, trace.round_end
    count: dict[int, int] = {}
    for i, s, c, e in zip(rn.tolist(), rs.tolist(), rc.tolist(), re.tolist(), strict=True):
        k = count[i] = count.get(i, -1) + 1
        if (i >= 0 and not keep[i]) or e < lo or s > hi:
            continue
        base = node_tid(i) if i >= 0 else _RING
        yield _Item(_ns(s), _ns(e) - _ns(s), base, f"round {k}", "round")
        if i < 0:  # all-reduce: every node computes, then the ring moves the chunks
            yield _Item(_ns(s), _ns(c) - _ns(s), base, "computations", "round")
        if e > c:
            yield _Item(_ns(c), _ns(e) - _ns(c), base,
                        "barrier wait" if i >= 0 else "ring all-reduce", "round")


def _packet_items(p: PacketLog, keep: np.ndarray, lo: float, hi: float,
                  nic: bool) -> Iterator[_Item]:
    """Each kept packet's send slice, queueing and transfer spans and its end (see the
    module docstring); a flow where both ends' tracks are in the file."""
    pick = np.flatnonzero((p.sent >= lo) & (p.sent <= hi) & (keep[p.src] | keep[p.dst]))
    cols = (p.src, p.dst, p.channel, p.seq, p.round, p.sent, p.started, p.left, p.end, p.fate)
    for k, i, j, c, q, r, sent, started, left, end, fate in zip(
            pick.tolist(), *(col[pick].tolist() for col in cols), strict=True):
        pid = k + 1
        # the packet's details once, on its send slice (a file of many packets stays small)
        args = {"to": j, "channel": c, "seq": q, **({"round": r} if r >= 0 else {}),
                "fate": FATE_NAMES[fate]}
        flow = fate != IN_FLIGHT and keep[i] and keep[j]
        s_ns = _ns(sent)
        if keep[i]:
            yield _Item(s_ns, 0, node_tid(i), f"send → {j}", "packet", args,
                        [("s", pid)] if flow else [])
            if nic and started == started and started > sent:
                yield _Item(s_ns, _ns(started) - s_ns, node_tid(i, nic=True), f"queued → {j}",
                            "queue")
            if nic and left == left and started == started:
                yield _Item(_ns(started), _ns(left) - _ns(started), node_tid(i, nic=True),
                            f"transmit → {j}", "transfer")
        if fate == IN_FLIGHT:
            continue
        at = j if fate in (DELIVERED, LOST_LINK, LOST_RECEIVER) else i
        if not keep[at]:
            continue
        e_ns, got = _ns(end), {"from": i, "channel": c, "seq": q}
        if fate == DELIVERED:
            yield _Item(e_ns, 0, node_tid(j), f"receive ← {i}", "packet", got,
                        [("f", pid)] if flow else [])
        else:
            yield _Item(e_ns, -1, node_tid(at), FATE_NAMES[fate], "loss", {**got, "to": j},
                        [("f", pid)] if flow else [])


def _flow(kind: str, pid: int, tid: int, ts: int) -> dict[str, Any]:
    ev = {"ph": kind, "pid": PID, "tid": tid, "ts": us(ts), "id": pid, "name": "packet",
          "cat": "packet"}
    if kind == "f":
        ev["bp"] = "e"  # bind to the enclosing slice: the receive slice (or loss instant)
    return ev


def _event(it: _Item, tid: int) -> dict[str, Any]:
    ev: dict[str, Any] = {"ph": "X" if it.dur >= 0 else "i", "pid": PID, "tid": tid,
                          "ts": us(it.ts), "name": it.name, "cat": it.cat}
    if it.dur >= 0:
        ev["dur"] = us(it.dur)
    else:
        ev["s"] = "t"
    if it.args:
        ev["args"] = it.args
    return ev


def _names(tracks: _Tracks, n: int) -> dict[int, str]:
    names = {}
    for tid, base in tracks.used.items():
        if base == _RING:
            what = "all-reduce rounds"
        else:
            what = f"node {base // 1000 - 1}" + (" NIC" if base % 1000 else "")
        lane = tid - base
        names[tid] = what + (f" · {lane + 1}" if lane else "")
    return names


def trace_events(trace: EventTrace, n: int, *, start: float = 0.0, until: float = math.inf,
                 nodes: list[int] | None = None, title: str = "run") -> Iterator[dict[str, Any]]:
    """The Chrome trace events of one trace in a window: spans overlapping [start, until]
    and packets sent in it, of `nodes` (default: all); metadata events (track names) last."""
    keep = np.zeros(n, bool)
    keep[nodes if nodes is not None else slice(None)] = True
    stop = float(trace.sample_time[-1]) if len(trace.sample_time) else 0.0
    items = list(_node_items(trace, keep, start, until, stop))
    if trace.packets is not None:
        nic = trace.network.get("queue", "none") != "none"
        items += _packet_items(trace.packets, keep, start, until, nic)
    # time order; at one time the longer span first (it encloses), instants after slices
    items.sort(key=lambda it: (it.ts, -it.dur if it.dur >= 0 else 1))
    tracks = _Tracks()
    for it in items:
        tid = tracks.place(it.base, it.ts, it.dur)
        yield _event(it, tid)
        for kind, pid in it.flows:
            yield _flow(kind, pid, tid, it.ts)
    yield {"ph": "M", "pid": PID, "name": "process_name", "args": {"name": title}}
    for tid, name in sorted(_names(tracks, n).items()):
        yield {"ph": "M", "pid": PID, "tid": tid, "name": "thread_name", "args": {"name": name}}
        yield {"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index",
               "args": {"sort_index": tid}}
