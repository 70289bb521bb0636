"""The event timeline of a trace: compute spans, rounds and barrier waits, packets as flows from
sender to receiver, egress queueing, deliveries, losses, down periods (the static twin of the
Perfetto file that ``rfast-sim timeline`` writes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rfast_sim.plotting.curves import new_figure

_FATE_STYLE = {  # PacketLog.fate -> (colour, label)
    0: ("tab:green", "packet (send → arrival)"),
    1: ("tab:red", "packet lost"),
    2: ("tab:red", "_"),
    3: ("tab:red", "_"),
    4: ("tab:orange", "superseded in the queue"),
}


def plot_timeline(trace: Any, until: float = 5.0, ax: Any = None, start: float = 0.0,
                  nodes: list[int] | None = None, flows: bool = True) -> Any:
    """Gantt-like view of an event trace from `start` to `until`, a row per node (`nodes`,
    default all): compute spans, synchronous rounds (outlined) and barrier waits (dotted),
    deliveries and drops at the receiver, down periods of nodes (grey) and of links (red, on
    the sender's row), and resets (black diamonds). With the packet log (a trace from
    `Result.packet_trace()`) and `flows`: each packet as a line from its send (sender's
    row) to its arrival or loss (receiver's row), and its wait in the sender's egress queue
    as an orange bar under that row."""
    shown = list(range(len(trace.compute_durations))) if nodes is None else list(nodes)
    row = np.full(len(trace.compute_durations), -1)
    row[shown] = np.arange(len(shown))
    if ax is None:
        ax = new_figure((11, 0.4 * len(shown) + 1.2)).subplots()
        ax.figure.set_layout_engine("constrained")
    _spans(ax, trace, row, start, until)
    if flows and trace.packets is not None:
        _packets(ax, trace.packets, row, start, until)
    window = (trace.time >= start) & (trace.time <= until)
    for kind, style, name in (("deliver", dict(marker="|", color="tab:green"), "delivered"),
                              ("drop", dict(marker="x", color="tab:red"), "dropped"),
                              ("reset", dict(marker="D", color="black"), "reset")):
        pick = np.flatnonzero(window & trace.is_kind(kind))
        pick = pick[row[trace.node[pick]] >= 0]
        if len(pick) or kind != "reset":
            ax.scatter(trace.time[pick], row[trace.node[pick]], s=25, label=name, zorder=3,
                       **style)
    ax.set_yticks(range(len(shown)), [str(i) for i in shown])
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("node")
    ax.set_xlim(start, until)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("computations (bars), packets from sender to receiver, losses at the receiver"
                 if trace.packets is not None and flows else
                 "computations (bars), packet arrivals and losses at the receiver")
    return ax


def _spans(ax: Any, trace: Any, row: np.ndarray, start: float, until: float) -> None:
    """Computations, rounds and barrier waits, node and link down periods."""
    node, begin, duration = trace.compute_spans()
    for i, t0, d in zip(node, begin, duration, strict=True):
        if row[i] >= 0 and start <= t0 + d and t0 <= until:
            ax.broken_barh([(t0, d)], (row[i] - 0.35, 0.7), facecolor="tab:blue", alpha=0.6,
                           edgecolor="white", linewidth=0.8)
    label = ("round", "barrier wait")
    for i, s, c, e in zip(trace.round_node, trace.round_start, trace.round_compute,
                          trace.round_end, strict=True):
        if e < start or s > until or (i >= 0 and row[i] < 0):
            continue
        y, h = (row[i] - 0.42, 0.84) if i >= 0 else (-0.5, max(row.max(), 0) + 1.0)
        ax.broken_barh([(s, e - s)], (y, h), facecolor="none", edgecolor="0.3", lw=0.8,
                       label=label[0])
        ax.broken_barh([(c, e - c)], (y, h), facecolor="none", edgecolor="0.55", hatch="..",
                       lw=0, label=label[1])
        label = ("_", "_")
    _down(ax, trace, row, until)


def _down(ax: Any, trace: Any, row: np.ndarray, until: float) -> None:
    """Down periods of nodes (their rows) and of links (their sender's)."""
    label_ = "node down"
    for i, spans in trace.node_down.items():
        for a, b in spans:
            if row[i] >= 0:
                ax.broken_barh([(a, min(b, until) - a)], (row[i] - 0.45, 0.9), color="0.6",
                               alpha=0.5, hatch="//", label=label_)
                label_ = "_"
    label_ = "link down (src row)"
    for (src, _dst), spans in trace.link_down.items():
        for a, b in spans:
            if row[src] >= 0:
                ax.broken_barh([(a, min(b, until) - a)], (row[src] + 0.36, 0.08),
                               color="tab:red", label=label_)
                label_ = "_"


def _packets(ax: Any, p: Any, row: np.ndarray, start: float, until: float) -> None:
    """Each packet sent in the window as a line (coloured by its fate) and its queueing."""
    from matplotlib.collections import LineCollection

    sent = (p.sent >= start) & (p.sent <= until)
    both = sent & (row[p.src] >= 0) & (row[p.dst] >= 0)
    for fate, (colour, label) in _FATE_STYLE.items():
        pick = both & (p.fate == fate)
        if not pick.any():
            continue
        # losses before leaving and superseded packets end on the sender's row
        to = np.where(np.isin(p.fate[pick], (3, 4)), row[p.src[pick]], row[p.dst[pick]])
        segs = np.stack([np.column_stack([p.sent[pick], row[p.src[pick]]]),
                         np.column_stack([p.end[pick], to])], axis=1)
        ax.add_collection(LineCollection(list(segs), colors=colour, linewidths=0.6,
                                         alpha=0.45 if fate == 0 else 0.8, label=label))
    wait = sent & (row[p.src] >= 0) & (p.started > p.sent)
    if wait.any():
        rows = row[p.src[wait]]
        for y in np.unique(rows):
            mine = rows == y
            bars = list(zip(p.sent[wait][mine], (p.started - p.sent)[wait][mine], strict=True))
            ax.broken_barh(bars, (y - 0.47, 0.1), color="tab:orange", alpha=0.8,
                           label="egress queueing" if y == rows.min() else "_")
