"""Links: each used link's timing (latency law, bandwidth), its packets' fates (latency and
loss, by the registered loss model) and its down periods (outages, link churn).

A link's k-th departing packet gets the k-th fate of its link, whoever asks: the batched
`Links.fates` is the one function, and the SimPy engine's per-packet `Links.fate` reads the
next value it produced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from rfast_sim.scenario import LOSS_MODELS, Dist, LinkTiming, Outage, Timing
from rfast_sim.scenario.seeding import stream, streams
from rfast_sim.timing.faults import LazyPeriods, churn_laws, churn_periods
from rfast_sim.timing.laws import (
    BLOCK,
    Blocked,
    Draw,
    chunk_free,
    constant,
    gilbert_elliott_states,
    sampler,
    uniforms,
)

_STREAM_BLOCK = 65_536  # links whose streams `Links.fates_once` makes at a time


def transfer_rate(link_rate: float | np.ndarray, spec: Timing, *, alone: bool = False,
                  egress: float | np.ndarray | None = None) -> float | np.ndarray:
    """Bytes/s of one transfer: its link's rate, capped by the sender's egress where a NIC is
    modelled (``nic: null``: the link alone) and, where the transfer is `alone` into its
    receiver (all-reduce's chunk steps), by the receiver's ingress. `egress`: the sender's
    own (its device class's NIC), over the scenario's. The SimPy network, the vector builder
    and the rounds all take their service times from here."""
    nic = spec.nic
    if nic is None:
        return link_rate
    lower = np.minimum if isinstance(link_rate, np.ndarray) else min  # a scalar per packet
    rate = lower(link_rate, egress if egress is not None else nic.egress or spec.bandwidth)
    return lower(rate, nic.ingress) if alone and nic.ingress is not None else rate


def loss_model(spec: Timing) -> str:
    """The registered loss model a scenario uses (`LOSS_MODELS`)."""
    return spec.loss.model if spec.loss is not None else "bernoulli"


@dataclass
class Link:
    """One link's random streams and state."""

    latency: Blocked
    drop: Blocked
    drop_prob: float
    bandwidth: float
    rate: float  # a transfer's service rate on it (`transfer_rate`)
    outages: list[Outage]
    churn: LazyPeriods | None = None
    bad: bool = False  # Gilbert-Elliott state after the last packet drawn
    fates: _Fates | None = field(default=None, repr=False)  # served one by one (SimPy)

    def up(self, t: float) -> bool:
        """Is the link up at time t (down periods are [start, end))?"""
        for o in self.outages:  # a loop, not any(): most links have none (a call per packet)
            if o.start <= t and (o.end is None or t < o.end):
                return False
        return self.churn is None or not self.churn.covers(t)


def bernoulli_losses(link: Link, spec: Timing, k: int) -> np.ndarray:
    """Each of the next k packets lost independently with the link's drop probability."""
    return link.drop.take(k) < link.drop_prob


def gilbert_elliott_losses(link: Link, spec: Timing, k: int) -> np.ndarray:
    """Per packet: its loss draw by the link's state, then the state's move (two uniforms)."""
    loss = spec.loss
    assert loss is not None
    u = link.drop.take(2 * k)
    bad, link.bad = gilbert_elliott_states(u[1::2], loss.p_good_bad, loss.p_bad_good, link.bad)
    return u[0::2] < np.where(bad, loss.loss_bad, loss.loss_good)


class Links:
    """The links of one run, each made when first used (O(links used) in memory);
    `sender_nic`: each node's device class's NIC (None: the scenario's timing)."""

    def __init__(self, spec: Timing, seed: int,
                 sender_nic: list[LinkTiming | None] | None = None) -> None:
        self.spec, self._seed = spec, seed
        self._sender = sender_nic if sender_nic and any(sender_nic) else None
        self._losses = LOSS_MODELS[loss_model(spec)].build()
        self._samplers: dict[int, tuple[Dist, Draw, bool]] = {}  # per latency law, made once
        self._links: dict[tuple[int, int], Link] = {}
        self._outages: dict[tuple[int, int], list[Outage]] = {}
        for o in spec.outages:
            if o.src is not None and o.dst is not None:
                self._outages.setdefault((o.src, o.dst), []).append(o)
        self._own = {(ln.src, ln.dst): ln for ln in spec.links}
        self._group = {i: k for k, g in enumerate(spec.clusters.groups) for i in g} \
            if spec.clusters is not None else {}
        self._drop = {(ld.src, ld.dst): ld.drop_prob for ld in spec.link_drop_prob}
        self._churn = churn_laws(spec.link_churn) if spec.link_churn is not None else None

    def get(self, src: int, dst: int) -> Link:
        """Link src->dst, made now if it is new."""
        link = self._links.get((src, dst))
        if link is None:
            link = self._new(src, dst, stream(self._seed, "latency", src, dst),
                             stream(self._seed, "drop", src, dst))
        return link

    def open(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Make every given link now (the same as one by one, faster); their transfer rates."""
        pairs = list(zip(src.tolist(), dst.tolist(), strict=True))
        new = [key for key in pairs if key not in self._links]
        ids = np.array(new, dtype=np.int64).reshape(-1, 2)
        for (a, b), lat, drop in zip(new, streams(self._seed, "latency", ids),
                                     streams(self._seed, "drop", ids), strict=True):
            self._new(a, b, lat, drop)
        return np.array([self._links[key].rate for key in pairs], dtype=float)

    def rates(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Each given link's transfer rate (`transfer_rate`), without making the links."""
        bandwidth = np.array([self.timing_of(a, b)[1] for a, b in
                              zip(src.tolist(), dst.tolist(), strict=True)], dtype=float)
        if not len(bandwidth):
            return bandwidth
        if self._sender is None:
            return np.asarray(transfer_rate(bandwidth, self.spec), dtype=float)
        # per sender, as `transfer_rate` does one by one: a class without a NIC bandwidth
        # (None) falls back to the scenario's egress (never a NaN rate: no packet would arrive)
        default = transfer_rate(bandwidth, self.spec)
        own = np.array([np.nan if (e := self.egress(a)) is None else e
                        for a in src.tolist()], dtype=float)
        capped = np.asarray(transfer_rate(bandwidth, self.spec,
                                          egress=np.where(np.isnan(own), np.inf, own)))
        return np.where(np.isnan(own), default, capped).astype(float)

    def fates_once(self, src: np.ndarray, dst: np.ndarray,
                   counts: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each given link's first counts[j] (latency, lost) pairs, link by link: the values
        `fates` gives a fresh link, without keeping a link (and its two generators) per link.
        The streams are made in blocks of links (`streams` is vectorised), used once and
        dropped, so memory stays O(block) however many links there are (millions at 100,000
        nodes). For links not made before (the vector builder's single pass)."""
        for lo in range(0, len(src), _STREAM_BLOCK):
            a, b = src[lo:lo + _STREAM_BLOCK], dst[lo:lo + _STREAM_BLOCK]
            ids = np.stack([a, b], axis=1).astype(np.int64)
            rngs = zip(streams(self._seed, "latency", ids), streams(self._seed, "drop", ids),
                       strict=True)
            for j, (lat, drop) in enumerate(rngs):
                src_j, dst_j, k = int(a[j]), int(b[j]), int(counts[lo + j])
                quick = self._quick(src_j, dst_j)
                if quick is None:
                    yield self._draw_fates(self._make(src_j, dst_j, lat, drop), k)
                elif k == 0:
                    yield np.zeros(0), np.zeros(0, bool)
                else:  # what a fresh Link's `take(k)` draws: one block of max(k, 16) values
                    draw, drop_prob = quick
                    yield (np.asarray(draw(lat, max(k, 16)), dtype=np.float64)[:k],
                           drop.random(max(k, 16))[:k] < drop_prob)

    def _quick(self, src: int, dst: int) -> tuple[Draw, float] | None:
        """(latency draw, drop probability) of a link whose fates a fresh one draws in one
        block each (a chunk-free latency law, independent losses), else None."""
        if self._losses is not bernoulli_losses:
            return None
        law, _ = self.timing_of(src, dst)
        if law.dist == "matrix":
            return None
        got = self._samplers.get(id(law))
        if got is None:
            got = self._samplers[id(law)] = (law, sampler(law), chunk_free(law))
        if not got[2]:
            return None
        return got[1], self._drop.get((src, dst), self.spec.drop_prob or 0.0)

    def fates(self, src: int, dst: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The next k departing packets' (latency, lost) on link src->dst."""
        link = self.get(src, dst)
        if link.fates is not None:  # values already served one by one come first
            return link.fates.take(k)
        return self._draw_fates(link, k)

    def fate(self, src: int, dst: int) -> tuple[float, bool]:
        """The next departing packet's (latency, lost): the next value of `fates`."""
        link = self.get(src, dst)
        if link.fates is None:
            link.fates = _Fates(lambda k: self._draw_fates(link, k))
        return link.fates.next()

    def _draw_fates(self, link: Link, k: int) -> tuple[np.ndarray, np.ndarray]:
        return link.latency.take(k), self._losses(link, self.spec, k)

    def up(self, src: int, dst: int, t: float) -> bool:
        """Is link src->dst up at time t?"""
        return self.get(src, dst).up(t)

    def down_periods(self, until: float) -> dict[tuple[int, int], list[tuple[float, float]]]:
        """Every used link's down periods that start by `until` (outages and churn), for plots."""
        out = {}
        for key, link in self._links.items():
            spans = [(o.start, o.end if o.end is not None else math.inf) for o in link.outages]
            if link.churn is not None:
                spans += link.churn.started_by(until)
            if spans:
                out[key] = sorted(spans)
        return out

    def egress(self, src: int) -> float | None:
        """The sender's own egress, bytes/s: its device class's NIC bandwidth (None: the
        scenario's)."""
        nic = self._sender[src] if self._sender is not None else None
        return nic.bandwidth if nic is not None else None

    def timing_of(self, src: int, dst: int) -> tuple[Dist, float]:
        """(latency law, bandwidth) of a link: its `links` entry, else its cluster's
        intra/inter timing, else its sender's device class's NIC, else the scenario's; each
        field falls back separately."""
        t = self.spec
        own = self._own.get((src, dst))
        if own is None and t.clusters is None and self._sender is None:
            return t.latency, t.bandwidth
        layers: list[LinkTiming] = [own] if own is not None else []
        if t.clusters is not None and src in self._group and dst in self._group:
            same = self._group[src] == self._group[dst]
            layers.append(t.clusters.intra if same else t.clusters.inter)
        sender = self._sender[src] if self._sender is not None else None
        if sender is not None:
            layers.append(sender)
        latency = next((x.latency for x in layers if x.latency is not None), t.latency)
        rate = next((x.bandwidth for x in layers if x.bandwidth is not None), t.bandwidth)
        return latency, rate

    def _new(self, src: int, dst: int, latency_rng: np.random.Generator,
             drop_rng: np.random.Generator) -> Link:
        link = self._links[(src, dst)] = self._make(src, dst, latency_rng, drop_rng)
        return link

    def _make(self, src: int, dst: int, latency_rng: np.random.Generator,
              drop_rng: np.random.Generator) -> Link:
        law, bandwidth = self.timing_of(src, dst)
        if law.dist == "matrix":
            draw, free = constant(float(law.data()[src, dst])), True
        else:
            got = self._samplers.get(id(law))
            if got is None:
                got = self._samplers[id(law)] = (law, sampler(law), chunk_free(law))
            draw, free = got[1], got[2]
        return Link(
            Blocked(latency_rng, draw, chunk_free=free), uniforms(drop_rng),
            self._drop.get((src, dst), self.spec.drop_prob or 0.0), bandwidth,
            float(transfer_rate(bandwidth, self.spec, egress=self.egress(src))),
            self._outages.get((src, dst), []),
            LazyPeriods(churn_periods(self._churn, self._seed, "link", src, dst))
            if self._churn is not None else None)


class _Fates:
    """A link's (latency, lost) pairs from its batched draw, served one by one (`next`) or
    many at once (`take`), the same values either way; blocks grow from 16 to 1024."""

    def __init__(self, draw: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> None:
        self.draw = draw
        self.lat: list[float] = []
        self.lost: list[bool] = []
        self.pos = 0
        self.size = 16

    def next(self) -> tuple[float, bool]:
        if self.pos == len(self.lat):
            lat, lost = self.draw(self.size)
            self.lat, self.lost, self.pos = lat.tolist(), lost.tolist(), 0
            self.size = min(2 * self.size, BLOCK)
        self.pos += 1
        return self.lat[self.pos - 1], self.lost[self.pos - 1]

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        have = min(k, len(self.lat) - self.pos)
        lat = np.array(self.lat[self.pos:self.pos + have], dtype=float)
        lost = np.array(self.lost[self.pos:self.pos + have], dtype=bool)
        self.pos += have
        if have == k:
            return lat, lost
        more = self.draw(k - have)
        return np.concatenate([lat, more[0]]), np.concatenate([lost, more[1]])
