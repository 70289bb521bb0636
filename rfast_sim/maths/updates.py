"""One event applied to the network state: gather the rows it touches, call the algorithm,
write back only the fields it returns. Shared by the online and the replay runner."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rfast_sim.maths.algorithms import Algorithm, Env, NetState
from rfast_sim.maths.algorithms.base import Compute, Receive, at_phase
from rfast_sim.maths.problems import ProblemOps

Array = jax.Array

def run_keys(seed: int) -> tuple[Array, Array]:
    """(init key, event key) of a run's seed; event k (its index in the trace) draws with
    `event_key(event key, k)`. Online and replay derive them here, so both draw alike."""
    init_key, ev_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, ev_key


def event_key(ev_key: Array, index: Array) -> Array:
    return jax.random.fold_in(ev_key, index)


def _gather(arrays: Any, idx: Array) -> Any:
    return type(arrays)(*(a[jnp.maximum(idx, 0)] for a in arrays))


def _expand(flag: Array, idx: Array) -> Array:
    """A per-event flag ([] or [W]) broadcast over the rows of each event ([..., K])."""
    flag = jnp.asarray(flag)
    return jnp.broadcast_to(flag.reshape(flag.shape + (1,) * (idx.ndim - flag.ndim)), idx.shape)


def _scatter(arrays: Any, idx: Array, writes: Any, active: Array, mask: Any = None) -> Any:
    """Write the fields of `writes` (rows for `idx`, any leading shape: one event's [K] or a
    batch's [W, K]) into `arrays` where `active` (and, per field, where `mask`: a NamedTuple of
    flags like `writes`). Two active rows never share an index (a batch holds independent
    events), so the scatter's order does not matter."""
    if not writes._fields:
        return arrays
    size = getattr(arrays, writes._fields[0]).shape[0]
    idx = jnp.asarray(idx)

    def put(a: Array, value: Array, on: Array) -> Array:
        where = jnp.where(_expand(active & on, idx) & (idx >= 0), idx, size)  # out of bounds:
        return a.at[where.reshape(-1)].set(                                  # not written
            value.astype(a.dtype).reshape(-1, *a.shape[1:]), mode="drop")

    on = mask if mask is not None else (jnp.bool_(True),) * len(writes)
    return arrays._replace(**{name: put(getattr(arrays, name), value, m)
                              for name, value, m in zip(writes._fields, writes, on, strict=True)})


def _set_row(arrays: Any, i: Array, writes: Any, active: Array, mask: Any = None) -> Any:
    """Write the fields of `writes` into row i of `arrays` where `active` (and `mask`)."""
    def put(a: Array, r: Array, on: Array) -> Array:
        return jax.lax.dynamic_update_index_in_dim(
            a, jnp.where(active & on, r.astype(a.dtype), a[i]), i, 0)

    on = mask if mask is not None else (jnp.bool_(True),) * len(writes)
    return arrays._replace(**{name: put(getattr(arrays, name), value, m)
                              for name, value, m in zip(writes._fields, writes, on, strict=True)})


class Pending(NamedTuple):
    """The state writes of one computation (the replay defers them: see replay.py), or of a
    batch of them (leading axis W). `mask`, where set, says per field whether it is written:
    a computation and a reset then share one structure, whole rows, and each writes only its
    own fields (None: every field of `writes` is written)."""

    node: Array
    active: Array
    writes: Compute
    mask: Compute | None = None


def compute_rows(alg: Algorithm, env: Env, state: NetState, i: Array, key: Array,
                 active: Array, phase: Array | int = 0) -> Pending:
    """Node i finished a computation (with the weights of `phase`): read its rows and compute,
    but write nothing."""
    assert alg.on_compute is not None
    env = env._replace(net=at_phase(env.net, jnp.asarray(phase)))
    node = jax.tree_util.tree_map(lambda a: a[i], state.nodes)
    out = alg.on_compute(env, i, key, node, _gather(state.chans, env.net.in_ch[i]),
                         _gather(state.chans, env.net.out_ch[i]))
    return Pending(i, active, out)


def reset_rows(alg: Algorithm, env: Env, state: NetState, state0: NetState, i: Array,
               active: Array, dtype: Any) -> Pending:
    """Node i restarts (``rejoin: reset``) from its row of the initial state `state0` (model
    x0, tracker its first gradient): its node row, the receiver's fields of its in-channels
    (receive buffers, absorbed sums) and the sender's fields of its out-channels (outgoing
    running sums) go back to their initial values; what its neighbours hold stays, and only
    what is cleared is written (`mask`). Written as a computation that sends nothing."""
    mine = set(alg.sender_fields)
    chans = state0.chans
    on = jnp.bool_(True)
    off = jnp.bool_(False)
    node = jax.tree_util.tree_map(lambda a: a[i], state0.nodes)
    kout = env.net.out_ch.shape[1]
    writes = Compute(node, _gather(chans, env.net.in_ch[i]), _gather(chans, env.net.out_ch[i]),
                     jnp.zeros((kout, alg.payload_width), dtype))
    mask = Compute(type(node)(*(on for _ in node)),
                   type(chans)(*(off if f in mine else on for f in chans._fields)),
                   type(chans)(*(on if f in mine else off for f in chans._fields)), on)
    return Pending(i, active, writes, mask)


def full_rows(env: Env, state: NetState, p: Pending) -> Pending:
    """A computation's writes in the structure of whole rows (every field of the node and
    channel rows), the fields it does not write zero and masked off: a computation and a
    reset then share one structure, and each writes only its own fields."""
    def widen(have: Any, arrays: Any, lead: tuple[int, ...]) -> tuple[Any, Any]:
        vals = [getattr(have, f) if f in have._fields
                else jnp.zeros(lead + getattr(arrays, f).shape[1:], getattr(arrays, f).dtype)
                for f in arrays._fields]
        mask = [jnp.bool_(f in have._fields) for f in arrays._fields]
        return type(arrays)(*vals), type(arrays)(*mask)

    w = p.writes
    kin, kout = env.net.in_ch.shape[1], env.net.out_ch.shape[1]
    node, m_node = widen(w.node, state.nodes, ())
    ins, m_ins = widen(w.ins, state.chans, (kin,))
    outs, m_outs = widen(w.outs, state.chans, (kout,))
    return Pending(p.node, p.active, Compute(node, ins, outs, w.payloads),
                   Compute(m_node, m_ins, m_outs, jnp.bool_(True)))


def write_rows(env: Env, state: NetState, p: Pending) -> NetState:
    """Apply a computation's writes (no effect unless `p.active`)."""
    w, m = p.writes, p.mask
    nodes = _set_row(state.nodes, p.node, w.node, p.active, m.node if m else None)
    chans = _scatter(state.chans, env.net.in_ch[p.node], w.ins, p.active, m.ins if m else None)
    chans = _scatter(chans, env.net.out_ch[p.node], w.outs, p.active, m.outs if m else None)
    return NetState(nodes, chans)


def write_batch(env: Env, state: NetState, p: Pending) -> NetState:
    """Apply a batch of independent computations' writes (`p` with a leading axis W)."""
    w, m = p.writes, p.mask
    nodes = _scatter(state.nodes, p.node, w.node, p.active, m.node if m else None)
    chans = _scatter(state.chans, env.net.in_ch[p.node], w.ins, p.active, m.ins if m else None)
    chans = _scatter(chans, env.net.out_ch[p.node], w.outs, p.active, m.outs if m else None)
    return NetState(nodes, chans)


def apply_compute(alg: Algorithm, env: Env, state: NetState, i: Array, key: Array,
                  active: Array, phase: Array | int = 0) -> tuple[NetState, Array]:
    """Node i finished a computation (no effect unless `active`): returns state and payloads."""
    p = compute_rows(alg, env, state, i, key, active, phase)
    return write_rows(env, state, p), p.writes.payloads


class PendingReceive(NamedTuple):
    """The writes of one delivery on `channel` (or of a batch: leading axis W)."""

    channel: Array
    active: Array
    writes: Receive


def receive_rows(alg: Algorithm, env: Env, state: NetState, c: Array, payload: Array,
                 fresh: Array, active: Array) -> PendingReceive:
    """A packet arrived on channel c: read the rows it touches and compute, write nothing."""
    assert alg.on_receive is not None
    if alg.supersedes:  # a stale packet is a no-op: skipping it lets the write read the packet
        active, fresh = active & fresh, jnp.bool_(True)  # directly (no select with the old row)
    a, b = env.net.src[c], env.net.dst[c]

    def row(arrays: Any, k: Array) -> Any:
        return type(arrays)(*(x[k] for x in arrays))

    w = alg.on_receive(env, c, payload, fresh, row(state.nodes, b), row(state.nodes, a),
                       row(state.chans, c))
    return PendingReceive(c, active, w)


def apply_receive(alg: Algorithm, env: Env, state: NetState, c: Array, payload: Array,
                  fresh: Array, active: Array) -> NetState:
    """A packet arrived on channel c (no effect unless `active`)."""
    p = receive_rows(alg, env, state, c, payload, fresh, active)
    a, b = env.net.src[c], env.net.dst[c]
    nodes = _set_row(state.nodes, b, p.writes.dst, p.active)
    nodes = _set_row(nodes, a, p.writes.src, p.active)
    return NetState(nodes, _set_row(state.chans, c, p.writes.chan, p.active))


def write_receives(env: Env, state: NetState, p: PendingReceive) -> NetState:
    """Apply a batch of independent deliveries' writes (`p` with a leading axis W)."""
    c = jnp.maximum(p.channel, 0)
    nodes = _scatter(state.nodes, env.net.dst[c], p.writes.dst, p.active)
    nodes = _scatter(nodes, env.net.src[c], p.writes.src, p.active)
    return NetState(nodes, _scatter(state.chans, p.channel, p.writes.chan, p.active))


def apply_round(alg: Algorithm, env: Env, state: NetState, key: Array,
                active: Array) -> NetState:
    assert alg.on_round is not None
    new = alg.on_round(env, state, key)
    return jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, state)


def measure(ops: ProblemOps, alg: Algorithm, env: Env, state: NetState) -> Array:
    """The metrics of METRIC_COLUMNS at the network's average model (and every node's)."""
    x = alg.models(state)
    xbar = x.mean(0)
    data = env.data
    loss, grad = jax.value_and_grad(ops.global_loss)(xbar, data)
    return jnp.stack([
        loss,
        loss - data.f_star,
        jnp.linalg.norm(grad),
        jnp.mean(jnp.sum((x - xbar) ** 2, axis=1)),
        ops.accuracy(xbar, data),
        jnp.max(jnp.linalg.norm(x - data.x_star, axis=1)),
        ops.test_loss(xbar, data),
        ops.test_accuracy(xbar, data),
    ])
