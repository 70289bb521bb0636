"""Levels of a trace's math events: which events the wave replay may apply together.

Timing never depends on values, so every event's read and write set is known before the math
starts. Each math event (computation, reset, delivery) gets a level: 1 + the highest level of
any earlier event it conflicts with (one writes a field the other reads or writes); the
resources are the fields of node rows and of channel rows, as each algorithm declares them
(:class:`rfast_sim.maths.algorithms.base.Accesses`), and packets (a delivery reads the packet its
sender's computation wrote). Events of one level are independent: applied together, in any
order, they give what the trace order gives. A metric sample closes a level.

One jitted loop over the laid-out trace (:mod:`rfast_sim.maths.layout`), in trace order, keeping per
resource the highest level that wrote it and that read it: O(events x degree), only the
fields each kind of event declares (selected statically: a delivery of R-FAST touches one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.maths.algorithms import Algorithm
from rfast_sim.maths.layout import Schedule, Steps

Array = jax.Array


class AccessMasks(NamedTuple):
    """Read / write flags per field ([node fields] or [channel fields]), per event kind."""

    node_r: np.ndarray  # a computation: its node row
    node_w: np.ndarray
    in_r: np.ndarray  # its in-channel rows
    in_w: np.ndarray
    out_r: np.ndarray  # its out-channel rows
    out_w: np.ndarray
    reset_node_w: np.ndarray  # a reset writes what it clears and reads nothing
    reset_in_w: np.ndarray
    reset_out_w: np.ndarray
    dst_r: np.ndarray  # a delivery: the receiver's row, the sender's, the channel's
    dst_w: np.ndarray
    src_r: np.ndarray
    src_w: np.ndarray
    chan_r: np.ndarray
    chan_w: np.ndarray


def access_masks(alg: Algorithm, node_fields: tuple[str, ...],
                 chan_fields: tuple[str, ...]) -> AccessMasks:
    """The algorithm's declared read and write sets (`Algorithm.access`) as flags over the
    state's fields; without a declaration, every field of every row an event is given. A
    reset writes its node row, the receiver's fields of its in-channels and the sender's
    fields of its out-channels (what it clears), and reads nothing."""
    rows = {"node": node_fields, "in": chan_fields, "out": chan_fields, "dst": node_fields,
            "src": node_fields, "chan": chan_fields}

    def flags(names: tuple[str, ...] | None, row: str) -> np.ndarray:
        if names is None:
            return np.ones(len(rows[row]), bool)
        bad = [x for x in names if x.split(".")[0] not in rows
               or x.split(".", 1)[-1] not in rows[x.split(".")[0]]]
        if bad:
            raise ValueError(f"{alg.name}: access names unknown fields {bad} (rows: node, in, "
                             f"out, dst, src, chan; node fields {node_fields}, channel fields "
                             f"{chan_fields})")
        return np.array([f"{row}.{f}" in names for f in rows[row]], bool)

    acc = alg.access
    cr, cw = (acc.compute.reads, acc.compute.writes) if acc else (None, None)
    rr, rw = (acc.receive.reads, acc.receive.writes) if acc else (None, None)
    sender = np.array([f in alg.sender_fields for f in chan_fields], bool)
    return AccessMasks(
        flags(cr, "node"), flags(cw, "node"), flags(cr, "in"), flags(cw, "in"),
        flags(cr, "out"), flags(cw, "out"),
        np.ones(len(node_fields), bool), ~sender, sender,
        flags(rr, "dst"), flags(rw, "dst"), flags(rr, "src"), flags(rw, "src"),
        flags(rr, "chan"), flags(rw, "chan"))


class Levels(NamedTuple):
    """Each laid-out event's level (0: not a math event: padding, or a stale packet that
    changes nothing) and, for a delivery, the packet it reads: q * Kout + k, the k-th packet
    of computation q (-1: none)."""

    c_level: np.ndarray  # [Q]
    d_level: np.ndarray  # [Dn]
    d_packet: np.ndarray  # [Dn]


class _Fields(NamedTuple):
    """Static: for one row of an event, the fields it accesses and, per variant (a
    computation, a reset), which of them it reads and which it writes."""

    used: np.ndarray  # accessed fields (of any variant)
    reads: np.ndarray  # [variants, len(index)]
    writes: np.ndarray


def _fields(*variants: tuple[np.ndarray, np.ndarray]) -> _Fields:
    used = np.flatnonzero(np.any([r | w for r, w in variants], axis=0))
    return _Fields(used, np.array([r[used] for r, _ in variants]).reshape(len(variants), -1),
                   np.array([w[used] for _, w in variants]).reshape(len(variants), -1))


class _Access(NamedTuple):
    """One event's accesses: resource ids, which are read / written, and its level."""

    ids: Array
    reads: Array
    writes: Array
    level: Array


@dataclass(frozen=True)
class _Space:
    """Resource ids: each node's fields, then each channel's; `last` holds, per resource, the
    highest level that wrote it, then the highest that read it."""

    nodes: int
    channels: int
    fn: int  # fields per node row / channel row
    fc: int

    @property
    def size(self) -> int:
        return self.nodes * self.fn + self.channels * self.fc

    def ids(self, rows: Array, f: _Fields, chans: bool) -> Array:
        """The ids of fields `f` of the given node (or channel) rows; padding (-1) rows get
        an id past the end, which touches nothing."""
        base, nf = (self.nodes * self.fn, self.fc) if chans else (0, self.fn)
        rows = jnp.asarray(rows, jnp.int32)[..., None]
        at = base + rows * nf + jnp.asarray(f.used, jnp.int32)
        return jnp.where(rows >= 0, at, 2 * self.size).reshape(-1)

    def access(self, last: Array, ids: Array, reads: Array, writes: Array, active: Array,
               floor: Array, extra: Array) -> _Access:
        """1 + the highest level of an earlier conflicting access (or `floor`, or `extra`)."""
        got = last.at[jnp.concatenate([ids, ids + self.size])].get(mode="fill", fill_value=0)
        dep = jnp.max(jnp.where(jnp.concatenate([reads | writes, writes]), got, 0), initial=0)
        level = jnp.where(active, jnp.maximum(jnp.maximum(dep, extra), floor) + 1, 0)
        return _Access(ids, reads, writes, level.astype(jnp.int32))

    def mark(self, last: Array, a: _Access) -> Array:
        off = 2 * self.size
        at = jnp.concatenate([jnp.where(a.writes, a.ids, off),
                              jnp.where(a.reads, a.ids + self.size, off)])
        return last.at[jnp.where(a.level > 0, at, off)].max(a.level, mode="drop")


def _flags(parts: list[tuple[_Fields, int]], variant: Array | int) -> tuple[Array, Array]:
    """(reads, writes) flags of the concatenated ids of `parts` (fields, rows), per variant."""
    def pick(table: str) -> Array:
        both = np.concatenate([np.tile(getattr(f, table), (1, reps)) for f, reps in parts],
                              axis=1)
        return jnp.asarray(both[0]) if len(both) == 1 else jnp.asarray(both)[variant]
    return pick("reads"), pick("writes")


class _Kinds(NamedTuple):
    """Static field selections of each event kind's rows."""

    c_node: _Fields  # a computation (variant 0) or a reset (1)
    c_in: _Fields
    c_out: _Fields
    d_dst: _Fields  # a delivery
    d_src: _Fields
    d_chan: _Fields


def _kinds(m: AccessMasks) -> _Kinds:
    no = np.zeros_like
    return _Kinds(_fields((m.node_r, m.node_w), (no(m.node_r), m.reset_node_w)),
                  _fields((m.in_r, m.in_w), (no(m.in_r), m.reset_in_w)),
                  _fields((m.out_r, m.out_w), (no(m.out_r), m.reset_out_w)),
                  _fields((m.dst_r, m.dst_w)), _fields((m.src_r, m.src_w)),
                  _fields((m.chan_r, m.chan_w)))


@functools.partial(jax.jit, static_argnames=("nodes", "channels", "slots", "supersedes",
                                             "masks"))
def _levels(sched: Schedule, steps: Steps, in_ch: Array, out_ch: Array, src: Array, dst: Array,
            *, masks: tuple[tuple[bool, ...], ...], nodes: int, channels: int, slots: int,
            supersedes: bool) -> tuple[Array, Array]:
    m = AccessMasks(*(np.asarray(a, bool) for a in masks))
    sp = _Space(nodes, channels, len(m.node_r), len(m.chan_r))
    k = _kinds(m)
    kin, kout = in_ch.shape[1], out_ch.shape[1]
    d_reads, d_writes = _flags([(k.d_dst, 1), (k.d_src, 1), (k.d_chan, 1)], 0)

    def delivery(e: Array, c: tuple) -> tuple:
        last, slot_info, top, d_out, floor = c
        ch = steps.d_channel[e]
        active = steps.d_active[e] & (steps.d_fresh[e] if supersedes else True)
        at = jnp.concatenate([sp.ids(dst[ch], k.d_dst, False), sp.ids(src[ch], k.d_src, False),
                              sp.ids(ch, k.d_chan, True)])
        info = slot_info[steps.d_slot[e]]  # (its packet's computation's level, the packet)
        acc = sp.access(last, at, d_reads, d_writes, active, floor, info[0])
        out = jnp.stack([acc.level, jnp.where(active, info[1], -1)])
        return (sp.mark(last, acc), slot_info, jnp.maximum(top, acc.level),
                jax.lax.dynamic_update_index_in_dim(d_out, out, e, 0), floor)

    def compute(q: Array, c: tuple) -> tuple:
        last, slot_info, top, d_out, c_level, floor = c
        i, reset = steps.c_node[q], steps.c_reset[q]
        at = jnp.concatenate([sp.ids(i, k.c_node, False), sp.ids(in_ch[i], k.c_in, True),
                              sp.ids(out_ch[i], k.c_out, True)])
        reads, writes = _flags([(k.c_node, 1), (k.c_in, kin), (k.c_out, kout)],
                               reset.astype(int))
        acc = sp.access(last, at, reads, writes, steps.c_active[q], floor, jnp.int32(0))
        packets = (q * kout + jnp.arange(kout)).astype(jnp.int32)
        slot = steps.c_out_slots[q]
        where = jnp.where((slot >= 0) & (acc.level > 0), slot, slots)
        info = jnp.stack([jnp.broadcast_to(acc.level, packets.shape), packets], axis=1)
        return (sp.mark(last, acc), slot_info.at[where].set(info, mode="drop"),
                jnp.maximum(top, acc.level), d_out, c_level.at[q].set(acc.level), floor)

    def deliveries(lo: Array, hi: Array, c: tuple) -> tuple:
        *head, c_level, floor = c
        return (*jax.lax.fori_loop(lo, hi, delivery, (*head, floor))[:4], c_level, floor)

    def segment(c: tuple, seg: Array) -> tuple[tuple, None]:
        c = (*c, c[2])  # a metric sample closes a level: the floor is the top so far

        def group(q: Array, c: tuple) -> tuple:
            return compute(q, deliveries(sched.d_lo[q], sched.d_hi[q], c))

        c = jax.lax.fori_loop(sched.q_lo[seg], sched.q_hi[seg], group, c)
        return deliveries(sched.t_lo[seg], sched.t_hi[seg], c)[:5], None

    nq, nd = steps.c_node.shape[0], steps.d_channel.shape[0]
    c0 = (jnp.zeros(2 * sp.size, jnp.int32), jnp.zeros((slots, 2), jnp.int32).at[:, 1].set(-1),
          jnp.int32(0), jnp.zeros((nd, 2), jnp.int32), jnp.zeros(nq, jnp.int32))
    out, _ = jax.lax.scan(segment, c0, jnp.arange(sched.q_lo.shape[0]))
    return out[4], out[3]


def levels(sched: Schedule, steps: Steps, in_ch: np.ndarray, out_ch: np.ndarray,
           src: np.ndarray, dst: np.ndarray, masks: AccessMasks, slots: int,
           supersedes: bool) -> Levels:
    """The levels of one laid-out trace (`build_layout` of one trace); `supersedes`: a stale
    packet changes nothing (it gets no level: the wave replay drops it)."""
    c, d = _levels(sched, steps, in_ch, out_ch, src, dst,
                   masks=tuple(tuple(bool(x) for x in a) for a in masks), nodes=len(in_ch),
                   channels=len(src), slots=int(slots), supersedes=supersedes)
    d = np.asarray(d)
    return Levels(np.asarray(c), d[:, 0].copy(), d[:, 1].copy())
