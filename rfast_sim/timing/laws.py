"""Laws by their mean, their samplers, and the reader of a named random stream.

Every law is a frozen ``scipy.stats`` distribution parameterised by its mean (see
:class:`rfast_sim.scenario.Dist`); the common ones are drawn with scipy's own arithmetic without
its per-call checks. :class:`Blocked` serves a stream's values one by one (the SimPy engine) or
many at once (the vector builder), the same values either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rfast_sim.scenario import LAWS, Dist

BLOCK = 1024


def law(dist: Dist) -> Any:
    """The frozen scipy.stats law of `dist` (its registered builder, `LAWS`), or None where it
    is a point mass (constant, or a degenerate parameter) or read from a file."""
    entry = LAWS[dist.dist]
    return entry.build()(dist) if entry.builder is not None else None


def uniform_law(dist: Dist) -> Any:
    """low..high (default 0..2*mean)."""
    low, high = (dist.low, dist.high) if dist.low is not None else (0.0, 2.0 * dist.mean)
    assert high is not None
    return stats.uniform(loc=low, scale=high - low) if high > low else None


def exponential_law(dist: Dist) -> Any:
    """scale = mean."""
    return stats.expon(scale=dist.mean) if dist.mean > 0 else None


def shifted_exponential_law(dist: Dist) -> Any:
    """shift + Exp(mean - shift); the shift defaults to mean/2."""
    shift = dist.shift if dist.shift is not None else 0.5 * dist.mean
    return stats.expon(loc=shift, scale=dist.mean - shift) if dist.mean > shift else None


def lognormal_law(dist: Dist) -> Any:
    """sigma of the log and scale = exp(log(mean) - sigma^2/2)."""
    m = dist.mean
    if m == 0 or dist.sigma == 0:
        return None
    return stats.lognorm(s=dist.sigma, scale=math.exp(math.log(m) - 0.5 * dist.sigma**2))


def gamma_law(dist: Dist) -> Any:
    """shape, scale = mean / shape."""
    return stats.gamma(a=dist.shape, scale=dist.mean / dist.shape) if dist.mean > 0 else None


def pareto_law(dist: Dist) -> Any:
    """shape b > 1, scale x_m = mean (b - 1) / b."""
    b = dist.shape
    return stats.pareto(b=b, scale=dist.mean * (b - 1) / b) if dist.mean > 0 else None


def sample(dist: Dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw `size` non-negative values of `dist` from `rng`."""
    return np.asarray(sampler(dist)(rng, size), dtype=np.float64)


@dataclass
class Blocked:
    """Serves values one at a time (`next`) or many (`take`) from blocks drawn by
    `draw(rng, size)`; blocks grow from 16 to 1024 values (hundreds of thousands of links each
    hold one), and both ways of reading consume the very same blocks, so the order never
    changes."""

    rng: np.random.Generator | None  # None: `draw` derives its values from other streams
    draw: Callable[[Any, int], np.ndarray]
    block: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the current block
    buf: list[float] | None = None  # the same as Python floats, made when `next` needs them
    pos: int = 0
    size: int = 16
    # `draw` reads the generator value by value (see `chunk_free`): `take` may then draw
    # what it needs in one call, the same values in fewer calls
    chunk_free: bool = False

    def _refill(self, want: int = 0) -> None:
        size = max(want, self.size) if self.chunk_free else self.size
        self.block = np.asarray(self.draw(self.rng, size), dtype=np.float64)
        self.buf = None
        self.pos = 0
        self.size = min(2 * self.size, BLOCK)

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
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0)



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


def served(draw: Callable[[int], np.ndarray]) -> Blocked:
    """Values derived from other streams by a batched `draw(k)`, served one by one (`next`)
    or many at once (`take`): the scalar reads of the SimPy engine are the batched function's
    values, so the two trace builders cannot drift apart. `draw` must give the same values
    however it is chunked (streams read through `Blocked` do)."""
    return Blocked(None, lambda _rng, k: draw(k), chunk_free=True)


def uniforms(rng: np.random.Generator) -> Blocked:
    return Blocked(rng, lambda r, k: r.random(k), chunk_free=True)


def chunk_free(dist: Dist) -> bool:
    """Whether `dist`'s draws read the generator value by value, so that k values drawn in any
    chunks are the same: numpy's continuous samplers do; its bounded integers (behind
    `empirical`) buffer within one call, and scipy's own samplers are not relied on."""
    if dist.file is not None or dist.dist == "empirical":
        return False
    frozen = law(dist)
    return frozen is None or fast(frozen) is not None


def constant(value: float) -> Draw:
    return lambda rng, k: np.full(k, value)


def sampler(dist: Dist) -> Draw:
    if dist.dist == "empirical":
        values = dist.data()
        return lambda rng, k: rng.choice(values, size=k)
    frozen = law(dist)
    if frozen is None:
        return constant(dist.expected())
    return fast(frozen) or (lambda rng, k: frozen.rvs(size=k, random_state=rng))


def fast(frozen: Any) -> Draw | None:
    """scipy's own arithmetic for the common laws without its per-call checking (which costs
    more than the draw for small blocks): the same values, bit for bit (tested), except where
    scipy calls numpy's vectorized `exp` or `power`, which differ by an ulp between CPUs
    (AVX-512 or not): event times, hence whole traces, would then differ between machines.
    The lognormal and Pareto laws take numpy's own samplers instead, which call the C
    library's `exp` / `expm1` on each draw (the same law; the lognormal's very values)."""
    name = frozen.dist.name
    scale, loc = frozen.kwds.get("scale", 1.0), frozen.kwds.get("loc", 0.0)
    if name == "expon":
        return lambda rng, k: rng.standard_exponential(k) * scale + loc
    if name == "lognorm":
        s = frozen.kwds["s"]
        return lambda rng, k: rng.lognormal(0.0, s, k) * scale + loc
    if name == "pareto":  # Pareto I = scale (1 + Lomax); numpy's pareto is the Lomax
        b = frozen.kwds["b"]
        return lambda rng, k: (rng.pareto(b, k) + 1.0) * scale + loc
    if name == "gamma":
        a = frozen.kwds["a"]
        return lambda rng, k: rng.standard_gamma(a, k) * scale + loc
    if name == "uniform":
        return lambda rng, k: rng.uniform(0.0, 1.0, k) * scale + loc
    return None


def node_sampler(dist: Dist, node: int, shared: Draw) -> Draw:
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
