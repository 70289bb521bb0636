"""The engine's product: an :class:`EventTrace` of numpy arrays, its recorder, and what both
trace builders share: the metric grid (`sample_times`) and the network figures (`NetStats`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

COMPUTE, DELIVER, ROUND, DROP, SAMPLE, RESET = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("compute", "deliver", "round", "drop", "sample", "reset")
# a packet's fate (PacketLog.fate)
DELIVERED, LOST_LINK, LOST_RECEIVER, LOST_SENDER, SUPERSEDED, IN_FLIGHT = range(6)
FATE_NAMES = ("delivered", "lost on its link", "lost: receiver down", "lost: sender down",
              "superseded", "in flight at the end")


@dataclass(frozen=True)
class PacketLog:
    """Every packet's life, recorded when a trace builder is asked (``packets=True``): one row
    per transmission (a lost synchronous packet that is resent: one per attempt), ordered by
    (channel, seq, sent). Times a packet had not reached by the end of the run are NaN:
    `started` (it left the sender's egress queue; the send time without a NIC), `left` (its
    transfer ended), `end` (it arrived, was found lost, or was superseded)."""

    src: np.ndarray
    dst: np.ndarray
    channel: np.ndarray
    seq: np.ndarray
    round: np.ndarray  # synchronous round, -1 for asynchronous packets
    sent: np.ndarray
    started: np.ndarray
    left: np.ndarray
    end: np.ndarray
    fate: np.ndarray  # DELIVERED, LOST_LINK, LOST_RECEIVER, LOST_SENDER, SUPERSEDED, IN_FLIGHT

    def __len__(self) -> int:
        return len(self.sent)

    @classmethod
    def from_columns(cls, src: np.ndarray, dst: np.ndarray, channel: np.ndarray,
                     seq: np.ndarray, round_: np.ndarray, sent: np.ndarray,
                     started: np.ndarray, left: np.ndarray, end: np.ndarray,
                     fate: np.ndarray) -> PacketLog:
        """Typed columns in the canonical order (both builders give the same rows)."""
        order = np.lexsort((sent, seq, channel))
        ints = {k: np.asarray(v, np.int32)[order] for k, v in
                dict(src=src, dst=dst, channel=channel, seq=seq, round=round_).items()}
        times = {k: np.asarray(v, np.float64)[order] for k, v in
                 dict(sent=sent, started=started, left=left, end=end).items()}
        return cls(**ints, **times, fate=np.asarray(fate, np.int8)[order])

    def count(self, fate: int) -> int:
        return int((self.fate == fate).sum())


@dataclass(frozen=True)
class EventTrace:
    """Every event of one run, in the order they fired.

    ``sent_slots[r, k]`` is, for the r-th compute event (in trace order) of node i, the slot
    of the packet sent on ``channels.out_ch[i, k]`` (-1: not sent, or padding): one row per
    computation, not per event (`out_slots` gives the dense per-event view). For a delivery,
    ``slot`` is the slot it frees and ``seq`` the packet's sequence number on its channel.
    """

    time: np.ndarray
    kind: np.ndarray
    node: np.ndarray
    peer: np.ndarray
    channel: np.ndarray
    slot: np.ndarray
    seq: np.ndarray
    dropped: np.ndarray
    phase: np.ndarray  # a computation's phase of time-varying graphs (0: static)
    sent_slots: np.ndarray  # [computations, Kout]
    num_slots: int
    sample_time: np.ndarray
    sample_updates: np.ndarray
    sample_messages: np.ndarray
    sample_dropped: np.ndarray
    sample_superseded: np.ndarray
    sample_bytes: np.ndarray
    round_node: np.ndarray  # -1: a global (all-reduce) round
    round_start: np.ndarray
    round_compute: np.ndarray
    round_end: np.ndarray
    compute_durations: dict[int, list[float]]
    network: dict[str, Any]  # queue discipline, queueing and delay figures
    node_down: dict[int, list[tuple[float, float]]]  # down periods [start, end) of nodes
    link_down: dict[tuple[int, int], list[tuple[float, float]]]  # and of used links
    packets: PacketLog | None = None  # recorded only when asked (memory: one row a packet)

    def __len__(self) -> int:
        return len(self.time)

    def compute_rank(self, events: np.ndarray) -> np.ndarray:
        """The row of `sent_slots` of each given event (-1 for events that are not
        computations)."""
        is_c = self.kind == COMPUTE
        rank = np.cumsum(is_c) - 1
        return np.where(is_c[events], rank[events], -1)

    @property
    def out_slots(self) -> np.ndarray:
        """[events, Kout]: each event's row of `sent_slots` (-1 rows for other events), made
        on demand (small traces: oracles, tests; large runs read `sent_slots`)."""
        out = np.full((len(self.time), self.sent_slots.shape[1]), -1, np.int32)
        out[self.kind == COMPUTE] = self.sent_slots
        return out

    def is_kind(self, name: str) -> np.ndarray:
        """Mask of the events of one kind ("compute", "deliver", "round", "drop", "sample",
        "reset")."""
        return self.kind == KIND_NAMES.index(name)

    def compute_spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(node, start, duration) of every finished computation of an asynchronous run."""
        pick = self.is_kind("compute")
        nodes, ends = self.node[pick], self.time[pick]
        durations = np.zeros(len(nodes))
        for i, ds in self.compute_durations.items():
            mine = nodes == i
            durations[mine] = np.asarray(ds[: int(mine.sum())])
        return nodes, ends - durations, durations


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
    phase: int = 0


def sample_times(until: float, every: float) -> Iterator[float]:
    """The metric sample grid of both trace builders: 0, every, 2 every, ... up to `until`,
    then `until` itself where the grid stops short of it (a run shorter than one interval, or
    one that is not a multiple of it, still samples its final state). Endless for an infinite
    `until` (a max_updates stop ends the run)."""
    tol = 1e-12 * max(1.0, until) if until < np.inf else 0.0
    last = -np.inf
    for k in itertools.count():
        t = k * every
        if t > until + tol:
            break
        last = t
        yield t
    if last < until - tol:
        yield until


@dataclass
class NetStats:
    """Per-run queueing and delay figures (summed), as both trace builders report them."""

    departed: int = 0
    superseded: int = 0
    queueing: float = 0.0
    transfer: float = 0.0
    latency: float = 0.0
    queue_area: float = 0.0  # integral over time of the send-queue lengths, all nodes
    max_queue: int = 0

    def summary(self, n: int, duration: float, queue: str, resets: int) -> dict[str, Any]:
        """The trace's `network` figures (`queue`: the discipline that ran: fifo, latest or
        none; `resets`: node restarts)."""
        k = max(self.departed, 1)
        return {"packets": self.departed, "superseded": self.superseded,
                "mean_queue": self.queue_area / max(duration * n, 1e-300),
                "max_queue": self.max_queue, "mean_queueing_delay": self.queueing / k,
                "mean_transfer_delay": self.transfer / k, "mean_latency": self.latency / k,
                "queue": queue, "resets": resets}


class Recorder:
    """Collects events as plain tuples (cheap per event) and converts them once at the end."""

    def __init__(self, kout: int, on_event: Callable[[Event], None] | None) -> None:
        self.rows: list[tuple[float, int, int, int, int, int, int, bool, int]] = []
        self.out: list[tuple[int, ...]] = []
        self.none = (-1,) * kout
        self.kout = kout
        self.on_event = on_event
        self.samples: list[tuple[float, int, int, int, int, float]] = []
        self.rounds: list[tuple[int, float, float, float]] = []
        # the packet log, when asked: finished packets' rows, and those still in flight
        self.packets: list[tuple[Any, ...]] | None = None
        self.live: dict[int, Any] = {}

    def packet_done(self, pkt: Any, end: float, fate: int) -> None:
        """Log a packet's (or a synchronous attempt's) end (only with the log on)."""
        assert self.packets is not None
        self.live.pop(id(pkt), None)
        self.packets.append((pkt.src, pkt.dst, pkt.channel, pkt.seq, pkt.round, pkt.sent,
                             pkt.started, pkt.left, end, fate))

    def packet_log(self) -> PacketLog | None:
        if self.packets is None:
            return None
        rows = self.packets + [(p.src, p.dst, p.channel, p.seq, p.round, p.sent, p.started,
                                p.left, np.nan, IN_FLIGHT) for p in self.live.values()]
        cols = np.array(rows, dtype=np.float64).reshape(-1, 10).T
        return PacketLog.from_columns(*cols)

    def add(self, t: float, kind: int, node: int, peer: int = -1, channel: int = -1,
            slot: int = -1, seq: int = -1, dropped: bool = False,
            out: tuple[int, ...] | None = None, phase: int = 0) -> None:
        out = out if out is not None else self.none
        self.rows.append((t, kind, node, peer, channel, slot, seq, dropped, phase))
        if kind == COMPUTE:
            self.out.append(out)
        if self.on_event is not None and kind != DROP:
            self.on_event(Event(len(self.rows) - 1, t, kind, node, peer, channel, slot, seq, out,
                                phase))

    def trace(self, num_slots: int, durations: dict[int, list[float]],
              network: dict[str, Any], node_down: dict[int, list[tuple[float, float]]],
              link_down: dict[tuple[int, int], list[tuple[float, float]]]) -> EventTrace:
        """One conversion of all rows (ints and times are exact in float64), typed columns."""
        cols = np.array(self.rows, dtype=np.float64).reshape(-1, 9).T
        st = np.asarray(self.samples, dtype=np.float64).reshape(-1, 6)
        rd = np.asarray(self.rounds, dtype=np.float64).reshape(-1, 4)
        return EventTrace(
            time=np.asarray(cols[0], dtype=np.float64),
            kind=np.asarray(cols[1], dtype=np.int8),
            node=np.asarray(cols[2], dtype=np.int32),
            peer=np.asarray(cols[3], dtype=np.int32),
            channel=np.asarray(cols[4], dtype=np.int32),
            slot=np.asarray(cols[5], dtype=np.int32),
            seq=np.asarray(cols[6], dtype=np.int32),
            dropped=np.asarray(cols[7], dtype=bool),
            phase=np.asarray(cols[8], dtype=np.int32),
            sent_slots=np.asarray(self.out, dtype=np.int32).reshape(-1, self.kout),
            num_slots=max(num_slots, 1),
            sample_time=st[:, 0],
            sample_updates=st[:, 1].astype(np.int64),
            sample_messages=st[:, 2].astype(np.int64),
            sample_dropped=st[:, 3].astype(np.int64),
            sample_superseded=st[:, 4].astype(np.int64),
            sample_bytes=st[:, 5],
            round_node=rd[:, 0].astype(np.int32),
            round_start=rd[:, 1],
            round_compute=rd[:, 2],
            round_end=rd[:, 3],
            compute_durations=durations,
            network=network,
            node_down=node_down,
            link_down=link_down,
            packets=self.packet_log(),
        )
