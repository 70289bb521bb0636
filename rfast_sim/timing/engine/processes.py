"""SimPy processes of one simulation: the metric sampler and asynchronous nodes.

A :class:`Sim` holds what the processes share (clock, counters, packet slots, network,
recorder); each process is a small generator over it. Nothing here knows an algorithm's values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import simpy

from rfast_sim.timing import TimingModel
from rfast_sim.timing.engine.network import Network, Packet
from rfast_sim.timing.engine.trace import (
    COMPUTE,
    DELIVER,
    DELIVERED,
    DROP,
    LOST_LINK,
    LOST_RECEIVER,
    LOST_SENDER,
    RESET,
    SAMPLE,
    SUPERSEDED,
    Recorder,
    sample_times,
)
from rfast_sim.timing.topology import Channels

Process = Generator[simpy.Event, None, None]


@dataclass
class Sim:
    """Shared state of one simulation run."""

    env: simpy.Environment
    timing: TimingModel
    channels: Channels
    rec: Recorder
    network: Network
    limit: float
    max_updates: float
    updates: int = 0
    messages: int = 0
    bytes: float = 0.0  # on the wire (every departed packet or chunk)
    dropped: int = 0
    resets: int = 0
    num_slots: int = 0
    free: list[int] = field(default_factory=list)
    # counts known before their time (Ring-AllReduce draws a whole round at once): applied up
    # to now before each sample, so the counters never run ahead of the clock
    settle: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.done = self.env.event()
        churn = self.timing.spec.churn
        self.reset_on_rejoin = churn is not None and churn.rejoin == "reset"
        # plain Python lists: indexing a numpy array per packet costs more than the rest of send
        self.seqs = [0] * max(self.channels.num, 1)
        self.src = self.channels.src.tolist()
        self.dst = self.channels.dst.tolist()
        self.durations: dict[int, list[float]] = {i: [] for i in range(self.channels.n)}
        # the packet log (off by default): chosen once, so the default path pays nothing
        self.log = self.rec.packets is not None
        self.on_arrive = self.logged_arrival if self.log else self.record_arrival

    def sample_now(self) -> None:
        if self.settle is not None:
            self.settle()
        self.rec.samples.append((self.env.now, self.updates, self.messages, self.dropped,
                                 self.network.stats.superseded, self.bytes))
        self.rec.add(self.env.now, SAMPLE, len(self.rec.samples) - 1)

    def finish(self) -> None:
        if not self.done.triggered:
            if not self.rec.samples or self.rec.samples[-1][0] < self.env.now:
                self.sample_now()
            self.done.succeed()

    def finish_time(self, i: int) -> float:
        """When node i's computation, starting now, finishes (inf: never).

        A computation that a down period of the node cuts is lost: the node starts a fresh one
        when it is back."""
        t = self.env.now
        while True:
            d = self.timing.clocks.next_duration(i)
            down = self.timing.faults.next_down(i, t)
            if down is None or down[0] > t + d:
                self.durations[i].append(d)
                return t + d
            t = down[1]
            if math.isinf(t):
                return t

    def schedule_resets(self) -> None:
        """With ``rejoin: reset``, a RESET event at the end of every down period of every node
        (whatever it was doing: computing, or waiting at a barrier)."""
        if not self.reset_on_rejoin:
            return
        for i, periods in self.timing.faults.down.items():
            for _start, end in periods.spans():
                if not math.isinf(end):
                    call_at(self, end, functools.partial(self.rejoined, i))

    def rejoined(self, i: int) -> None:
        if not self.done.triggered:
            self.resets += 1
            self.rec.add(self.env.now, RESET, i)

    def compute(self, i: int) -> Generator[simpy.Event, None, bool]:
        """Node i computes (see `finish_time`); False if it never comes back."""
        end = self.finish_time(i)
        if math.isinf(end):
            return False
        yield self.env.timeout(end - self.env.now)
        return not self.done.triggered

    def slot(self) -> int:
        """A free slot of the in-flight store (a packet holds it until delivered or lost)."""
        slot = self.free.pop() if self.free else self.num_slots
        if slot == self.num_slots:
            self.num_slots += 1
        return slot

    def packet(self, c: int, round_: int = -1) -> Packet:
        """A new packet on channel c (its slot and sequence number), not yet sent."""
        self.seqs[c] += 1
        pkt = Packet(c, self.src[c], self.dst[c], self.timing.message_bytes, self.slot(),
                     self.seqs[c], round_, self.env.now, self.on_arrive, self.count_departure)
        if self.log:
            self.rec.live[id(pkt)] = pkt
        return pkt

    def send(self, pkt: Packet) -> int:
        """Hand a packet to the network; return its slot."""
        old = self.network.send(pkt)
        if old is not None:  # superseded before it left: it will never arrive
            self.free.append(old.slot)
            if self.log:
                self.rec.packet_done(old, self.env.now, SUPERSEDED)
        return pkt.slot

    def log_end(self, pkt: Packet, lost: bool) -> None:
        """Log a packet's end (or a synchronous attempt's) and why it was lost: never left
        (its sender went down), lost on its link, or its receiver was down."""
        if not lost:
            fate = DELIVERED
        elif pkt.left != pkt.left:  # NaN: it never left
            fate = LOST_SENDER
        else:
            fate = LOST_LINK if pkt.link_lost else LOST_RECEIVER
        self.rec.packet_done(pkt, self.env.now, fate)

    def logged_arrival(self, pkt: Packet, lost: bool) -> None:
        """`record_arrival`, with the packet log on."""
        if not self.done.triggered:
            self.log_end(pkt, lost)
            self.record_arrival(pkt, lost)

    def count_departure(self, pkt: Packet, lost: bool) -> None:
        """A packet left (or, unsent, was lost in its sender's queue): messages and bytes on
        the wire. Losses are counted when known for sure, at arrival (a receiver that is down
        then loses it too)."""
        if not pkt.unsent:
            self.messages += 1
            self.bytes += pkt.nbytes

    def record_arrival(self, pkt: Packet, lost: bool) -> None:
        """The packet arrives (or is found lost): record it and free its slot."""
        if self.done.triggered:
            return
        self.dropped += lost
        kind = DROP if lost else DELIVER
        self.rec.add(self.env.now, kind, pkt.dst, pkt.src, pkt.channel, pkt.slot, pkt.seq, lost)
        self.free.append(pkt.slot)


def sampler(sim: Sim, every: float) -> Process:
    """Record a metric sample at every time of the grid (`sample_times`), then end the run at
    the limit."""
    for t in sample_times(sim.limit, every):
        if t > sim.env.now:
            yield sim.env.timeout(t - sim.env.now)
        if sim.done.triggered:
            return
        sim.sample_now()
    sim.finish()


def async_node(sim: Sim, i: int, pattern: str) -> Process:
    """Compute for a sampled time, then send on every out-channel ("all") or one ("one") of
    the current phase's graphs (time-varying graphs: see `Channels.phase`).
    Computation never waits for sends: the NIC queues them."""
    ch = sim.channels
    outs = [(k, int(c)) for k, c in enumerate(ch.out_ch[i]) if c >= 0]
    by_phase = [[(k, c) for k, c in outs if ch.phase_active[p, c]]
                for p in range(ch.phase_active.shape[0])]
    updates = 0
    while True:
        if not (yield from sim.compute(i)):
            return
        sim.updates += 1
        phase = ch.phase(updates, sim.env.now)
        updates += 1
        live = by_phase[phase]
        slots = list(sim.rec.none)
        if pattern == "all":
            for k, c in live:
                slots[k] = sim.send(sim.packet(c))
        elif live:  # "one": a random out-neighbour
            k, c = live[sim.timing.clocks.choose(i, len(live))]
            slots[k] = sim.send(sim.packet(c))
        sim.rec.add(sim.env.now, COMPUTE, i, out=tuple(slots), phase=phase)
        if sim.updates >= sim.max_updates:
            sim.finish()
            return


def computed(sim: Sim, i: int, out: tuple[int, ...] | None = None) -> None:
    """Record node i's finished computation (unless the run is over)."""
    if not sim.done.triggered:
        sim.updates += 1
        sim.rec.add(sim.env.now, COMPUTE, i, out=out)


def call_at(sim: Sim, delay: float, fn: Callable[[], None]) -> None:
    sim.env.timeout(delay).callbacks.append(lambda _e: fn())
