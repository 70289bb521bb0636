"""Synchronous rounds: the neighbour (or global) barrier of D-PSGD and synchronous gradient
tracking, and Ring-AllReduce.

Gossip methods: node i's round k ends when it has computed, its own round-k sends have left its
egress, and it holds its in-neighbours' round-k packets (a lost one is resent after
`retransmit_timeout`); then it starts round k+1. A packet of a later round (a neighbour may run
ahead) is held, and delivered right after i's computation of that round, so node i's k-th
computation reads exactly its in-neighbours' packets of round k-1. With `barrier: global`, every
node also waits until all nodes have ended the round.

Ring-AllReduce is global by nature: after the slowest computation, 2(n-1) steps, each waiting
for its slowest link to move a 1/n chunk (bytes / min(link, egress[, ingress]) + latency).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict, deque

import simpy

from rfast_sim.timing import transfer_rate
from rfast_sim.timing.engine.network import Packet
from rfast_sim.timing.engine.processes import Process, Sim, call_at, computed
from rfast_sim.timing.engine.trace import DROP, ROUND


class Barrier:
    """Round bookkeeping of the synchronous gossip methods."""

    def __init__(self, sim: Sim, global_: bool) -> None:
        n = sim.channels.n
        self.sim, self.global_ = sim, global_
        self.reached = [-1] * n  # the last round whose computation node i has done
        self.got: list[defaultdict[int, int]] = [defaultdict(int) for _ in range(n)]
        self.sending: list[defaultdict[int, int]] = [defaultdict(int) for _ in range(n)]
        self.held: list[defaultdict[int, list[Packet]]] = [defaultdict(list) for _ in range(n)]
        self.waiting: list[tuple[int, simpy.Event] | None] = [None] * n
        self.indegree = [int((sim.channels.in_ch[i] >= 0).sum()) for i in range(n)]
        self.ended: defaultdict[int, int] = defaultdict(int)
        self.everyone: dict[int, simpy.Event] = {}
        self.done_round = [-1] * n  # the last round node i has ended (or given up on)
        self.timeout = sim.timing.spec.barrier_timeout

    def send(self, i: int, c: int, round_: int) -> int:
        pkt = self.sim.packet(c, round_)
        pkt.on_arrive, pkt.on_depart = self.arrive, self.departed
        self.sending[i][round_] += 1
        return self.sim.send(pkt)

    def departed(self, pkt: Packet, lost: bool) -> None:
        self.sim.count_departure(pkt, lost)
        if pkt.attempt == 0 and pkt.round > self.done_round[pkt.src]:
            self.sending[pkt.src][pkt.round] -= 1
            self._check(pkt.src)

    def arrive(self, pkt: Packet, lost: bool) -> None:
        sim = self.sim
        if sim.done.triggered:
            return
        if sim.log:  # the physical arrival (a packet of a later round is delivered later)
            sim.log_end(pkt, lost)
        if lost:  # the sender resends the same packet (slot, sequence number) after a timeout
            sim.rec.add(sim.env.now, DROP, pkt.dst, pkt.src, pkt.channel, -1, pkt.seq, True)
            sim.dropped += 1
            pkt.attempt += 1
            # retries every timeout; while an end is down they fail, so the first that can
            # get through is the first after both are up (inf: never)
            rt = sim.timing.spec.retransmit_timeout
            delay = rt + _until_up(sim, (pkt.src, pkt.dst), sim.env.now + rt)
            if not math.isinf(delay):
                call_at(sim, delay, functools.partial(self._resend, pkt))
            return
        if self.reached[pkt.dst] >= pkt.round:
            sim.record_arrival(pkt, False)
        else:
            self.held[pkt.dst][pkt.round].append(pkt)
        if pkt.round > self.done_round[pkt.dst]:  # a late one for a round given up on: no count
            self.got[pkt.dst][pkt.round] += 1
            self._check(pkt.dst)

    def _resend(self, pkt: Packet) -> None:
        if not self.sim.done.triggered:
            # a new attempt: one lost in its sender's queue may leave this time, and then
            # counts in messages and bytes
            pkt.sent, pkt.unsent = self.sim.env.now, False
            if self.sim.log:  # a new attempt: a row of its own in the packet log
                pkt.started = pkt.left = math.nan
                self.sim.rec.live[id(pkt)] = pkt
            self.sim.network.send(pkt)

    def computed(self, i: int, round_: int) -> None:
        """Node i has done its round's computation: the held packets of that round arrive."""
        self.reached[i] = round_
        for pkt in self.held[i].pop(round_, []):
            self.sim.record_arrival(pkt, False)

    def end_of_round(self, i: int, round_: int) -> simpy.Event:
        ev = self.sim.env.event()
        self.waiting[i] = (round_, ev)
        self._check(i)
        return ev

    def _check(self, i: int) -> None:
        w = self.waiting[i]
        if w is None:
            return
        k, ev = w
        if self.got[i][k] >= self.indegree[i] and self.sending[i][k] == 0:
            self.give_up(i, k)
            ev.succeed()

    def give_up(self, i: int, k: int) -> None:
        """Node i leaves round k's barrier (done, or timed out: what is missing is not waited
        for)."""
        self.waiting[i] = None
        self.done_round[i] = k
        self.got[i].pop(k, None)
        self.sending[i].pop(k, None)

    def wait(self, ev: simpy.Event) -> simpy.Event:
        """`ev`, or `barrier_timeout` seconds if that comes first."""
        return ev if self.timeout is None else ev | self.sim.env.timeout(self.timeout)

    def all_ended(self, round_: int) -> simpy.Event:
        ev = self.everyone.setdefault(round_, self.sim.env.event())
        self.ended[round_] += 1
        if self.ended[round_] == len(self.reached):
            ev.succeed()
            del self.everyone[round_], self.ended[round_]
        return ev


def gossip_node(sim: Sim, bar: Barrier, i: int) -> Process:
    """Node i's lock-step rounds: compute, send to every out-neighbour, wait at the barrier."""
    outs = [int(c) for c in sim.channels.out_ch[i] if c >= 0]
    k = 0
    while True:
        start = sim.env.now
        if not (yield from sim.compute(i)):
            return
        slots = list(sim.rec.none)
        for j, c in enumerate(outs):
            slots[j] = bar.send(i, c, k)
        computed(sim, i, tuple(slots))
        bar.computed(i, k)
        compute_end = sim.env.now
        if sim.updates >= sim.max_updates:
            sim.finish()
            return
        ended = bar.end_of_round(i, k)
        yield bar.wait(ended)
        if not ended.triggered:
            bar.give_up(i, k)
        if bar.global_:
            yield bar.wait(bar.all_ended(k))
        if sim.done.triggered:
            return
        sim.rec.rounds.append((i, start, compute_end, sim.env.now))
        k += 1


def _until_up(sim: Sim, nodes: tuple[int, ...], t: float) -> float:
    """A whole number of retransmit timeouts after t until every node is up (inf: never)."""
    rt = sim.timing.spec.retransmit_timeout
    extra = 0.0
    while True:
        downs = [d for v in nodes if (d := sim.timing.faults.next_down(v, t + extra)) is not None
                 and d[0] <= t + extra]
        if not downs:
            return extra
        end = max(d[1] for d in downs)
        if math.isinf(end):
            return end
        extra += rt * max(1, math.ceil((end - t - extra) / rt))


class ChunkCounts:
    """Ring-AllReduce's chunk copies, drawn a round ahead, counted when they happen: a copy
    when its transfer ends (as a packet through a NIC), a lost one again when it arrives.
    `settle` applies those up to now (`Sim.settle`, before each sample); one SimPy event per
    copy would cost more than the round's draws."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.round: list[tuple[float, bool, float, float, float]] = []
        # (time, lost, bytes, transfer, latency) in time order: a round's copies all happen
        # before the next round starts
        self.due: deque[tuple[float, bool, float, float, float]] = deque()
        sim.settle = self.settle

    def add(self, t: float, lost: bool, nbytes: float = 0.0, transfer: float = 0.0,
            latency: float = 0.0) -> None:
        self.round.append((t, lost, nbytes, transfer, latency))

    def end_round(self) -> None:
        self.round.sort()
        self.due.extend(self.round)
        self.round = []

    def settle(self) -> None:
        sim, due, now = self.sim, self.due, self.sim.env.now
        stats = sim.network.stats  # the ring's figures, as a NIC's would be (no queue)
        while due and due[0][0] <= now:
            _, lost, nbytes, transfer, latency = due.popleft()
            if lost:
                sim.dropped += 1
                continue
            sim.messages += 1
            sim.bytes += nbytes
            stats.departed += 1
            stats.transfer += transfer
            stats.latency += latency


def _reliable_delay(sim: Sim, counts: ChunkCounts, a: int, b: int, nbytes: float,
                    start: float) -> float:
    """Delay until a chunk a->b sent at `start` gets through, resending each lost copy (lost
    by the loss model, or sent onto a down link) after the timeout. The draws are made now,
    for the whole round; each copy is counted (messages, bytes, losses) when it happens."""
    links, faults = sim.timing.links, sim.timing.faults
    # one chunk into each node per step: alone on the receiver's ingress
    transfer = nbytes / float(transfer_rate(links.get(a, b).bandwidth, sim.timing.spec,
                                            alone=True, egress=links.egress(a)))
    total = 0.0
    while True:
        wait = _until_up(sim, (a, b), start + total)  # both ends must be up to try
        if math.isinf(wait):
            return wait
        total += wait
        latency, lost = links.fate(a, b)
        arrival = start + total + transfer + latency
        lost = lost or not links.up(a, b, start + total + transfer) \
            or not faults.node_up(b, arrival)
        counts.add(start + total + transfer, False, nbytes, transfer, latency)
        if not lost:
            return total + transfer + latency
        counts.add(arrival, True)
        total += sim.timing.spec.retransmit_timeout


def allreduce_rounds(sim: Sim) -> Process:
    """Ring-AllReduce rounds: every node computes, then 2(n-1) chunk steps around the ring."""
    n = sim.channels.n
    counts = ChunkCounts(sim)
    while True:
        start = sim.env.now
        ds = [sim.finish_time(i) - start for i in range(n)]
        if math.isinf(max(ds)):  # a member never comes back: the ring cannot reduce
            return
        for i, d in enumerate(ds):
            call_at(sim, d, functools.partial(computed, sim, i))
        yield sim.env.timeout(max(ds))
        if sim.done.triggered:
            return
        compute_end = sim.env.now
        chunk = sim.timing.message_bytes / n
        comm = 0.0
        for _ in range(2 * (n - 1)):  # each step waits for its slowest link
            t = sim.env.now + comm
            comm += max(_reliable_delay(sim, counts, i, (i + 1) % n, chunk, t)
                        for i in range(n))
        counts.end_round()
        if math.isinf(comm):
            return
        yield sim.env.timeout(comm)
        if sim.done.triggered:
            return
        sim.rec.rounds.append((-1, start, compute_end, sim.env.now))
        sim.rec.add(sim.env.now, ROUND, -1, seq=len(sim.rec.rounds) - 1)
        if sim.updates >= sim.max_updates:
            sim.finish()
            return
