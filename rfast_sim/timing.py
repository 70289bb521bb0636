"""Timing model: compute times, per-node speeds, stragglers, link latency and packet drops.

Every random quantity comes from its own stream, derived from the scenario seed and the
stream's identity (node or link), so node i's k-th compute time and link (a, b)'s k-th packet
fate are the same in every algorithm's run: common random numbers make comparisons fair.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rfast_sim.scenario import Dist, Scenario

_BLOCK = 1024


def stream(seed: int, tag: str, *ids: int) -> np.random.Generator:
    """An independent generator for (seed, tag, ids): adding streams never shifts others."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tag.encode()), *ids]))


def sample(dist: Dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw `size` non-negative values of `dist` (parameterised by its mean)."""
    m = dist.mean
    if dist.dist == "constant":
        return np.full(size, m)
    if dist.dist == "uniform":
        if dist.low is not None and dist.high is not None:
            return rng.uniform(dist.low, dist.high, size)
        return rng.uniform(0.0, 2.0 * m, size)
    if dist.dist == "exponential":
        return rng.exponential(m, size) if m > 0 else np.zeros(size)
    if dist.dist == "shifted_exponential":
        shift = dist.shift if dist.shift is not None else 0.5 * m
        rest = m - shift
        return shift + (rng.exponential(rest, size) if rest > 0 else np.zeros(size))
    if dist.dist == "lognormal":
        if m == 0:
            return np.zeros(size)
        mu = np.log(m) - 0.5 * dist.sigma**2
        return rng.lognormal(mu, dist.sigma, size)
    if dist.dist == "gamma":
        return rng.gamma(dist.shape, m / dist.shape, size)
    if dist.dist == "pareto":
        xm = m * (dist.shape - 1) / dist.shape
        return xm * (1.0 + rng.pareto(dist.shape, size))
    raise ValueError(f"unknown distribution {dist.dist!r}")  # pragma: no cover


@dataclass
class _Blocked:
    """Serves values one at a time from blocks drawn by `draw(rng, n)`; order never changes."""

    rng: np.random.Generator
    draw: Callable[[np.random.Generator, int], np.ndarray]
    buf: list[float] = field(default_factory=list)
    pos: int = 0

    def next(self) -> float:
        if self.pos == len(self.buf):
            # Python floats: indexing a list is several times cheaper than a numpy scalar.
            self.buf = self.draw(self.rng, _BLOCK).tolist()
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]


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
        self.transfer_time = message_bytes / t.bandwidth
        self.message_bytes = message_bytes
        self._seed = seed
        self._compute = [
            _Blocked(stream(seed, "compute", i), lambda r, k: sample(t.compute, r, k))
            for i in range(n)
        ]
        self._transient = [
            _Blocked(stream(seed, "transient", i), lambda r, k: r.random(k)) for i in range(n)
        ]
        self._choice = [
            _Blocked(stream(seed, "choice", i), lambda r, k: r.random(k)) for i in range(n)
        ]
        self._links: dict[tuple[int, int], tuple[_Blocked, _Blocked, float]] = {}
        self._drop_override = {(ld.src, ld.dst): ld.drop_prob for ld in t.link_drop_prob}

    def compute_time(self, node: int) -> float:
        """Node's next compute duration: base draw x node factor x transient slowdown."""
        d = self._compute[node].next() * self.node_factor[node]
        st = self.timing.stragglers
        if st.prob > 0 and self._transient[node].next() < st.prob:
            d *= st.slowdown
        return d

    def choose(self, node: int, k: int) -> int:
        """A uniform index in 0..k-1 from the node's choice stream (AD-PSGD's random peer)."""
        return min(int(self._choice[node].next() * k), k - 1)

    def drop_prob(self, src: int, dst: int) -> float:
        return self._drop_override.get((src, dst), self.timing.drop_prob)

    def packet(self, src: int, dst: int, nbytes: float | None = None) -> tuple[float, bool]:
        """Next packet on link src->dst: (delay = latency + bytes/bandwidth, dropped?)."""
        link = self._links.get((src, dst))
        if link is None:
            t = self.timing
            link = (
                _Blocked(stream(self._seed, "latency", src, dst),
                         lambda r, k: sample(t.latency, r, k)),
                _Blocked(stream(self._seed, "drop", src, dst), lambda r, k: r.random(k)),
                self.drop_prob(src, dst),
            )
            self._links[(src, dst)] = link
        transfer = self.transfer_time if nbytes is None else nbytes / self.timing.bandwidth
        return link[0].next() + transfer, link[1].next() < link[2]
