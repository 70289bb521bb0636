"""The network: per-node NICs with contention (the alpha-beta model, per node), link latency
and loss.

A packet's life: it waits in its sender's egress queue (FIFO; or ``latest``, where a newer
packet on the same channel replaces an unsent older one), takes bytes / min(link, egress)
seconds to leave (sharing the receiver's ingress max-min fairly with the other transfers into it,
where ingress is modelled), then travels for the link latency. Its latency and fate (lost or
not) are drawn when it leaves, in departure order per link; it is lost if its link is down
(an outage or link churn) when it leaves. Without a NIC (``nic: null``) every
transfer runs on its own link at once, in parallel: the contention-free model.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import simpy

from rfast_sim.scenario import Nic
from rfast_sim.timing import TimingModel
from rfast_sim.timing.engine.trace import NetStats


@dataclass(eq=False)
class Packet:
    """One packet and what to do when it leaves the sender and when it arrives (or is lost)."""

    channel: int
    src: int
    dst: int
    nbytes: float
    slot: int
    seq: int
    round: int  # synchronous round, -1 for asynchronous packets
    sent: float  # when it entered the egress queue
    on_arrive: Callable[[Packet, bool], None]
    on_depart: Callable[[Packet, bool], None] | None = None
    started: float = math.nan  # it left the egress queue (its transfer started)
    left: float = math.nan  # its transfer ended
    attempt: int = 0  # retransmissions of a lost synchronous packet count up
    unsent: bool = False  # lost before it left: its sender went down
    link_lost: bool = False  # lost on its link (else a loss is the receiver's: it was down)


class Ingress:
    """A receiver's ingress, shared max-min fairly (water-filling) by the transfers into it;
    rates are recomputed whenever a transfer starts or ends."""

    def __init__(self, env: simpy.Environment, capacity: float) -> None:
        self.env, self.capacity = env, capacity
        self.active: dict[int, list] = {}  # id -> [remaining bytes, cap, rate, done callback]
        self.last = 0.0
        self.version = 0
        self._ids = 0

    def start(self, nbytes: float, cap: float, done: Callable[[], None]) -> None:
        self._advance()
        self._ids += 1
        self.active[self._ids] = [nbytes, cap, 0.0, done]
        self._reschedule()

    def _advance(self) -> None:
        dt = self.env.now - self.last
        for t in self.active.values():
            t[0] -= t[2] * dt
        self.last = self.env.now

    def _reschedule(self) -> None:
        left, todo = self.capacity, sorted(self.active.values(), key=lambda t: t[1])
        for k, t in enumerate(todo):  # progressive filling: the smallest caps saturate first
            t[2] = min(t[1], left / (len(todo) - k))
            left -= t[2]
        self.version += 1
        if self.active:
            wait = min(t[0] / t[2] for t in self.active.values())
            version = self.version
            self.env.timeout(max(wait, 0.0)).callbacks.append(lambda _e: self._fire(version))

    def _fire(self, version: int) -> None:
        if version != self.version:
            return  # rates changed since this completion was scheduled
        self._advance()
        # the first to finish has (up to rounding) nothing left
        finished = [k for k, t in self.active.items() if t[0] <= 1e-6 or t[0] / t[2] <= 1e-12]
        callbacks = [self.active.pop(k)[3] for k in finished]
        self._reschedule()
        for done in callbacks:
            done()


@dataclass(eq=False)
class _Entry:
    pkt: Packet


@dataclass
class Network:
    """Every node's egress queue (and ingress), and the links' fates."""

    env: simpy.Environment
    timing: TimingModel
    n: int
    latest: bool  # queue "latest" and an algorithm whose packets supersede older ones
    stats: NetStats = field(default_factory=NetStats)

    def __post_init__(self) -> None:
        self.queues: list[deque[_Entry]] = [deque() for _ in range(self.n)]
        self.waiting: list[dict[int, _Entry]] = [{} for _ in range(self.n)]
        self.busy = [False] * self.n
        self.length = [0] * self.n  # packets waiting to start their transfer
        self.changed = [0.0] * self.n
        self.nic: Nic | None = self.timing.spec.nic
        ingress = self.nic.ingress if self.nic is not None else None
        self.ingress = [Ingress(self.env, ingress) for _ in range(self.n)] if ingress else None
        self.links, self.faults = self.timing.links, self.timing.faults

    def rate(self, src: int, dst: int) -> float:
        """A transfer's own cap (`rfast_sim.timing.transfer_rate`: min(link, egress))."""
        return self.links.get(src, dst).rate

    def send(self, pkt: Packet) -> Packet | None:
        """Hand a packet to its sender's NIC; return the unsent packet it superseded, if any."""
        if self.nic is None:  # contention-free: it leaves at once, its transfer on its own link
            pkt.started = self.env.now
            finished = self.env.now + pkt.nbytes / self.rate(pkt.src, pkt.dst)
            if self.faults.down_between(pkt.src, pkt.sent, finished):
                self._unsent(pkt)
            else:
                self._depart(pkt, finished)
            return None
        src = pkt.src
        entry = self.waiting[src].get(pkt.channel) if self.latest else None
        if entry is not None:  # newest wins; it keeps the old one's place in the queue
            old, entry.pkt = entry.pkt, pkt
            self.stats.superseded += 1
            return old
        entry = _Entry(pkt)
        self.queues[src].append(entry)
        if self.latest:
            self.waiting[src][pkt.channel] = entry
        self._queue_changed(src, +1)
        if not self.busy[src]:
            self._serve(src)
        return None

    def _queue_changed(self, i: int, delta: int) -> None:
        now = self.env.now
        self.stats.queue_area += self.length[i] * (now - self.changed[i])
        self.changed[i] = now
        self.length[i] += delta
        self.stats.max_queue = max(self.stats.max_queue, self.length[i])

    def _serve(self, src: int) -> None:
        while True:
            if not self.queues[src]:
                self.busy[src] = False
                return
            self.busy[src] = True
            pkt = self.queues[src].popleft().pkt
            self._queue_changed(src, -1)
            if self.latest:
                self.waiting[src].pop(pkt.channel, None)
            if not self.faults.down_between(src, pkt.sent, self.env.now):
                break
            self._unsent(pkt)  # the sender went down since: its send queue is lost
        pkt.started = self.env.now
        cap = self.rate(src, pkt.dst)

        def transferred() -> None:
            if self.faults.down_between(src, pkt.sent, self.env.now):
                self._unsent(pkt)
            else:
                self._depart(pkt, self.env.now)
            self._serve(src)

        if self.ingress is not None:
            self.ingress[pkt.dst].start(pkt.nbytes, cap, transferred)
        else:
            self.env.timeout(pkt.nbytes / cap).callbacks.append(lambda _e: transferred())

    def _depart(self, pkt: Packet, finished: float) -> None:
        """The packet has left (or, without a NIC, is leaving): draw its latency and fate."""
        latency, lost = self.links.fate(pkt.src, pkt.dst)
        # a packet that leaves onto a down link is lost (its draws are made all the same)
        lost = lost or not self.links.up(pkt.src, pkt.dst, finished)
        pkt.left, pkt.link_lost = finished, lost
        s = self.stats
        s.departed += 1
        s.queueing += pkt.started - pkt.sent
        s.transfer += finished - pkt.started
        s.latency += latency
        if pkt.on_depart is not None:
            pkt.on_depart(pkt, lost)
        delay = finished - self.env.now + latency

        def arrive(_e: simpy.Event) -> None:  # a down receiver loses it
            pkt.on_arrive(pkt, lost or not self.faults.node_up(pkt.dst, self.env.now))

        self.env.timeout(delay).callbacks.append(arrive)

    def _unsent(self, pkt: Packet) -> None:
        """The packet never leaves (its sender went down): lost, no draws made."""
        pkt.unsent = True
        if pkt.on_depart is not None:
            pkt.on_depart(pkt, True)
        self.env.timeout(0).callbacks.append(lambda _e: pkt.on_arrive(pkt, True))

    def close(self, now: float, resets: int) -> dict[str, Any]:
        for i in range(self.n):
            self._queue_changed(i, 0)
        queue = "latest" if self.latest else ("fifo" if self.nic is not None else "none")
        return self.stats.summary(self.n, now, queue, resets)
