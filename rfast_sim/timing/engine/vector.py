"""The vectorised trace builder: the asynchronous engine as array arithmetic.

Timing never depends on values, so for asynchronous methods on static graphs the whole trace
is numpy: a node's completion times are the cumulative sums of its compute draws; it sends on
every out-channel then (or on one, drawn from its choice stream: AD-PSGD); a FIFO egress
departs packet m at ``max(sent_m, done_{m-1}) + s_m``; each link draws latency and loss in
departure order; a packet arrives at departure + latency.
Random numbers come from the same named streams, read in the same order, as the SimPy engine
(:mod:`rfast_sim.timing.engine.processes`), so the two traces are equal event for event (times to
rounding) wherever no two events happen at the same instant; simultaneous events are ordered
by (time, kind, node, channel, seq) here and by scheduling order in SimPy (see `ties_unlikely`).
Slot numbers come from a free list as in SimPy (from time windows in large runs: `_slots`).

It covers what :func:`covers` accepts; everything else runs in SimPy, the reference.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from rfast_sim.scenario import Timing
from rfast_sim.timing import TimingModel
from rfast_sim.timing.engine.trace import (
    COMPUTE,
    DELIVER,
    DELIVERED,
    DROP,
    IN_FLIGHT,
    LOST_LINK,
    SAMPLE,
    EventTrace,
    NetStats,
    PacketLog,
    sample_times,
)
from rfast_sim.timing.scope import ties_unlikely, vector_gap

__all__ = ["assign_slots", "build", "covers", "ties_unlikely"]
from rfast_sim.timing.topology import Channels


def covers(t: Timing, channels: Channels, pattern: str, supersedes: bool) -> str | None:
    """None when the vector builder covers a run of these timing settings, else why not (one
    phrase): `rfast_sim.timing.scope.vector_gap`."""
    return vector_gap(t, channels.phases is not None, pattern, supersedes)


def _grid(until: float, every: float) -> np.ndarray:
    """The metric grid up to a finite `until` (`sample_times`, as SimPy samples)."""
    return np.fromiter(sample_times(until, every), dtype=np.float64)


class _Clock:
    """Each node's compute durations drawn so far and their cumulative sums (completion times,
    computed over the whole sequence so they equal SimPy's successive additions)."""

    def __init__(self, timing: TimingModel, n: int) -> None:
        self.timing = timing
        self.d = [np.zeros(0) for _ in range(n)]
        self.t = [np.zeros(0) for _ in range(n)]

    def reach(self, horizon: float) -> None:
        """Draw until every node's last completion is past `horizon`."""
        for i, t in enumerate(self.t):
            if len(t) and t[-1] > horizon:
                continue
            parts = [self.d[i]]
            total = float(t[-1]) if len(t) else 0.0
            while total <= horizon:
                parts.append(self.timing.clocks.durations(i, 64))
                total += float(parts[-1].sum())
            self.d[i] = np.concatenate(parts)
            self.t[i] = np.cumsum(self.d[i])

    def stop(self, limit: float, max_updates: int | None) -> tuple[float, bool]:
        """When the run ends: at `limit`, or at the max_updates-th completion if earlier
        (then True)."""
        if max_updates is None:
            self.reach(limit)
            return limit, False
        n = len(self.t)
        horizon = limit if math.isfinite(limit) else 2.0 * max_updates / n
        while True:
            self.reach(horizon)
            done = np.concatenate([t[t <= horizon] for t in self.t])
            if len(done) >= max_updates:
                t_stop = float(np.partition(done, max_updates - 1)[max_updates - 1])
                return (t_stop, True) if t_stop <= limit else (limit, False)
            if horizon >= limit:
                return limit, False
            horizon = min(2.0 * horizon, limit)

    def upto(self, end: float, by_updates: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(durations SimPy has drawn, completion times) per node up to `end`: the completed
        ones and the one in progress (none for the node whose completion ended the run)."""
        durations, times = [], []
        for d, t in zip(self.d, self.t, strict=True):
            k = int(np.searchsorted(t, end, side="right"))
            last = by_updates and k and t[k - 1] == end
            durations.append(d[: k if last else k + 1])
            times.append(t[:k])
        return durations, times


def _departures(sent: np.ndarray, service: np.ndarray,
                fifo: bool) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each packet's transfer (one node's packets in send order). A FIFO
    egress starts packet m at max(sent_m, done_{m-1}); unrolled, done_m = S_m + max over
    j <= m of (sent_j - S_{j-1}) with S the prefix sums of the service times: a cumulative
    max (equal to the sequential recursion up to rounding)."""
    if not fifo or not len(sent):
        return sent.copy(), sent + service
    total = np.cumsum(service)
    done = total + np.maximum.accumulate(sent - (total - service))
    start = np.maximum(sent, np.concatenate([[-math.inf], done[:-1]]))
    return start, start + service


_LIFO_MAX = 100_000  # packets up to which slots come from SimPy's free list (a Python loop)
_WINDOWS = 8  # windows per lifetime span (the store is about (1 + 1/_WINDOWS) of that span's sends)


def _slots(sent: np.ndarray, freed: np.ndarray, end: float,
           lifo_max: int | None = None) -> tuple[np.ndarray, int]:
    """A store slot per packet, never shared by two packets in flight at once: a packet holds
    its slot from its send to its release (arrival or loss), both ends included (a send and a
    release at the same instant must not share, as the replay writes before it reads).

    Up to `lifo_max` (default `_LIFO_MAX`) packets: SimPy's own last-in-first-out free list,
    so the store is as small (the most packets ever in flight) and the slots the same. Above
    it, the free list's Python loop is a good part of the builder's time, so slots come from
    time windows: with L the 95th percentile of the packets' lifetimes and windows of width
    L / K (K = `_WINDOWS`), a packet sent in window k that is released before window k + K + 1
    begins takes slot (its rank in window k) in region k mod (K + 1) of the store; the rest
    (5%) use the free list in a region of their own; packets never read in the run (released
    after `end`) share one slot. The store is then about the most packets sent within one
    lifetime L, a few times the most in flight: small next to the channel state."""
    count = len(sent)
    lifo_max = _LIFO_MAX if lifo_max is None else lifo_max
    life = (freed - sent)[freed <= end]
    width = float(np.quantile(life, 0.95)) / _WINDOWS if len(life) else 0.0
    if count <= lifo_max or not width > 0:
        return _lifo_slots(sent, freed)
    slot = np.empty(count, np.int64)
    window = np.floor(sent / width)
    unread = freed > end
    # compared as quotients: rounded division is monotonic, so a later window's sends are
    # strictly after these releases (a product of the window's start could round across one)
    short = ~unread & (freed / width < window + _WINDOWS + 1)
    idx = np.flatnonzero(short)
    win = window[idx].astype(np.int64)
    order = np.lexsort((sent[idx], win))
    win_sorted = win[order]
    rank = np.arange(len(idx)) - np.searchsorted(win_sorted, win_sorted, side="left")
    region = int(rank.max()) + 1 if len(idx) else 0
    slot[idx[order]] = (win_sorted % (_WINDOWS + 1)) * region + rank
    base = (_WINDOWS + 1) * region
    rest = np.flatnonzero(~short & ~unread)
    rest_slot, rest_count = _lifo_slots(sent[rest], freed[rest])
    slot[rest] = base + rest_slot
    slot[unread] = base + rest_count
    return slot, base + rest_count + int(unread.any())


def assign_slots(sent: np.ndarray, freed: np.ndarray, end: float) -> tuple[np.ndarray, int]:
    """(slot of each packet, store size): packets hold a slot from `sent` to `freed`, both
    ends included (`_slots`; the wave replay re-allocates its slots over steps with it)."""
    return _slots(sent, freed, end)


def _lifo_slots(sent: np.ndarray, freed: np.ndarray) -> tuple[np.ndarray, int]:
    """Slots from a last-in-first-out free list, in time order (a send before a release at
    the same instant, as the trace orders them): what SimPy's engine does."""
    count = len(sent)
    when = np.concatenate([sent, freed])
    release = np.repeat([False, True], count)
    order = np.lexsort((release, when))
    ids = np.concatenate([np.arange(count), np.arange(count)])[order].tolist()
    slot = [0] * count
    free: list[int] = []
    top = 0
    for pid, rel in zip(ids, release[order].tolist(), strict=True):
        if rel:
            free.append(slot[pid])
        elif free:
            slot[pid] = free.pop()
        else:
            slot[pid] = top
            top += 1
    return np.asarray(slot, dtype=np.int64), top


def _packets(timing: TimingModel, channels: Channels, counts: list[int],
             pattern: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node, computation index, out-channel position) of every packet, node by node in send
    order: after each computation, every out-channel in order ("all"), or one drawn from the
    node's choice stream as SimPy draws it ("one", AD-PSGD)."""
    nodes, ks, outs = [], [], []
    for i, count in enumerate(counts):
        mine = np.flatnonzero(channels.out_ch[i] >= 0)
        if not len(mine) or not count:
            continue
        if pattern == "all":
            nodes.append(np.full(count * len(mine), i))
            ks.append(np.repeat(np.arange(count), len(mine)))
            outs.append(np.tile(mine, count))
        else:
            pick = timing.clocks.choices(i, count, len(mine))
            nodes.append(np.full(count, i))
            ks.append(np.arange(count))
            outs.append(mine[pick])
    if not nodes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (np.concatenate(nodes).astype(np.int64), np.concatenate(ks).astype(np.int64),
            np.concatenate(outs).astype(np.int64))


def _per_channel_count(channel: np.ndarray) -> np.ndarray:
    """Sequence numbers: 1, 2, ... per channel, in send order."""
    order = np.argsort(channel, kind="stable")
    sorted_ch = channel[order]
    start = np.searchsorted(sorted_ch, sorted_ch, side="left")
    seq = np.empty(len(channel), np.int64)
    seq[order] = np.arange(len(channel)) - start + 1
    return seq


def build(timing: TimingModel, channels: Channels, *, until: float | None,
          sample_every: float, pattern: str = "all",
          max_updates: int | None = None, packets: bool = False) -> EventTrace:
    """The trace of one asynchronous run (see the module docstring), to `until` or to the
    max_updates-th computation, whichever comes first; `packets`: with the packet log."""
    n, t = channels.n, timing.spec
    limit = until if until is not None else math.inf
    clock = _Clock(timing, n)
    end, by_updates = clock.stop(limit, max_updates)
    samples = _grid(end, sample_every)  # ends at `end`: SimPy's final sample
    durations, ctimes = clock.upto(end, by_updates)
    kout = channels.out_ch.shape[1]
    p_node, p_k, p_out = _packets(timing, channels, [len(x) for x in ctimes], pattern)
    c_time = np.concatenate([*ctimes, []])  # node-major: node i's computations in order
    c_node = np.repeat(np.arange(n), [len(x) for x in ctimes])
    c_first = np.concatenate([[0], np.cumsum([len(x) for x in ctimes])[:-1]]).astype(np.int64)
    p_row = c_first[p_node] + p_k  # each packet's computation in c_time
    p_sent = c_time[p_row]
    p_ch = channels.out_ch[p_node, p_out].astype(np.int64)
    p_dst = channels.dst[p_ch].astype(np.int64)
    nbytes = timing.message_bytes
    nic = t.nic
    link_ids, link_of = np.unique(p_node * n + p_dst, return_inverse=True)
    rates = timing.links.rates(link_ids // n, link_ids % n)
    service = nbytes / rates[link_of] if len(link_ids) else np.zeros(0)
    p_start, p_done = np.empty_like(p_sent), np.empty_like(p_sent)
    bounds = np.searchsorted(p_node, np.arange(n + 1))
    for i in range(n):
        lo, hi = bounds[i], bounds[i + 1]
        p_start[lo:hi], p_done[lo:hi] = _departures(p_sent[lo:hi], service[lo:hi],
                                                     nic is not None)
    # each link's latency and loss draws, in departure order
    creation = np.arange(len(p_sent))
    order = np.lexsort((creation, p_done, link_of))
    latency = np.empty_like(p_sent)
    lost = np.empty(len(p_sent), dtype=bool)
    lb = np.searchsorted(link_of[order], np.arange(len(link_ids) + 1))
    # SimPy draws for the packets that left before the end (without a NIC: when sent); they
    # come first in each link's departure order
    left = (p_done if nic is not None else p_sent) <= end
    counts = np.bincount(link_of[left], minlength=len(link_ids))
    latency[~left], lost[~left] = math.inf, False
    fates = timing.links.fates_once(link_ids // n, link_ids % n, counts)
    for j, (lat, gone) in enumerate(fates):  # one link at a time: no generator is kept
        sel = order[lb[j]:lb[j] + counts[j]]
        latency[sel], lost[sel] = lat, gone
    # as SimPy computes it (without a NIC the arrival is scheduled from the send time)
    arrive = p_sent + ((p_done - p_sent) + latency) if nic is None else p_done + latency
    p_seq = _per_channel_count(p_ch)
    slot, num_slots = _slots(p_sent, arrive, end)
    p = dict(node=p_node, sent=p_sent, start=p_start, done=p_done, arrive=arrive, lost=lost,
             ch=p_ch, dst=p_dst, seq=p_seq, out=p_out, row=p_row, slot=slot, latency=latency)
    trace = _assemble(channels, timing, samples, durations, c_node, c_time, kout, p, num_slots,
                      end)
    if packets:
        trace = dataclasses.replace(trace, packets=_packet_log(p, end, nic is not None))
    return trace


def _packet_log(p: dict[str, np.ndarray], end: float, nic: bool) -> PacketLog:
    """The packet log as SimPy records it: what a packet had not reached by `end` is NaN
    (without a NIC its transfer is scheduled, so known, when it is sent)."""
    gone = p["arrive"] > end

    def by_end(t: np.ndarray, known: bool) -> np.ndarray:
        return t if known else np.where(t <= end, t, np.nan)

    return PacketLog.from_columns(
        p["node"], p["dst"], p["ch"], p["seq"], np.full(len(p["sent"]), -1), p["sent"],
        by_end(p["start"], not nic), by_end(p["done"], not nic), by_end(p["arrive"], False),
        np.where(gone, IN_FLIGHT, np.where(p["lost"], LOST_LINK, DELIVERED)))


def _assemble(channels: Channels, timing: TimingModel, samples: np.ndarray,
              durations: list[np.ndarray], c_node: np.ndarray, c_time: np.ndarray, kout: int,
              p: dict[str, np.ndarray], num_slots: int, end: float) -> EventTrace:
    n = channels.n
    nbytes = timing.message_bytes
    arrived = p["arrive"] <= end
    a = {k: v[arrived] for k, v in p.items()}
    # without a NIC SimPy counts a packet as it is handed over (its draws happen then too)
    leave = p["sent"] if timing.spec.nic is None else p["done"]
    s_count = len(samples)
    time = np.concatenate([c_time, a["arrive"], samples])
    kind = np.concatenate([np.full(len(c_time), COMPUTE), np.where(a["lost"], DROP, DELIVER),
                           np.full(s_count, SAMPLE)]).astype(np.int8)
    node = np.concatenate([c_node, a["dst"], np.arange(s_count)]).astype(np.int32)
    peer = np.concatenate([-np.ones(len(c_time)), a["node"], -np.ones(s_count)]).astype(np.int32)
    chan = np.concatenate([-np.ones(len(c_time)), a["ch"], -np.ones(s_count)]).astype(np.int32)
    seq = np.concatenate([-np.ones(len(c_time)), a["seq"], -np.ones(s_count)]).astype(np.int32)
    slot = np.concatenate([-np.ones(len(c_time)), a["slot"], -np.ones(s_count)]).astype(np.int32)
    dropped = np.concatenate([np.zeros(len(c_time), bool), a["lost"], np.zeros(s_count, bool)])
    order = _event_order(time, kind, node, chan, seq)
    # the out-slots of each computation, written straight into its row: computations in
    # trace order (their order is `order`'s restricted to the first len(c_time) entries)
    c_rank = np.empty(len(c_time), np.int64)
    c_rank[order[order < len(c_time)]] = np.arange(len(c_time))
    sent_slots = np.full((len(c_time), kout), -1, np.int32)
    sent_slots[c_rank[p["row"]], p["out"]] = p["slot"]
    departed = leave <= end
    dep_times = np.sort(leave[departed])
    drop_times = np.sort(a["arrive"][a["lost"]])
    messages = np.searchsorted(dep_times, samples, side="right")
    return EventTrace(
        time=time[order], kind=kind[order], node=node[order], peer=peer[order],
        channel=chan[order], slot=slot[order], seq=seq[order], dropped=dropped[order],
        phase=np.zeros(len(time), np.int32), sent_slots=sent_slots,
        num_slots=max(num_slots, 1), sample_time=samples,
        sample_updates=np.searchsorted(np.sort(c_time), samples, side="right").astype(np.int64),
        sample_messages=messages.astype(np.int64),
        sample_dropped=np.searchsorted(drop_times, samples, side="right").astype(np.int64),
        sample_superseded=np.zeros(s_count, np.int64),
        sample_bytes=messages * float(nbytes),
        round_node=np.zeros(0, np.int32), round_start=np.zeros(0), round_compute=np.zeros(0),
        round_end=np.zeros(0),
        compute_durations={i: durations[i].tolist() for i in range(n)},
        network=_network_stats(timing, p, departed, end, n),
        node_down={}, link_down={},
    )


def _event_order(time: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Order by time, simultaneous events by (kind, node, channel, seq): one stable sort, then
    a full sort of only the tied ones (rare: none where compute times are continuous)."""
    order = np.argsort(time, kind="stable")
    t = time[order]
    tied = np.flatnonzero(t[1:] == t[:-1])
    if len(tied):
        pos = np.union1d(tied, tied + 1)
        sub = order[pos]
        kind, node, chan, seq = (k[sub] for k in keys)
        order[pos] = sub[np.lexsort((seq, chan, node, kind, time[sub]))]
    return order


def _network_stats(timing: TimingModel, p: dict[str, np.ndarray], departed: np.ndarray,
                   end: float, n: int) -> dict[str, Any]:
    """The NetStats summary SimPy reports, from the packet arrays."""
    nic = timing.spec.nic
    sent = p["sent"] <= end
    if nic is None:
        area, max_queue = 0.0, 0
    else:
        area = float((np.minimum(p["start"][sent], end) - p["sent"][sent]).sum())
        max_queue = 0
        bounds = np.searchsorted(p["node"], np.arange(n + 1))
        for i in range(n):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:  # waiting after packet m is queued: queued so far - started before
                m = np.arange(hi - lo)
                started = np.minimum(np.searchsorted(p["start"][lo:hi], p["sent"][lo:hi],
                                                     side="right"), m)
                max_queue = max(max_queue, int((m + 1 - started).max()))
    stats = NetStats(
        departed=int(departed.sum()), queue_area=area, max_queue=max_queue,
        queueing=float((p["start"] - p["sent"])[departed].sum()),
        transfer=float((p["done"] - p["start"])[departed].sum()),
        latency=float(p["latency"][departed].sum()))
    return stats.summary(n, end, "fifo" if nic is not None else "none", resets=0)
