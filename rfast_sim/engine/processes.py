"""SimPy processes of one simulation: metric sampler, asynchronous nodes, synchronous rounds.

A :class:`Sim` holds what the processes share (clock, counters, packet slots, recorder); each
process is a small generator over it. Nothing here knows an algorithm's values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import simpy

from rfast_sim.engine.trace import COMPUTE, DELIVER, DROP, ROUND, SAMPLE, Recorder
from rfast_sim.timing import TimingModel
from rfast_sim.topology import Channels

Process = Generator[simpy.Event, None, None]


@dataclass
class Sim:
    """Shared state of one simulation run."""

    env: simpy.Environment
    timing: TimingModel
    channels: Channels
    rec: Recorder
    limit: float
    max_updates: float
    updates: int = 0
    messages: int = 0
    dropped: int = 0
    num_slots: int = 0
    free: list[int] = field(default_factory=list)
    durations: dict[int, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.done = self.env.event()
        # plain Python lists: indexing a numpy array per packet costs more than the rest of send
        self.seqs = [0] * max(self.channels.num, 1)
        self.src = self.channels.src.tolist()
        self.dst = self.channels.dst.tolist()
        self.durations = {i: [] for i in range(self.channels.n)}

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _ev: fn())

    def sample_now(self) -> None:
        self.rec.samples.append((self.env.now, self.updates, self.messages, self.dropped))
        self.rec.add(self.env.now, SAMPLE, len(self.rec.samples) - 1)

    def finish(self) -> None:
        if not self.done.triggered:
            if not self.rec.samples or self.rec.samples[-1][0] < self.env.now:
                self.sample_now()
            self.done.succeed()

    def compute_time(self, i: int) -> float:
        d = self.timing.compute_time(i)
        self.durations[i].append(d)
        return d

    def _deliver(self, ev: simpy.Event) -> None:
        if self.done.triggered:
            return
        b, a, c, slot, seq = ev.value  # type: ignore[misc]
        self.rec.add(self.env.now, DELIVER, b, a, c, slot, seq)
        self.free.append(slot)

    def send(self, c: int) -> int:
        """Send one packet on channel c now; return its slot (-1 if it will be lost)."""
        a, b = self.src[c], self.dst[c]
        delay, lost = self.timing.packet(a, b)
        self.messages += 1
        self.seqs[c] += 1
        seq = self.seqs[c]
        if lost:
            self.dropped += 1
            self.at(delay, lambda: self.rec.add(self.env.now, DROP, b, a, c, -1, seq, True))
            return -1
        slot = self.free.pop() if self.free else self.num_slots
        if slot == self.num_slots:
            self.num_slots += 1
        ev = self.env.timeout(delay, (b, a, c, slot, seq))
        ev.callbacks.append(self._deliver)
        return slot

    def reliable_delay(self, a: int, b: int, nbytes: float | None = None) -> float:
        """Delay until a packet a->b gets through, resending each lost copy after the timeout."""
        total = 0.0
        while True:
            delay, lost = self.timing.packet(a, b, nbytes)
            self.messages += 1
            if not lost:
                return total + delay
            self.dropped += 1
            total += self.timing.timing.retransmit_timeout


def sampler(sim: Sim, every: float) -> Process:
    """Record a metric sample every `every` simulated seconds, then end the run at the limit."""
    k = 0
    while True:
        t = k * every
        if t > sim.limit + 1e-12 * max(1.0, sim.limit):
            break
        if t > sim.env.now:
            yield sim.env.timeout(t - sim.env.now)
        if sim.done.triggered:
            return
        sim.sample_now()
        k += 1
    sim.finish()


def async_node(sim: Sim, i: int, pattern: str) -> Process:
    """Compute for a sampled time, then send on every out-channel ("all") or one ("one")."""
    outs = [int(c) for c in sim.channels.out_ch[i] if c >= 0]
    while True:
        yield sim.env.timeout(sim.compute_time(i))
        if sim.done.triggered:
            return
        sim.updates += 1
        slots = list(sim.rec.none)
        if pattern == "all":
            for k, c in enumerate(outs):
                slots[k] = sim.send(c)
        elif outs:  # "one": a random out-neighbour
            k = sim.timing.choose(i, len(outs))
            slots[k] = sim.send(outs[k])
        sim.rec.add(sim.env.now, COMPUTE, i, out=tuple(slots))
        if sim.updates >= sim.max_updates:
            sim.finish()
            return


def _round_comm(sim: Sim, pattern: str) -> float:
    n = sim.channels.n
    if pattern == "sync_allreduce":
        # Ring all-reduce: 2(n-1) steps, each moving a 1/n chunk over every ring link.
        chunk = sim.timing.message_bytes / n
        return sum(max(sim.reliable_delay(i, (i + 1) % n, chunk) for i in range(n))
                   for _ in range(2 * (n - 1)))
    return max((sim.reliable_delay(a, b) for a, b in zip(sim.src, sim.dst, strict=True)),
               default=0.0)


def sync_rounds(sim: Sim, pattern: str) -> Process:
    """Lock-step rounds: every node computes, then the round's communication completes."""
    n = sim.channels.n
    while True:
        start = sim.env.now
        ds = [sim.compute_time(i) for i in range(n)]
        for i, d in enumerate(ds):
            sim.at(d, functools.partial(_computed, sim, i))
        yield sim.env.timeout(max(ds))
        if sim.done.triggered:
            return
        compute_end = sim.env.now
        yield sim.env.timeout(_round_comm(sim, pattern))
        if sim.done.triggered:
            return
        sim.rec.rounds.append((start, compute_end, sim.env.now))
        sim.rec.add(sim.env.now, ROUND, -1, seq=len(sim.rec.rounds) - 1)
        if sim.updates >= sim.max_updates:
            sim.finish()
            return


def _computed(sim: Sim, i: int) -> None:
    if not sim.done.triggered:
        sim.updates += 1
        sim.rec.add(sim.env.now, COMPUTE, i)
