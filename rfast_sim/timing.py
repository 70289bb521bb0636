"""Timing model: compute times, per-node speeds, stragglers, link latency and packet drops.

Laws come from :mod:`rfast_sim.laws` (frozen ``scipy.stats`` distributions by their mean).
Every random quantity comes from its own named stream
(:mod:`rfast_sim.seeding`), so node i's k-th compute time and link (a, b)'s k-th packet fate are
the same in every algorithm's run: common random numbers make comparisons fair.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from rfast_sim.laws import (
    Blocked,
    Draw,
    chunk_free,
    constant,
    gilbert_elliott_states,
    node_sampler,
    sample,
    sampler,
    uniforms,
)
from rfast_sim.scenario import Dist, LinkTiming, Outage, Scenario
from rfast_sim.seeding import stream, streams


class TimingModel:
    """Seeded samplers for one run. Knows nothing of the algorithm's values."""

    def __init__(self, sc: Scenario, seed: int, message_bytes: float) -> None:
        t = sc.timing
        n = sc.nodes
        self.n = n
        self.timing = t
        rng = stream(seed, "nodes")
        speed = sample(t.speed, rng, n) if t.speed is not None else np.ones(n)
        st = t.stragglers
        slow = np.zeros(n, dtype=bool)
        if st.nodes:
            slow[st.nodes] = True
        if st.count:
            slow[rng.choice(n, size=st.count, replace=False)] = True
        self.straggler_nodes = [int(i) for i in np.flatnonzero(slow)]
        self.node_factor = speed * np.where(slow, st.slowdown, 1.0)
        self.message_bytes = message_bytes
        self._seed = seed
        compute_law, free = sampler(t.compute), chunk_free(t.compute)
        self._compute = [
            Blocked(rng_i, node_sampler(t.compute, i, compute_law), chunk_free=free)
            for i, rng_i in enumerate(streams(seed, "compute", np.arange(n)))
        ]
        self._transient = [uniforms(r) for r in streams(seed, "transient", np.arange(n))]
        self._choice = [uniforms(r) for r in streams(seed, "choice", np.arange(n))]
        # each latency law's sampler, made once (not per link): keyed by the law's identity
        self._samplers: dict[int, tuple[Dist, Draw, bool]] = {}
        self._links: dict[tuple[int, int], _Link] = {}
        self._outages: dict[tuple[int, int], list[Outage]] = {}
        for o in t.outages:
            if o.src is not None and o.dst is not None:
                self._outages.setdefault((o.src, o.dst), []).append(o)
        self.node_down = _node_down_periods(sc, seed)
        self._link_specs = {(ln.src, ln.dst): ln for ln in t.links}
        self._group = {i: k for k, g in enumerate(t.clusters.groups) for i in g} \
            if t.clusters is not None else {}
        self._drop_override = {(ld.src, ld.dst): ld.drop_prob for ld in t.link_drop_prob}

    def compute_time(self, node: int) -> float:
        """Node's next compute duration: base draw x node factor x transient slowdown."""
        d = self._compute[node].next() * self.node_factor[node]
        st = self.timing.stragglers
        if st.prob > 0 and self._transient[node].next() < st.prob:
            d *= st.slowdown
        return d

    def compute_times(self, node: int, k: int) -> np.ndarray:
        """The node's next k compute durations, as k calls of `compute_time` give them."""
        d = self._compute[node].take(k) * self.node_factor[node]
        st = self.timing.stragglers
        if st.prob > 0:
            d = np.where(self._transient[node].take(k) < st.prob, d * st.slowdown, d)
        return d

    def link_fates(self, src: int, dst: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The next k packets' (latency, lost) on a link, as k calls of `link_fate` give them."""
        link = self._link(src, dst)
        loss = self.timing.loss
        if loss is None:
            return link.latency.take(k), link.drop.take(k) < link.drop_prob
        u = link.drop.take(2 * k)  # per packet: its loss draw, then the state's move
        bad, link.bad = gilbert_elliott_states(u[1::2], loss.p_good_bad, loss.p_bad_good,
                                               link.bad)
        return link.latency.take(k), u[0::2] < np.where(bad, loss.loss_bad, loss.loss_good)

    def choices(self, node: int, count: int, k: int) -> np.ndarray:
        """The node's next `count` choices among k, as `choose` makes them one by one."""
        return np.minimum((self._choice[node].take(count) * k).astype(np.int64), k - 1)

    def choose(self, node: int, k: int) -> int:
        """A uniform index in 0..k-1 from the node's choice stream (AD-PSGD's random peer)."""
        return min(int(self._choice[node].next() * k), k - 1)

    def node_up(self, i: int, t: float) -> bool:
        """Is node i up at time t (down periods are [start, end))?"""
        p = self.node_down.get(i)
        if p is None:
            return True
        k = bisect.bisect_right(p.starts, t) - 1
        return k < 0 or t >= p.ends[k]

    def next_down(self, i: int, t: float) -> tuple[float, float] | None:
        """Node i's first down period that ends after t (start, end; end = inf: never back)."""
        p = self.node_down.get(i)
        if p is None:
            return None
        k = bisect.bisect_right(p.ends, t)
        return (p.starts[k], p.ends[k]) if k < len(p.ends) else None

    def down_between(self, i: int, a: float, b: float) -> bool:
        """Was node i down at any moment of [a, b]?"""
        down = self.next_down(i, a)
        return down is not None and down[0] <= b

    def link_down_periods(self, until: float) -> dict[tuple[int, int], list[tuple[float, float]]]:
        """Every used link's down periods up to `until` (outages and churn), for plots."""
        out = {}
        for key, link in self._links.items():
            self.link_up(*key, until)  # walk the churn periods to the end
            spans = [(o.start, o.end if o.end is not None else math.inf) for o in link.outages]
            spans += link.history
            if spans:
                out[key] = sorted(spans)
        return out

    def drop_prob(self, src: int, dst: int) -> float:
        return self._drop_override.get((src, dst), self.timing.drop_prob or 0.0)

    def _link_timing(self, src: int, dst: int) -> tuple[Dist, float]:
        """(latency law, bandwidth) of a link: its `links` entry, else its cluster's
        intra/inter timing, else the scenario's; each field falls back separately."""
        t = self.timing
        own = self._link_specs.get((src, dst))
        if own is None and t.clusters is None:
            return t.latency, t.bandwidth
        layers: list[LinkTiming] = [own] if own is not None else []
        if t.clusters is not None and src in self._group and dst in self._group:
            same = self._group[src] == self._group[dst]
            layers.append(t.clusters.intra if same else t.clusters.inter)
        latency = next((x.latency for x in layers if x.latency is not None), t.latency)
        rate = next((x.bandwidth for x in layers if x.bandwidth is not None), t.bandwidth)
        return latency, rate

    def _link(self, src: int, dst: int) -> _Link:
        """A link's state, made when its first packet leaves (O(links used) in memory)."""
        link = self._links.get((src, dst))
        if link is None:
            link = self._new_link(src, dst, stream(self._seed, "latency", src, dst),
                                  stream(self._seed, "drop", src, dst))
        return link

    def open_links(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Make the state of every given link now (the same as one by one, made faster); their
        rates (`link_rate`)."""
        pairs = list(zip(src.tolist(), dst.tolist(), strict=True))
        new = [key for key in pairs if key not in self._links]
        ids = np.array(new, dtype=np.int64).reshape(-1, 2)
        for (a, b), lat, drop in zip(new, streams(self._seed, "latency", ids),
                                     streams(self._seed, "drop", ids), strict=True):
            self._new_link(a, b, lat, drop)
        return np.array([self._links[key].rate for key in pairs], dtype=float)

    def _new_link(self, src: int, dst: int, latency_rng: np.random.Generator,
                  drop_rng: np.random.Generator) -> _Link:
        law, rate = self._link_timing(src, dst)
        if law.dist == "matrix":
            draw, free = constant(float(law.data()[src, dst])), True
        else:
            draw, free = self._law_sampler(law)
        link = self._links[(src, dst)] = _Link(
            Blocked(latency_rng, draw, chunk_free=free), uniforms(drop_rng),
            self.drop_prob(src, dst), rate, self._outages.get((src, dst), []))
        churn = self.timing.link_churn
        if churn is not None:
            link.up_times = Blocked(stream(self._seed, "link_up", src, dst),
                                     sampler(churn.law("mtbf")))
            link.down_times = Blocked(stream(self._seed, "link_down", src, dst),
                                       sampler(churn.law("mttr")))
            link.toggle = link.up_times.next()
        return link

    def _law_sampler(self, law: Dist) -> tuple[Draw, bool]:
        """(sampler, chunk-free) of a latency law."""
        got = self._samplers.get(id(law))
        if got is None:
            got = self._samplers[id(law)] = (law, sampler(law), chunk_free(law))
        return got[1], got[2]

    def link_rate(self, src: int, dst: int) -> float:
        """Bytes/s the link src->dst carries (a cap on every transfer on it)."""
        return self._link(src, dst).rate

    def link_up(self, src: int, dst: int, t: float) -> bool:
        """Is link src->dst up at time t? Ask in increasing t per link (departures are)."""
        link = self._link(src, dst)
        for o in link.outages:
            if o.start <= t and (o.end is None or t < o.end):
                return False
        if link.up_times is None or link.down_times is None:
            return True
        while link.toggle <= t:  # alternate up and down periods until past t
            link.up = not link.up
            start = link.toggle
            link.toggle += (link.up_times if link.up else link.down_times).next()
            if not link.up:
                link.history.append((start, link.toggle))
        return link.up

    def link_fate(self, src: int, dst: int) -> tuple[float, bool]:
        """The next packet's fate on link src->dst, drawn when it leaves the sender:
        (latency, lost?)."""
        link = self._link(src, dst)
        loss = self.timing.loss
        if loss is None:
            return link.latency.next(), link.drop.next() < link.drop_prob
        # Gilbert-Elliott: this packet's loss by the link's state, then the state moves on
        lost = link.drop.next() < (loss.loss_bad if link.bad else loss.loss_good)
        if link.drop.next() < (loss.p_bad_good if link.bad else loss.p_good_bad):
            link.bad = not link.bad
        return link.latency.next(), lost


@dataclass
class _Link:
    """One link's random streams and state."""

    latency: Blocked
    drop: Blocked
    drop_prob: float
    rate: float
    outages: list[Outage]
    bad: bool = False  # Gilbert-Elliott state
    up: bool = True  # link churn: the current period and when it ends
    toggle: float = 0.0
    up_times: Blocked | None = None
    down_times: Blocked | None = None
    history: list[tuple[float, float]] = field(default_factory=list)  # churn down periods


@dataclass
class Periods:
    """A node's down periods [starts[k], ends[k]), sorted and disjoint."""

    starts: list[float]
    ends: list[float]

    def spans(self) -> list[tuple[float, float]]:
        return list(zip(self.starts, self.ends, strict=True))


def _merge(spans: list[tuple[float, float]]) -> Periods:
    starts: list[float] = []
    ends: list[float] = []
    for a, b in sorted(spans):
        if starts and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return Periods(starts, ends)


def _node_down_periods(sc: Scenario, seed: int) -> dict[int, Periods]:
    """Every node's down periods up to run.until: its explicit outages and, with churn,
    alternating up (law mtbf) and down (law mttr) periods drawn from its own streams."""
    t = sc.timing
    spans: dict[int, list[tuple[float, float]]] = {}
    for o in t.outages:
        if o.node is not None:
            spans.setdefault(o.node, []).append((o.start, o.end if o.end is not None
                                                 else math.inf))
    if t.churn is not None and t.churn.random:
        horizon = sc.run.until if sc.run.until is not None else math.inf
        up_law, down_law = sampler(t.churn.law("mtbf")), sampler(t.churn.law("mttr"))
        for i in range(sc.nodes):
            up = Blocked(stream(seed, "node_up", i), up_law)
            down = Blocked(stream(seed, "node_down", i), down_law)
            clock = up.next()
            while clock < horizon:
                end = clock + down.next()
                spans.setdefault(i, []).append((clock, end))
                clock = end + up.next()
    return {i: _merge(s) for i, s in spans.items()}
