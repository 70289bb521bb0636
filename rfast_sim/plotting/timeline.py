"""The event timeline of a trace: compute spans, deliveries, drops, down periods."""

from __future__ import annotations

from typing import Any

from rfast_sim.plotting.curves import new_figure


def plot_timeline(trace: Any, until: float = 5.0, ax: Any = None, start: float = 0.0) -> Any:
    """Gantt-like view of an event trace from `start` to `until`: compute spans per node,
    deliveries and drops, down periods of nodes (grey) and of links (red, on the sender's
    row), and resets (black diamonds)."""
    if ax is None:
        ax = new_figure((9, 0.4 * len(trace.compute_durations) + 1)).subplots()
    node, begin, duration = trace.compute_spans()
    for i, t0, d in zip(node, begin, duration, strict=True):
        if t0 + d <= until and t0 + d >= start:
            ax.broken_barh([(t0, d)], (i - 0.35, 0.7), color="tab:blue", alpha=0.6)
    label = "node down"
    for i, spans in trace.node_down.items():
        for a, b in spans:
            ax.broken_barh([(a, min(b, until) - a)], (i - 0.45, 0.9), color="0.6", alpha=0.5,
                           hatch="//", label=label)
            label = "_"
    label = "link down (src row)"
    for (src, _dst), spans in trace.link_down.items():
        for a, b in spans:
            ax.broken_barh([(a, min(b, until) - a)], (src + 0.36, 0.08), color="tab:red",
                           label=label)
            label = "_"
    window = (trace.time >= start) & (trace.time <= until)
    for kind, style, name in (("deliver", dict(marker="|", color="tab:green"), "delivered"),
                              ("drop", dict(marker="x", color="tab:red"), "dropped"),
                              ("reset", dict(marker="D", color="black"), "reset")):
        pick = window & trace.is_kind(kind)
        if pick.any() or kind != "reset":
            ax.scatter(trace.time[pick], trace.node[pick], s=25, label=name, **style)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("node")
    ax.set_xlim(start, until)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("computations (bars), packet arrivals and losses at the receiver")
    return ax
