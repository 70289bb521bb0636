"""SimPy event engine: decides *when* things happen and records them. No math, no JAX.

Asynchronous patterns run one process per node (compute for a sampled time, then send on its
out-channels); each packet is delivered after its link delay or lost. Synchronous patterns run
one barrier process: a round ends when the slowest node has computed and every message of the
round has arrived (a lost packet is resent after a timeout, and that time is charged).

The product is an :class:`EventTrace` of numpy arrays. A packet that will be delivered gets a
*slot* in the in-flight store when it is sent and frees it on delivery, so the store holds at
most the maximum number of packets in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import simpy

from rfast_sim.timing import TimingModel
from rfast_sim.topology import Channels, Pattern

COMPUTE, DELIVER, ROUND, DROP, SAMPLE = 0, 1, 2, 3, 4
KIND_NAMES = ("compute", "deliver", "round", "drop", "sample")

@dataclass(frozen=True)
class EventTrace:
    """Every event of one run, in the order they fired.

    ``out_slots[e, k]`` is, for a compute event of node i, the slot of the packet sent on
    ``channels.out_ch[i, k]`` (-1: not sent, lost, or padding). For a delivery, ``slot`` is the
    slot it frees and ``seq`` the packet's sequence number on its channel.
    """

    time: np.ndarray
    kind: np.ndarray
    node: np.ndarray
    peer: np.ndarray
    channel: np.ndarray
    slot: np.ndarray
    seq: np.ndarray
    dropped: np.ndarray
    out_slots: np.ndarray
    num_slots: int
    sample_time: np.ndarray
    sample_updates: np.ndarray
    sample_messages: np.ndarray
    sample_dropped: np.ndarray
    round_start: np.ndarray
    round_compute: np.ndarray
    round_end: np.ndarray
    compute_durations: dict[int, list[float]]

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True)
class Event:
    """One event as the online runner sees it."""

    index: int
    time: float
    kind: int
    node: int
    peer: int
    channel: int
    slot: int
    seq: int
    out_slots: tuple[int, ...]


class _Recorder:
    def __init__(self, kout: int, on_event: Callable[[Event], None] | None) -> None:
        self.rows: list[tuple[float, int, int, int, int, int, int, bool]] = []
        self.out: list[tuple[int, ...]] = []
        self.none = (-1,) * kout
        self.on_event = on_event

    def add(self, t: float, kind: int, node: int, peer: int = -1, channel: int = -1,
            slot: int = -1, seq: int = -1, dropped: bool = False,
            out: tuple[int, ...] | None = None) -> None:
        out = out if out is not None else self.none
        self.rows.append((t, kind, node, peer, channel, slot, seq, dropped))
        self.out.append(out)
        if self.on_event is not None and kind != DROP:
            self.on_event(Event(len(self.out) - 1, t, kind, node, peer, channel, slot, seq, out))


def simulate(
    timing: TimingModel,
    channels: Channels,
    pattern: Pattern,
    *,
    until: float | None,
    max_updates: int | None,
    sample_every: float,
    on_event: Callable[[Event], None] | None = None,
) -> EventTrace:
    """Run the timing model to the stop condition and return the recorded trace.

    `on_event` (online coupling) is called for every non-drop event as it fires.
    """
    env = simpy.Environment()
    n = channels.n
    kout = channels.out_ch.shape[1]
    rec = _Recorder(kout, on_event)
    counters = {"updates": 0, "messages": 0, "dropped": 0}
    free: list[int] = []
    num_slots = [0]
    # plain Python lists: indexing a numpy array per packet costs more than the rest of send
    seqs = [0] * max(channels.num, 1)
    src, dst = channels.src.tolist(), channels.dst.tolist()
    samples: list[tuple[float, int, int, int]] = []
    rounds: list[tuple[float, float, float]] = []
    durations: dict[int, list[float]] = {i: [] for i in range(n)}
    done = env.event()
    limit = until if until is not None else np.inf
    max_up = max_updates if max_updates is not None else np.inf

    def at(delay: float, fn: Callable[[], None]) -> None:
        ev = env.timeout(delay)
        ev.callbacks.append(lambda _ev: fn())

    def sample_now() -> None:
        samples.append((env.now, counters["updates"], counters["messages"], counters["dropped"]))
        rec.add(env.now, SAMPLE, len(samples) - 1)

    def finish() -> None:
        if not done.triggered:
            if not samples or samples[-1][0] < env.now:
                sample_now()
            done.succeed()

    def sampler() -> Generator[simpy.Event, None, None]:
        k = 0
        while True:
            t = k * sample_every
            if t > limit + 1e-12 * max(1.0, limit):
                break
            if t > env.now:
                yield env.timeout(t - env.now)
            if done.triggered:
                return
            sample_now()
            k += 1
        finish()

    def deliver(ev: simpy.Event) -> None:
        if done.triggered:
            return
        b, a, c, slot, seq = ev.value  # type: ignore[misc]
        rec.add(env.now, DELIVER, b, a, c, slot, seq)
        free.append(slot)

    def send(c: int) -> int:
        """Send one packet on channel c now; return its slot (-1 if it will be lost)."""
        a, b = src[c], dst[c]
        delay, lost = timing.packet(a, b)
        counters["messages"] += 1
        seqs[c] += 1
        seq = seqs[c]
        if lost:
            counters["dropped"] += 1
            at(delay, lambda: rec.add(env.now, DROP, b, a, c, -1, seq, True))
            return -1
        slot = free.pop() if free else num_slots[0]
        if slot == num_slots[0]:
            num_slots[0] += 1
        ev = env.timeout(delay, (b, a, c, slot, seq))
        ev.callbacks.append(deliver)
        return slot

    def node_proc(i: int) -> Generator[simpy.Event, None, None]:
        outs = [int(c) for c in channels.out_ch[i] if c >= 0]
        while True:
            d = timing.compute_time(i)
            durations[i].append(d)
            yield env.timeout(d)
            if done.triggered:
                return
            counters["updates"] += 1
            slots = list(rec.none)
            if pattern == "all":
                for k, c in enumerate(outs):
                    slots[k] = send(c)
            elif outs:  # "one": a random out-neighbour
                k = timing.choose(i, len(outs))
                slots[k] = send(outs[k])
            rec.add(env.now, COMPUTE, i, out=tuple(slots))
            if counters["updates"] >= max_up:
                finish()
                return

    def reliable_delay(a: int, b: int, nbytes: float | None = None) -> float:
        """Delay until a packet a->b gets through, resending each lost copy after the timeout."""
        total = 0.0
        while True:
            delay, lost = timing.packet(a, b, nbytes)
            counters["messages"] += 1
            if not lost:
                return total + delay
            counters["dropped"] += 1
            total += timing.timing.retransmit_timeout

    def sync_proc() -> Generator[simpy.Event, None, None]:
        while True:
            start = env.now
            ds = [timing.compute_time(i) for i in range(n)]
            for i, d in enumerate(ds):
                durations[i].append(d)

                def computed(i: int = i) -> None:
                    if not done.triggered:
                        counters["updates"] += 1
                        rec.add(env.now, COMPUTE, i)

                at(d, computed)
            yield env.timeout(max(ds))
            if done.triggered:
                return
            compute_end = env.now
            if pattern == "sync_allreduce":
                # Ring all-reduce: 2(n-1) steps, each moving a 1/n chunk over every ring link.
                chunk = timing.message_bytes / n
                comm = sum(
                    max(reliable_delay(i, (i + 1) % n, chunk) for i in range(n))
                    for _ in range(2 * (n - 1))
                )
            else:
                comm = max(
                    (reliable_delay(int(a), int(b)) for a, b in zip(channels.src, channels.dst,
                                                                    strict=True)),
                    default=0.0,
                )
            yield env.timeout(comm)
            if done.triggered:
                return
            rounds.append((start, compute_end, env.now))
            rec.add(env.now, ROUND, -1, seq=len(rounds) - 1)
            if counters["updates"] >= max_up:
                finish()
                return

    env.process(sampler())
    if pattern in ("all", "one"):
        for i in range(n):
            env.process(node_proc(i))
    else:
        env.process(sync_proc())
    env.run(until=done)

    # one conversion of all rows (ints and times are exact in float64), then typed columns
    cols = np.array(rec.rows, dtype=np.float64).reshape(-1, 8).T
    st = np.asarray(samples, dtype=np.float64).reshape(-1, 4)
    rd = np.asarray(rounds, dtype=np.float64).reshape(-1, 3)
    return EventTrace(
        time=np.asarray(cols[0], dtype=np.float64),
        kind=np.asarray(cols[1], dtype=np.int8),
        node=np.asarray(cols[2], dtype=np.int32),
        peer=np.asarray(cols[3], dtype=np.int32),
        channel=np.asarray(cols[4], dtype=np.int32),
        slot=np.asarray(cols[5], dtype=np.int32),
        seq=np.asarray(cols[6], dtype=np.int32),
        dropped=np.asarray(cols[7], dtype=bool),
        out_slots=np.asarray(rec.out, dtype=np.int32).reshape(-1, kout),
        num_slots=max(num_slots[0], 1),
        sample_time=st[:, 0],
        sample_updates=st[:, 1].astype(np.int64),
        sample_messages=st[:, 2].astype(np.int64),
        sample_dropped=st[:, 3].astype(np.int64),
        round_start=rd[:, 0],
        round_compute=rd[:, 1],
        round_end=rd[:, 2],
        compute_durations=durations,
    )
