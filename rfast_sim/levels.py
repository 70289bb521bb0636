"""Levels of a trace's math events: which events the wave replay may apply together.

Timing never depends on values, so every event's read and write set is known before the math
starts. Each math event (computation, reset, delivery) gets a level: 1 + the highest level of
any earlier event it conflicts with (one writes a field the other reads or writes); the
resources are the fields of node rows and of channel rows, as each algorithm declares them
(:class:`rfast_sim.algorithms.base.Accesses`), and packets (a delivery reads the packet its
sender's computation wrote). Events of one level are independent: applied together, in any
order, they give what the trace order gives. A metric sample closes a level.

One jitted loop over the laid-out trace (:mod:`rfast_sim.layout`), in trace order, keeping per
resource the highest level that wrote it and that read it: O(events x degree). Each event's
updates land at the start of the next loop step (as the replay defers its writes: reading and
writing a resource array in one step makes XLA copy it).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.algorithms import Algorithm
from rfast_sim.layout import Schedule, Steps

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


def _ids(base: Array, rows: Array, nfields: int) -> Array:
    """Resource ids of every field of the given rows ([..., nfields]; rows < 0 give -1)."""
    rows = jnp.asarray(rows, jnp.int32)
    ids = base + rows[..., None] * nfields + jnp.arange(nfields, dtype=jnp.int32)
    return jnp.where(rows[..., None] >= 0, ids, -1).astype(jnp.int32)


def _dep(last_w: Array, last_r: Array, ids: Array, reads: Array, writes: Array) -> Array:
    """The highest level among earlier events this access conflicts with."""
    ok = ids >= 0
    at = jnp.maximum(ids, 0)
    w = jnp.where(ok & (reads | writes), last_w[at], 0)
    r = jnp.where(ok & writes, last_r[at], 0)
    return jnp.maximum(jnp.max(w, initial=0), jnp.max(r, initial=0))


def _mark(last: Array, ids: Array, on: Array, level: Array) -> Array:
    size = last.shape[0]
    where = jnp.where((ids >= 0) & on & (level > 0), ids, size)
    return last.at[where.reshape(-1)].max(jnp.broadcast_to(level, where.shape).reshape(-1),
                                          mode="drop")


class _Access(NamedTuple):
    ids: Array
    reads: Array
    writes: Array
    level: Array


class _Carry(NamedTuple):
    last_w: Array
    last_r: Array
    slot_level: Array  # the level of the computation whose packet each slot holds
    slot_packet: Array  # and which packet (q * Kout + k)
    top: Array  # the highest level so far
    c_level: Array
    d_level: Array
    d_packet: Array
    comp: _Access  # the last computation's accesses, not yet marked
    sent: tuple[Array, Array]  # and its packets: (slots, packet ids)
    recv: _Access  # the last delivery's


@functools.partial(jax.jit, static_argnames=("nodes", "channels", "slots", "supersedes"))
def _levels(sched: Schedule, steps: Steps, in_ch: Array, out_ch: Array, src: Array, dst: Array,
            m: AccessMasks, *, nodes: int, channels: int, slots: int,
            supersedes: bool) -> tuple[Array, Array, Array]:
    fn, fc = len(m.node_r), len(m.chan_r)
    chan_base = nodes * fn
    size = chan_base + channels * fc
    kin, kout = in_ch.shape[1], out_ch.shape[1]
    m = AccessMasks(*(jnp.asarray(a) for a in m))

    def mark(c: _Carry, p: _Access) -> _Carry:
        return c._replace(last_w=_mark(c.last_w, p.ids, p.writes, p.level),
                          last_r=_mark(c.last_r, p.ids, p.reads, p.level))

    def flush_comp(c: _Carry) -> _Carry:
        c = mark(c, c.comp)
        slot, packet = c.sent
        where = jnp.where((slot >= 0) & (c.comp.level > 0), slot, slots)
        return c._replace(slot_level=c.slot_level.at[where].set(c.comp.level, mode="drop"),
                          slot_packet=c.slot_packet.at[where].set(packet, mode="drop"),
                          comp=c.comp._replace(level=jnp.int32(0)))

    def flush_recv(c: _Carry) -> _Carry:
        return mark(c, c.recv)._replace(recv=c.recv._replace(level=jnp.int32(0)))

    def access(ids: Array, reads: Array, writes: Array, active: Array, c: _Carry,
               floor: Array, extra: Array) -> _Access:
        dep = jnp.maximum(_dep(c.last_w, c.last_r, ids, reads, writes), extra)
        level = jnp.where(active, jnp.maximum(dep, floor) + 1, 0).astype(jnp.int32)
        return _Access(ids, reads, writes, level)

    d_reads = jnp.concatenate([m.dst_r, m.src_r, m.chan_r])
    d_writes = jnp.concatenate([m.dst_w, m.src_w, m.chan_w])

    def delivery(e: Array, cf: tuple[_Carry, Array]) -> tuple[_Carry, Array]:
        c, floor = cf
        c = flush_recv(c)
        ch = steps.d_channel[e]
        active = steps.d_active[e] & (steps.d_fresh[e] if supersedes else True)
        ids = jnp.concatenate([_ids(0, jnp.stack([dst[ch], src[ch]]), fn).reshape(-1),
                               _ids(chan_base, ch, fc)])
        slot = steps.d_slot[e]
        acc = access(ids, d_reads, d_writes, active, c, floor, c.slot_level[slot])
        packet = jnp.where(active, c.slot_packet[slot], -1)
        return c._replace(recv=acc, top=jnp.maximum(c.top, acc.level),
                          d_level=c.d_level.at[e].set(acc.level),
                          d_packet=c.d_packet.at[e].set(packet)), floor

    def masks(node: Array, ins: Array, outs: Array) -> Array:
        return jnp.concatenate([node, jnp.tile(ins, kin), jnp.tile(outs, kout)])

    c_reads = masks(m.node_r, m.in_r, m.out_r)
    c_writes = masks(m.node_w, m.in_w, m.out_w)
    reset_writes = masks(m.reset_node_w, m.reset_in_w, m.reset_out_w)

    def compute(q: Array, c: _Carry, floor: Array) -> _Carry:
        i, reset = steps.c_node[q], steps.c_reset[q]
        ids = jnp.concatenate([_ids(0, i, fn), _ids(chan_base, in_ch[i], fc).reshape(-1),
                               _ids(chan_base, out_ch[i], fc).reshape(-1)])
        reads = c_reads & ~reset
        writes = jnp.where(reset, reset_writes, c_writes)
        acc = access(ids, reads, writes, steps.c_active[q], c, floor, jnp.int32(0))
        packets = (q * kout + jnp.arange(kout)).astype(jnp.int32)
        return c._replace(comp=acc, sent=(steps.c_out_slots[q], packets),
                          top=jnp.maximum(c.top, acc.level),
                          c_level=c.c_level.at[q].set(acc.level))

    def deliveries(lo: Array, hi: Array, c: _Carry, floor: Array) -> _Carry:
        return flush_recv(jax.lax.fori_loop(lo, hi, delivery, (flush_comp(c), floor))[0])

    def segment(c: _Carry, k: Array) -> tuple[_Carry, None]:
        floor = c.top  # a metric sample closes a level

        def group(q: Array, c: _Carry) -> _Carry:
            return compute(q, deliveries(sched.d_lo[q], sched.d_hi[q], c, floor), floor)

        c = jax.lax.fori_loop(sched.q_lo[k], sched.q_hi[k], group, c)
        return deliveries(sched.t_lo[k], sched.t_hi[k], c, floor), None

    nq, nd = steps.c_node.shape[0], steps.d_channel.shape[0]

    def idle(width: int) -> _Access:
        return _Access(-jnp.ones(width, jnp.int32), jnp.zeros(width, bool),
                       jnp.zeros(width, bool), jnp.int32(0))

    zero = jnp.zeros(size, jnp.int32)
    c0 = _Carry(zero, zero, jnp.zeros(slots, jnp.int32), -jnp.ones(slots, jnp.int32),
                jnp.int32(0), jnp.zeros(nq, jnp.int32), jnp.zeros(nd, jnp.int32),
                -jnp.ones(nd, jnp.int32), idle(fn + (kin + kout) * fc),
                (-jnp.ones(kout, jnp.int32), jnp.zeros(kout, jnp.int32)), idle(2 * fn + fc))
    out, _ = jax.lax.scan(segment, c0, jnp.arange(sched.q_lo.shape[0]))
    return out.c_level, out.d_level, out.d_packet


def levels(sched: Schedule, steps: Steps, in_ch: np.ndarray, out_ch: np.ndarray,
           src: np.ndarray, dst: np.ndarray, masks: AccessMasks, slots: int,
           supersedes: bool) -> Levels:
    """The levels of one laid-out trace (`build_layout` of one trace); `supersedes`: a stale
    packet changes nothing (it gets no level: the wave replay drops it)."""
    c, d, p = _levels(sched, steps, in_ch, out_ch, src, dst, masks, nodes=len(in_ch),
                      channels=len(src), slots=int(slots), supersedes=supersedes)
    return Levels(np.asarray(c), np.asarray(d), np.asarray(p))
