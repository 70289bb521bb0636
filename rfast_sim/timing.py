"""Timing model: compute times, per-node speeds, stragglers, link latency and packet drops.

Every law is a frozen ``scipy.stats`` distribution parameterised by its mean (see
:class:`rfast_sim.scenario.Dist`). Every random quantity comes from its own named stream
(:mod:`rfast_sim.seeding`), so node i's k-th compute time and link (a, b)'s k-th packet fate are
the same in every algorithm's run: common random numbers make comparisons fair.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rfast_sim.scenario import Dist, LinkTiming, Outage, Scenario
from rfast_sim.seeding import stream, streams

_BLOCK = 1024


def law(dist: Dist) -> Any:
    """The frozen scipy.stats law of `dist`, or None where it is a point mass (constant).

    uniform: low..high (default 0..2*mean); exponential: scale = mean; shifted_exponential:
    shift + Exp(mean - shift) (shift defaults to mean/2); lognormal: sigma of the log and
    scale = exp(log(mean) - sigma^2/2); gamma: shape, scale = mean/shape; pareto (shape b > 1):
    scale x_m = mean (b - 1)/b.
    """
    m = dist.mean
    kind = dist.dist
    if kind == "uniform":
        low, high = (dist.low, dist.high) if dist.low is not None else (0.0, 2.0 * m)
        assert high is not None
        return stats.uniform(loc=low, scale=high - low) if high > low else None
    if kind == "exponential":
        return stats.expon(scale=m) if m > 0 else None
    if kind == "shifted_exponential":
        shift = dist.shift if dist.shift is not None else 0.5 * m
        return stats.expon(loc=shift, scale=m - shift) if m > shift else None
    if kind == "lognormal":
        if m == 0 or dist.sigma == 0:
            return None
        return stats.lognorm(s=dist.sigma, scale=np.exp(np.log(m) - 0.5 * dist.sigma**2))
    if kind == "gamma":
        return stats.gamma(a=dist.shape, scale=m / dist.shape) if m > 0 else None
    if kind == "pareto":
        return stats.pareto(b=dist.shape, scale=m * (dist.shape - 1) / dist.shape) if m > 0 \
            else None
    return None  # constant


def sample(dist: Dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw `size` non-negative values of `dist` from `rng`."""
    return np.asarray(_sampler(dist)(rng, size), dtype=np.float64)


@dataclass
class _Blocked:
    """Serves values one at a time (`next`) or many (`take`) from blocks drawn by
    `draw(rng, size)`; blocks grow from 16 to 1024 values (hundreds of thousands of links each
    hold one), and both ways of reading consume the very same blocks, so the order never
    changes."""

    rng: np.random.Generator
    draw: Callable[[np.random.Generator, int], np.ndarray]
    block: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the current block
    buf: list[float] | None = None  # the same as Python floats, made when `next` needs them
    pos: int = 0
    size: int = 16
    # `draw` reads the generator value by value (see `_chunk_free`): `take` may then draw
    # what it needs in one call, the same values in fewer calls
    chunk_free: bool = False

    def _refill(self, want: int = 0) -> None:
        size = max(want, self.size) if self.chunk_free else self.size
        self.block = np.asarray(self.draw(self.rng, size), dtype=np.float64)
        self.buf = None
        self.pos = 0
        self.size = min(2 * self.size, _BLOCK)

    def next(self) -> float:
        if self.pos == len(self.block):
            self._refill()
        if self.buf is None:
            # Python floats: indexing a list is several times cheaper than a numpy scalar.
            self.buf = self.block.tolist()
        self.pos += 1
        return self.buf[self.pos - 1]

    def take(self, k: int) -> np.ndarray:
        """The next k values, as `next` would give them one by one."""
        parts = []
        while k > 0:
            if self.pos == len(self.block):
                self._refill(k)
            got = self.block[self.pos:self.pos + k]
            self.pos += len(got)
            k -= len(got)
            parts.append(got)
        return np.concatenate(parts) if len(parts) != 1 else parts[0]


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
        compute_law, free = _sampler(t.compute), _chunk_free(t.compute)
        self._compute = [
            _Blocked(rng_i, _node_sampler(t.compute, i, compute_law), chunk_free=free)
            for i, rng_i in enumerate(streams(seed, "compute", np.arange(n)))
        ]
        self._transient = [_uniforms(r) for r in streams(seed, "transient", np.arange(n))]
        self._choice = [_uniforms(r) for r in streams(seed, "choice", np.arange(n))]
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

    def open_links(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Make the state of every given link now (the same as one by one, made faster)."""
        new = [(a, b) for a, b in zip(src.tolist(), dst.tolist(), strict=True)
               if (a, b) not in self._links]
        ids = np.array(new, dtype=np.int64).reshape(-1, 2)
        for (a, b), lat, drop in zip(new, streams(self._seed, "latency", ids),
                                     streams(self._seed, "drop", ids), strict=True):
            self._new_link(a, b, lat, drop)

    def _new_link(self, src: int, dst: int, latency_rng: np.random.Generator,
                  drop_rng: np.random.Generator) -> _Link:
        law, rate = self._link_timing(src, dst)
        if law.dist == "matrix":
            sampler, free = _constant(float(law.data()[src, dst])), True
        else:
            sampler, free = self._sampler(law)
        link = self._links[(src, dst)] = _Link(
            _Blocked(latency_rng, sampler, chunk_free=free), _uniforms(drop_rng),
            self.drop_prob(src, dst), rate, self._outages.get((src, dst), []))
        churn = self.timing.link_churn
        if churn is not None:
            link.up_times = _Blocked(stream(self._seed, "link_up", src, dst),
                                     _sampler(churn.law("mtbf")))
            link.down_times = _Blocked(stream(self._seed, "link_down", src, dst),
                                       _sampler(churn.law("mttr")))
            link.toggle = link.up_times.next()
        return link

    def _sampler(self, law: Dist) -> tuple[Draw, bool]:
        """(sampler, chunk-free) of a latency law."""
        got = self._samplers.get(id(law))
        if got is None:
            got = self._samplers[id(law)] = (law, _sampler(law), _chunk_free(law))
        return got[1], got[2]

    def link_rate(self, src: int, dst: int) -> float:
        """Bytes/s the link src->dst carries (a cap on every transfer on it)."""
        return self._link(src, dst).rate

    def link_rates(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """`link_rate` of many links, without making their state."""
        if not self._link_specs and self.timing.clusters is None:
            return np.full(len(src), float(self.timing.bandwidth))
        return np.array([self._link_timing(a, b)[1] for a, b in zip(src.tolist(), dst.tolist(),
                                                                     strict=True)], float)

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

    latency: _Blocked
    drop: _Blocked
    drop_prob: float
    rate: float
    outages: list[Outage]
    bad: bool = False  # Gilbert-Elliott state
    up: bool = True  # link churn: the current period and when it ends
    toggle: float = 0.0
    up_times: _Blocked | None = None
    down_times: _Blocked | None = None
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
        up_law, down_law = _sampler(t.churn.law("mtbf")), _sampler(t.churn.law("mttr"))
        for i in range(sc.nodes):
            up = _Blocked(stream(seed, "node_up", i), up_law)
            down = _Blocked(stream(seed, "node_down", i), down_law)
            clock = up.next()
            while clock < horizon:
                end = clock + down.next()
                spans.setdefault(i, []).append((clock, end))
                clock = end + up.next()
    return {i: _merge(s) for i, s in spans.items()}

Draw = Callable[[np.random.Generator, int], np.ndarray]


def gilbert_elliott_states(move: np.ndarray, p_good_bad: float, p_bad_good: float,
                           bad0: bool) -> tuple[np.ndarray, bool]:
    """The Gilbert-Elliott chain without a loop: (is the link bad at each packet, is it bad
    after the last), from each packet's move draw (`move[k] < p` moves on) and the state
    before the first. Each packet's move is one of four maps of {good, bad}: identity,
    swap, constant good, constant bad; the state at packet k is the value of the last
    constant map before it (else `bad0`), flipped once per swap since."""
    m = len(move)
    if not m:
        return np.zeros(0, bool), bad0
    to_bad, to_good = move < p_good_bad, move < p_bad_good
    const = to_bad != to_good  # a constant map: its value is bad where only to_bad holds
    last = np.maximum.accumulate(np.where(const, np.arange(m), -1))
    swaps = np.cumsum(to_bad & to_good)
    at = np.maximum(last, 0)
    base = np.where(last >= 0, to_bad[at], bad0)
    after = base ^ ((swaps - np.where(last >= 0, swaps[at], 0)) % 2 == 1)  # after map k
    return np.concatenate([[bad0], after[:-1]]).astype(bool), bool(after[-1])


def _uniforms(rng: np.random.Generator) -> _Blocked:
    return _Blocked(rng, lambda r, k: r.random(k), chunk_free=True)


def _chunk_free(dist: Dist) -> bool:
    """Whether `dist`'s draws read the generator value by value, so that k values drawn in any
    chunks are the same: numpy's continuous samplers do; its bounded integers (behind
    `empirical`) buffer within one call, and scipy's own samplers are not relied on."""
    if dist.file is not None or dist.dist == "empirical":
        return False
    frozen = law(dist)
    return frozen is None or _fast(frozen) is not None


def _constant(value: float) -> Draw:
    return lambda rng, k: np.full(k, value)


def _sampler(dist: Dist) -> Draw:
    if dist.dist == "empirical":
        values = dist.data()
        return lambda rng, k: rng.choice(values, size=k)
    frozen = law(dist)
    if frozen is None:
        return _constant(dist.expected())
    return _fast(frozen) or (lambda rng, k: frozen.rvs(size=k, random_state=rng))


def _fast(frozen: Any) -> Draw | None:
    """scipy's own arithmetic for the common laws without its per-call checking (which costs
    more than the draw for small blocks): the same values, bit for bit (tested)."""
    name = frozen.dist.name
    scale, loc = frozen.kwds.get("scale", 1.0), frozen.kwds.get("loc", 0.0)
    if name == "expon":
        return lambda rng, k: rng.standard_exponential(k) * scale + loc
    if name == "lognorm":
        s = frozen.kwds["s"]
        return lambda rng, k: np.exp(s * rng.standard_normal(k)) * scale + loc
    if name == "gamma":
        a = frozen.kwds["a"]
        return lambda rng, k: rng.standard_gamma(a, k) * scale + loc
    if name == "uniform":
        return lambda rng, k: rng.uniform(0.0, 1.0, k) * scale + loc
    return None


def _node_sampler(dist: Dist, node: int, shared: Draw) -> Draw:
    """Node `node`'s compute law: its own rows of a durations file (drawn from, or replayed in
    order), else the shared law."""
    if dist.file is None or dist.dist not in ("empirical", "trace"):
        return shared
    values = dist.durations().of(node)
    if dist.dist == "empirical":
        return lambda rng, k: rng.choice(values, size=k)
    pos = [0]

    def replay(rng: np.random.Generator, k: int) -> np.ndarray:
        idx = pos[0] + np.arange(k)
        pos[0] += k
        if dist.loop:
            return values[idx % len(values)]
        return np.where(idx < len(values), values[np.minimum(idx, len(values) - 1)], np.inf)

    return replay
