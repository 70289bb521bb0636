"""Which trace builder covers a run's timing settings: the vectorised builder's scope, and
whether simultaneous events have probability zero. Read by the set-up (which builder runs)
and by the memory estimate (what the trace costs), from the settings alone."""

from __future__ import annotations

from rfast_sim.scenario import Dist, Timing
from rfast_sim.timing.laws import law


def vector_gap(t: Timing, time_varying: bool, pattern: str, supersedes: bool) -> str | None:
    """None when the vector builder covers a run of these timing settings (on time-varying
    graphs or not, an algorithm of this communication pattern), else why not (one phrase)."""
    nic = t.nic
    checks = [
        (pattern not in ("all", "one"), f"pattern {pattern!r} (only asynchronous methods)"),
        (time_varying, "time-varying graphs"),
        ((t.churn is not None and t.churn.random) or t.link_churn is not None or bool(t.outages),
         "node or link faults"),
        (nic is not None and nic.ingress is not None, "a modelled ingress"),
        (nic is not None and nic.queue == "latest" and supersedes, "queue: latest"),
    ]
    return next((why for bad, why in checks if bad), None)


def ties_unlikely(t: Timing) -> bool:
    """Simultaneous events (which the two engines order differently: SimPy by when they were
    scheduled) have probability zero: continuous compute times, and without a NIC (where the
    packets of one computation leave together) continuous latencies. `engine: auto` uses the
    vector builder only then."""

    def continuous(d: Dist | None) -> bool:
        return d is None or (d.file is None and law(d) is not None)

    latencies = [t.latency, *(ln.latency for ln in t.links)]
    if t.clusters is not None:
        latencies += [t.clusters.intra.latency, t.clusters.inter.latency]
    return continuous(t.compute_law()) and (t.nic is not None or all(map(continuous, latencies)))
