"""The replay layout: a recorded trace's math events laid into one fixed loop structure.

Pure numpy. Within each metric segment (between two samples) a run's events form *groups*
(the deliveries before a computation, then the computation) and a *tail* of deliveries. Each
group position gets the largest delivery count any run of a batch has there; runs fill their
events in and leave the rest inactive, so every loop bound is shared and ``vmap`` over runs never
needs a batched loop condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rfast_sim.maths.shapes import bucket, event_bucket, segment_bucket
from rfast_sim.timing import engine
from rfast_sim.timing.engine.vector import assign_slots

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
        "c_out_slots": -np.ones((nq_alloc, tr.sent_slots.shape[1]), np.int32),
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
    rank = tr.compute_rank(ce)
    sent = rank >= 0  # resets send nothing
    st["c_out_slots"][q[sent]] = tr.sent_slots[rank[sent]]
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
    num_seg = segment_bucket(max(len(tr.sample_time) for tr in traces))
    runs = [_groups(tr, per_round, num_seg) for tr in traces]
    b = _shared_bounds(runs, num_seg)
    nq = int(b.goff[-1])
    total_d, nq_alloc = event_bucket(b.total_d), event_bucket(nq)
    pad_q = nq_alloc - nq
    sched = Schedule(*(np.asarray(a, dtype=np.int32) for a in (
        b.goff[:-1], b.goff[1:], np.pad(b.d_lo, (0, pad_q)), np.pad(b.d_hi, (0, pad_q)),
        b.t_lo, b.t_hi)))
    return sched, [_fill(tr, r, b, nq_alloc, total_d) for tr, r in zip(traces, runs, strict=True)]


def layout_size(sched: Schedule, steps: Steps) -> tuple[int, int]:
    """(compute slots, delivery slots) of a layout: with the segment count, its shape."""
    return len(sched.d_lo), len(steps.d_channel)


def pad_layout(sched: Schedule, steps: Steps, size: tuple[int, int]) -> tuple[Schedule, Steps]:
    """Pad one run's layout to `size` (compute, delivery slots) so runs of other lengths share
    its compiled shape. No loop bound reaches the padding: it costs memory, never time."""
    pad_q, pad_d = size[0] - len(sched.d_lo), size[1] - len(steps.d_channel)
    if pad_q < 0 or pad_d < 0:
        raise ValueError(f"pad_layout: {size} is smaller than the layout")

    def pad(a: np.ndarray, by: int) -> np.ndarray:
        fill = -1 if a is steps.c_out_slots else 0
        return np.pad(a, [(0, by)] + [(0, 0)] * (a.ndim - 1), constant_values=fill)

    sched = sched._replace(d_lo=pad(sched.d_lo, pad_q), d_hi=pad(sched.d_hi, pad_q))
    padded = {name: pad(a, pad_d if name.startswith("d_") else pad_q)
              for name, a in steps._asdict().items()}
    return sched, Steps(**padded)


class WaveSteps(NamedTuple):
    """Per-run events of the wave replay, step by step: each loop step applies up to Wc
    computations and Wd deliveries, all of one level (inactive entries are padding)."""

    c_node: Array  # [S, Wc]
    c_index: Array
    c_out_slots: Array  # [S, Wc, Kout] slots re-allocated over steps (-1: not kept)
    c_active: Array
    c_reset: Array
    c_phase: Array
    d_channel: Array  # [S, Wd]
    d_slot: Array
    d_fresh: Array
    d_active: Array


class WaveSchedule(NamedTuple):
    """Segment k runs steps s_lo[k]..s_hi[k], then measures."""

    s_lo: Array  # [K]
    s_hi: Array


class WaveStats(NamedTuple):
    levels: int  # levels of the run (the largest over runs of a batch)
    steps: int  # loop steps (a level wider than the wave takes several)
    comp_width: int  # Wc, Wd: the most computations and deliveries of one step
    recv_width: int
    events: int  # math events applied (stale packets are left out)
    slots: int  # the packet store's size after re-allocation

    @property
    def mean_width(self) -> float:
        """Math events per level: the parallelism a wide device gets."""
        return self.events / max(self.levels, 1)


def widths_up_to(limit: int) -> np.ndarray:
    """Candidate wave widths: 1..8, then 8 steps per power of two (within 1/8: few shapes)."""
    out = list(range(1, 9))
    p = 8
    while out[-1] < limit:
        out += [p + k * p // 8 for k in range(1, 9)]
        p *= 2
    return np.array([w for w in out if w <= limit] or [1])


def choose_widths(nc: np.ndarray, nd: np.ndarray, max_comp: int, max_recv: int,
                  step_cost: float, recv_cost: float) -> tuple[int, int]:
    """(Wc, Wd) of least modelled cost for levels of nc computations and nd deliveries: a
    level takes max(ceil(nc / Wc), ceil(nd / Wd)) steps, a step costs `step_cost` + Wc +
    `recv_cost` * Wd (in units of one computation's work; padding costs as much as an
    event)."""
    if not len(nc):
        return 1, 1
    cands_c = widths_up_to(max(1, min(max_comp, int(nc.max()))))
    cands_d = widths_up_to(max(1, min(max_recv, int(nd.max()))))
    steps_c = -(-nc[None, :] // cands_c[:, None])  # [Cc, levels]
    best = (np.inf, 1, 1)
    for wd in cands_d:
        steps = np.maximum(steps_c, -(-nd // wd)[None, :]).sum(axis=1)
        cost = steps * (step_cost + cands_c + recv_cost * wd)
        k = int(np.argmin(cost))
        if cost[k] < best[0]:
            best = (float(cost[k]), int(cands_c[k]), int(wd))
    return best[1], best[2]


class _Placed(NamedTuple):
    c_q: np.ndarray  # the layout's computations of this run, ordered by level
    c_step: np.ndarray  # their step within their segment and column in it
    c_col: np.ndarray
    d_pos: np.ndarray  # the same for deliveries
    d_step: np.ndarray
    d_col: np.ndarray
    seg_steps: np.ndarray  # [K] steps per segment
    levels: int


def _segment_of(sched: Schedule, c_q: np.ndarray, d_pos: np.ndarray,
                num_seg: int) -> tuple[np.ndarray, np.ndarray]:
    c_seg = np.searchsorted(sched.q_hi[:num_seg], c_q, side="right")
    # a segment's deliveries lie between its first group's start and its tail's end
    d_seg = np.searchsorted(sched.t_hi[:num_seg], d_pos, side="right")
    return c_seg, d_seg


def _place(sched: Schedule, c_level: np.ndarray, d_level: np.ndarray, wc: int,
           wd: int) -> _Placed:
    """Each event's step (within its segment) and column: level by level, a level of nc
    computations and nd deliveries taking max(ceil(nc / wc), ceil(nd / wd)) steps."""
    num_seg = len(sched.q_lo)
    c_q = np.flatnonzero(c_level > 0)
    d_pos = np.flatnonzero(d_level > 0)
    top = int(max(c_level.max(initial=0), d_level.max(initial=0)))
    c_lv, d_lv = c_level[c_q], d_level[d_pos]
    nc = np.bincount(c_lv, minlength=top + 1)
    nd = np.bincount(d_lv, minlength=top + 1)
    per_level = np.maximum(-(-nc // wc), -(-nd // wd))  # level 0: nothing
    c_seg, d_seg = _segment_of(sched, c_q, d_pos, num_seg)
    seg_of_level = np.zeros(top + 1, np.int64)
    seg_of_level[c_lv] = c_seg
    seg_of_level[d_lv] = d_seg
    seg_steps = np.bincount(seg_of_level, weights=per_level, minlength=num_seg).astype(np.int64)
    seg_first = np.concatenate([[0], np.cumsum(seg_steps)[:-1]])
    level_first = np.concatenate([[0], np.cumsum(per_level)[:-1]]) - seg_first[seg_of_level]

    def spread(lv: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(lv, kind="stable")
        sorted_lv = lv[order]
        rank = np.arange(len(lv)) - np.searchsorted(sorted_lv, sorted_lv, side="left")
        step = np.empty(len(lv), np.int64)
        col = np.empty(len(lv), np.int64)
        step[order] = level_first[sorted_lv] + rank // width
        col[order] = rank % width
        return step, col

    c_step, c_col = spread(c_lv, wc)
    d_step, d_col = spread(d_lv, wd)
    return _Placed(c_q, c_step, c_col, d_pos, d_step, d_col, seg_steps,
                   int(np.count_nonzero(per_level)))


def wave_layout(sched: Schedule, steps: list[Steps], levels: Sequence[tuple[np.ndarray, ...]],
                max_comp_width: int, max_recv_width: int, step_cost: float = 16.0,
                recv_cost: float = 0.01) -> tuple[WaveSchedule, list[WaveSteps], WaveStats]:
    """The wave replay's steps for runs laid out by `build_layout` (shared `sched`), from
    each run's (c_level, d_level, d_packet) (:mod:`rfast_sim.maths.levels`). A wave holds up to
    Wc computations and Wd deliveries (`choose_widths`, capped by the given widths; costs
    as there); runs of a batch share the steps of each segment (the
    most any run needs). Packet slots are re-allocated over steps: a packet holds its slot
    from the step after its computation (writes land one step late) to the step that
    delivers it, so reuse adds no dependency; packets nobody reads are not kept."""
    def sizes(c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = int(max(c.max(initial=0), d.max(initial=0)))
        nc = np.bincount(c[c > 0], minlength=top + 1)[1:]
        nd = np.bincount(d[d > 0], minlength=top + 1)[1:]
        return nc, nd

    per_run = [sizes(c, d) for c, d, _ in levels]
    wc, wd = choose_widths(np.concatenate([x for x, _ in per_run]),
                           np.concatenate([y for _, y in per_run]), max_comp_width,
                           max_recv_width, step_cost, recv_cost)
    placed = [_place(sched, c, d, wc, wd) for c, d, _ in levels]
    seg_steps = np.max([p.seg_steps for p in placed], axis=0)
    seg_first = np.concatenate([[0], np.cumsum(seg_steps)])
    total = int(seg_first[-1])
    nsteps = bucket(max(total, 1))
    out, slots = [], 1
    for st, (_, _, d_packet), p in zip(steps, levels, placed, strict=True):
        kout = st.c_out_slots.shape[1]
        c_seg, d_seg = _segment_of(sched, p.c_q, p.d_pos, len(sched.q_lo))
        cs = seg_first[c_seg] + p.c_step
        ds = seg_first[d_seg] + p.d_step
        # packets read: sent at the step of their computation, read at their delivery's
        packet = d_packet[p.d_pos]
        q_of, k_of = packet // kout, packet % kout
        step_of_q = np.zeros(len(st.c_node), np.int64)
        step_of_q[p.c_q] = cs
        new_slot, count = assign_slots((step_of_q[q_of] + 1).astype(np.float64),
                                       ds.astype(np.float64), np.inf)
        slots = max(slots, count)
        out_slots = -np.ones((len(st.c_node), kout), np.int32)
        out_slots[q_of, k_of] = new_slot
        w = {
            "c_node": np.zeros((nsteps, wc), np.int32),
            "c_index": np.zeros((nsteps, wc), np.int32),
            "c_out_slots": -np.ones((nsteps, wc, kout), np.int32),
            "c_active": np.zeros((nsteps, wc), bool),
            "c_reset": np.zeros((nsteps, wc), bool),
            "c_phase": np.zeros((nsteps, wc), np.int32),
            "d_channel": np.zeros((nsteps, wd), np.int32),
            "d_slot": np.zeros((nsteps, wd), np.int32),
            "d_fresh": np.zeros((nsteps, wd), bool),
            "d_active": np.zeros((nsteps, wd), bool),
        }
        at_c = (cs, p.c_col)
        for name in ("c_node", "c_index", "c_reset", "c_phase"):
            w[name][at_c] = getattr(st, name)[p.c_q]
        w["c_out_slots"][at_c] = out_slots[p.c_q]
        w["c_active"][at_c] = True
        at_d = (ds, p.d_col)
        w["d_channel"][at_d] = st.d_channel[p.d_pos]
        w["d_fresh"][at_d] = st.d_fresh[p.d_pos]
        w["d_slot"][at_d] = new_slot
        w["d_active"][at_d] = True
        out.append(WaveSteps(**w))
    stats = WaveStats(max(p.levels for p in placed), total, wc, wd, max(  # store: fine steps
        len(p.c_q) + len(p.d_pos) for p in placed), bucket(slots, coarse_below=0))
    ws = WaveSchedule(seg_first[:-1].astype(np.int32), seg_first[1:].astype(np.int32))
    return ws, out, stats
