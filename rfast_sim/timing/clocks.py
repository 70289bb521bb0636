"""Compute clocks: each node's compute durations (base law x persistent factor x transient
slowdown) and its choice stream (AD-PSGD's random peer).

Every quantity has one batched function (`durations`, `choices`); the SimPy engine's scalar
reads (`next_duration`, `choose`) are served from it, so both trace builders see the very same
values.
"""

from __future__ import annotations

import functools

import numpy as np

from rfast_sim.scenario import Timing
from rfast_sim.scenario.seeding import stream, streams
from rfast_sim.timing.laws import (
    Blocked,
    chunk_free,
    node_sampler,
    sample,
    sampler,
    served,
    uniforms,
)


def node_factors(spec: Timing, n: int, seed: int,
                 means: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """Each node's persistent compute-time factor (speed x straggler slowdown, x its mean
    step time on its device for ``mean: model``, whose law has mean 1) and the persistent
    stragglers, from the "nodes" stream."""
    rng = stream(seed, "nodes")
    speed = sample(spec.speed, rng, n) if spec.speed is not None else np.ones(n)
    st = spec.stragglers
    slow = np.zeros(n, dtype=bool)
    if st.nodes:
        slow[st.nodes] = True
    if st.count:
        slow[rng.choice(n, size=st.count, replace=False)] = True
    factor = speed * np.where(slow, st.slowdown, 1.0)
    if means is not None:  # a straggler on a slow device is slower still: the factors compose
        factor = factor * means
    return factor, [int(i) for i in np.flatnonzero(slow)]


class ComputeClocks:
    """Seeded compute-time and choice streams of every node of one run; `means`: each node's
    mean step time on its device (``mean: model``; None otherwise)."""

    def __init__(self, spec: Timing, n: int, seed: int, means: np.ndarray | None = None) -> None:
        self.spec = spec
        self.node_factor, self.straggler_nodes = node_factors(spec, n, seed, means)
        compute = spec.compute_law()
        law, free = sampler(compute), chunk_free(compute)
        self._base = [Blocked(r, node_sampler(compute, i, law), chunk_free=free)
                      for i, r in enumerate(streams(seed, "compute", np.arange(n)))]
        self._transient = [uniforms(r) for r in streams(seed, "transient", np.arange(n))]
        self._choice = [uniforms(r) for r in streams(seed, "choice", np.arange(n))]
        self._served = [served(functools.partial(self._durations, i)) for i in range(n)]

    def _durations(self, node: int, k: int) -> np.ndarray:
        d = self._base[node].take(k) * self.node_factor[node]
        st = self.spec.stragglers
        if st.prob > 0:
            d = np.where(self._transient[node].take(k) < st.prob, d * st.slowdown, d)
        return d

    def durations(self, node: int, k: int) -> np.ndarray:
        """The node's next k compute durations: base draw x node factor x transient slowdown."""
        return self._served[node].take(k)

    def next_duration(self, node: int) -> float:
        """The node's next compute duration (the next value `durations` would give)."""
        return self._served[node].next()

    def choices(self, node: int, count: int, k: int) -> np.ndarray:
        """The node's next `count` uniform indices in 0..k-1 (AD-PSGD's random peer)."""
        return np.minimum((self._choice[node].take(count) * k).astype(np.int64), k - 1)

    def choose(self, node: int, k: int) -> int:
        """The node's next uniform index in 0..k-1 (the next value `choices` would give)."""
        return int(self.choices(node, 1, k)[0])
