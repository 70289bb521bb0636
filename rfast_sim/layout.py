"""The replay layout: a recorded trace's math events laid into one fixed loop structure.

Pure numpy. Within each metric segment (between two samples) a run's events form *groups*
(the deliveries before a computation, then the computation) and a *tail* of deliveries. Each
group position gets the largest delivery count any run of a batch has there; runs fill their
events in and leave the rest inactive, so every loop bound is shared and ``vmap`` over runs never
needs a batched loop condition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rfast_sim import engine

# host arrays; the replay's jitted loop receives the same NamedTuples as traced arrays
Array = np.ndarray


class Steps(NamedTuple):
    """Per-run event arrays in the shared layout (inactive entries are padding)."""

    c_node: Array  # [Q] compute (or round) slots
    c_index: Array
    c_out_slots: Array  # [Q, Kout]
    c_active: Array
    c_reset: Array  # a node reset (rejoin: reset), not a computation
    c_phase: Array  # the phase of time-varying graphs it uses
    d_channel: Array  # [Dn] delivery slots
    d_slot: Array
    d_seq: Array
    d_active: Array
    d_fresh: Array  # newer than every packet delivered before it on its channel


class Schedule(NamedTuple):
    """Loop bounds shared by a batch: segment k runs groups q_lo[k]..q_hi[k] (each: deliveries
    d_lo[q]..d_hi[q], then compute q), then tail deliveries t_lo[k]..t_hi[k], then measures."""

    q_lo: Array  # [K]
    q_hi: Array
    d_lo: Array  # [Q]
    d_hi: Array
    t_lo: Array  # [K]
    t_hi: Array


def bucket(size: int) -> int:
    """Round a length up (to within 1/8) so nearby trace lengths share one compiled shape."""
    if size <= 64:
        return 64
    step = 2 ** (size.bit_length() - 1) // 8
    return -(-size // step) * step


def _is_compute_kind(per_round: bool, kind: np.ndarray) -> np.ndarray:
    """Events that take a compute slot: rounds, or node computations and resets (a round
    updates the replicated model: a reset of one member has nothing to clear)."""
    if per_round:
        return kind == engine.ROUND
    return (kind == engine.COMPUTE) | (kind == engine.RESET)


class _Groups(NamedTuple):
    """One trace's math events: their positions, segments, kinds and group numbers."""

    math: np.ndarray  # trace index of each math event
    seg: np.ndarray  # its metric segment
    c: np.ndarray  # is it a computation
    g: np.ndarray  # group number within the segment
    n_groups: np.ndarray  # [num_seg] computations per segment
    tail: np.ndarray  # a delivery after the segment's last computation


def _groups(tr: engine.EventTrace, per_round: bool, num_seg: int) -> _Groups:
    is_c = _is_compute_kind(per_round, tr.kind)
    is_d = (tr.kind == engine.DELIVER) if not per_round else np.zeros_like(is_c)
    math = np.flatnonzero(is_c | is_d)
    sample_pos = np.flatnonzero(tr.kind == engine.SAMPLE)
    seg = np.searchsorted(sample_pos, math)
    keep = seg < len(sample_pos)
    math, seg = math[keep], seg[keep]
    c = is_c[math]
    # group index within segment = computations before this event in its segment
    cum = np.cumsum(c) - c
    seg_first = np.searchsorted(seg, np.arange(num_seg))
    seg_c0 = np.concatenate([cum, [cum[-1] + c[-1] if len(c) else 0]])[seg_first]
    g = cum - seg_c0[seg]
    n_groups = np.bincount(seg[c], minlength=num_seg)
    tail = ~c & (g == n_groups[seg])
    return _Groups(math, seg, c, g, n_groups, tail)


class _Bounds(NamedTuple):
    goff: np.ndarray  # [num_seg + 1] first group of each segment
    d_lo: np.ndarray  # [Q] deliveries of group q: d_lo[q]..d_hi[q]
    d_hi: np.ndarray
    t_lo: np.ndarray  # [num_seg] tail deliveries of each segment
    t_hi: np.ndarray
    total_d: int


def _shared_bounds(runs: list[_Groups], num_seg: int) -> _Bounds:
    groups = np.max([r.n_groups for r in runs], axis=0)  # [num_seg]
    goff = np.concatenate([[0], np.cumsum(groups)])
    nq = int(goff[-1])
    nd = np.zeros(nq, dtype=np.int64)
    nt = np.zeros(num_seg, dtype=np.int64)
    for r in runs:
        grp = ~r.c & ~r.tail
        nd = np.maximum(nd, np.bincount(goff[r.seg[grp]] + r.g[grp], minlength=nq))
        nt = np.maximum(nt, np.bincount(r.seg[r.tail], minlength=num_seg))
    # delivery positions: segment by segment, its groups' deliveries then its tail
    seg_of_q = np.repeat(np.arange(num_seg), groups)
    seg_total = np.bincount(seg_of_q, weights=nd, minlength=num_seg).astype(np.int64) + nt
    seg_base = np.concatenate([[0], np.cumsum(seg_total)])
    nd_cum = np.concatenate([[0], np.cumsum(nd)])
    d_lo = seg_base[seg_of_q] + nd_cum[:-1] - nd_cum[goff[seg_of_q]]
    t_lo = seg_base[:-1] + (nd_cum[goff[1:]] - nd_cum[goff[:-1]])
    return _Bounds(goff, d_lo, d_lo + nd, t_lo, t_lo + nt, int(seg_base[-1]))


def _fill(tr: engine.EventTrace, r: _Groups, b: _Bounds, nq_alloc: int,
          total_d: int) -> Steps:
    """One run's events at their places in the shared layout."""
    nq = int(b.goff[-1])
    st = {
        "c_node": np.zeros(nq_alloc, np.int32), "c_index": np.zeros(nq_alloc, np.int32),
        "c_out_slots": -np.ones((nq_alloc, tr.out_slots.shape[1]), np.int32),
        "c_active": np.zeros(nq_alloc, bool), "c_reset": np.zeros(nq_alloc, bool),
        "c_phase": np.zeros(nq_alloc, np.int32),
        "d_channel": np.zeros(total_d, np.int32), "d_slot": np.zeros(total_d, np.int32),
        "d_seq": np.zeros(total_d, np.int32), "d_active": np.zeros(total_d, bool),
        "d_fresh": np.zeros(total_d, bool),
    }
    ce = r.math[r.c]
    q = b.goff[r.seg[r.c]] + r.g[r.c]
    st["c_node"][q] = np.maximum(tr.node[ce], 0)
    st["c_index"][q] = ce
    st["c_out_slots"][q] = tr.out_slots[ce]
    st["c_active"][q] = True
    st["c_reset"][q] = tr.kind[ce] == engine.RESET
    st["c_phase"][q] = tr.phase[ce]
    d = ~r.c
    de = r.math[d]
    # rank of each delivery within its group: equal keys are contiguous in trace order
    key = np.where(r.tail[d], nq + r.seg[d], b.goff[r.seg[d]] + r.g[d])
    is_start = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else key.astype(bool)
    rank = np.arange(len(key)) - np.flatnonzero(is_start)[np.cumsum(is_start) - 1]
    start = np.where(r.tail[d], b.t_lo[r.seg[d]], b.d_lo[np.minimum(key, max(nq - 1, 0))]
                     if nq else 0)
    pos = start + rank
    st["d_channel"][pos] = tr.channel[de]
    st["d_slot"][pos] = tr.slot[de]
    st["d_seq"][pos] = tr.seq[de]
    st["d_active"][pos] = True
    st["d_fresh"][pos] = _fresh(tr.channel[de], tr.seq[de])
    return Steps(**st)


def _fresh(channel: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Is each delivery (in trace order) newer than all before it on its channel?"""
    if not len(channel):
        return np.zeros(0, bool)
    order = np.lexsort((np.arange(len(channel)), channel))
    key = channel[order].astype(np.int64) * 2**32 + seq[order]  # channels never mix
    before = np.concatenate([[np.iinfo(np.int64).min], np.maximum.accumulate(key)[:-1]])
    fresh = np.empty(len(channel), bool)
    fresh[order] = key > before
    return fresh


def build_layout(traces: list[engine.EventTrace],
                 per_round: bool) -> tuple[Schedule, list[Steps]]:
    """Lay the math events of several traces into one fixed loop structure (`per_round`: an
    algorithm that updates once per global round, whose traces' math events are rounds)."""
    num_seg = max(len(tr.sample_time) for tr in traces)
    runs = [_groups(tr, per_round, num_seg) for tr in traces]
    b = _shared_bounds(runs, num_seg)
    nq = int(b.goff[-1])
    total_d, nq_alloc = bucket(b.total_d), bucket(nq)
    pad_q = nq_alloc - nq
    sched = Schedule(*(np.asarray(a, dtype=np.int32) for a in (
        b.goff[:-1], b.goff[1:], np.pad(b.d_lo, (0, pad_q)), np.pad(b.d_hi, (0, pad_q)),
        b.t_lo, b.t_hi)))
    return sched, [_fill(tr, r, b, nq_alloc, total_d) for tr, r in zip(traces, runs, strict=True)]
