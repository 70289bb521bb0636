"""One event applied to the network state: gather the rows it touches, call the algorithm,
write back only the fields it returns. Shared by the online and the replay runner."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rfast_sim.algorithms import Algorithm, Env, NetState
from rfast_sim.algorithms.base import Compute, at_phase
from rfast_sim.problems import ProblemOps

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


def _scatter(arrays: Any, idx: Array, writes: Any, active: Array) -> Any:
    """Write the fields of `writes` (rows for `idx`) into `arrays` where `active`."""
    if not writes._fields:
        return arrays
    size = getattr(arrays, writes._fields[0]).shape[0]
    where = jnp.where(active & (idx >= 0), idx, size)  # out of bounds = not written
    return arrays._replace(**{
        name: getattr(arrays, name).at[where].set(
            value.astype(getattr(arrays, name).dtype), mode="drop")
        for name, value in zip(writes._fields, writes, strict=True)})


def _set_row(arrays: Any, i: Array, writes: Any, active: Array) -> Any:
    """Write the fields of `writes` into row i of `arrays` where `active`."""
    def put(a: Array, r: Array) -> Array:
        return jax.lax.dynamic_update_index_in_dim(a, jnp.where(active, r.astype(a.dtype), a[i]),
                                                   i, 0)

    return arrays._replace(**{name: put(getattr(arrays, name), value)
                              for name, value in zip(writes._fields, writes, strict=True)})


class Pending(NamedTuple):
    """The state writes of one computation (the replay defers them: see replay.py)."""

    node: Array
    active: Array
    writes: Compute


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
    running sums) go back to their initial values; what its neighbours hold stays. Written as
    a computation that sends nothing."""
    def rows(st: NetState, idx: Array) -> Any:
        return _gather(st.chans, idx)

    ins_now, ins0 = rows(state, env.net.in_ch[i]), rows(state0, env.net.in_ch[i])
    outs_now, outs0 = rows(state, env.net.out_ch[i]), rows(state0, env.net.out_ch[i])
    mine = alg.sender_fields
    ins = ins0._replace(**{f: getattr(ins_now, f) for f in mine})
    outs = outs_now._replace(**{f: getattr(outs0, f) for f in mine})
    node = jax.tree_util.tree_map(lambda a: a[i], state0.nodes)
    kout = env.net.out_ch.shape[1]
    return Pending(i, active, Compute(node, ins, outs,
                                      jnp.zeros((kout, alg.payload_width), dtype)))


def full_rows(env: Env, state: NetState, p: Pending) -> Pending:
    """The same writes as whole rows (so a computation and a reset share one structure)."""
    w = p.writes
    node = jax.tree_util.tree_map(lambda a: a[p.node], state.nodes)._replace(**w.node._asdict())
    ins = _gather(state.chans, env.net.in_ch[p.node])._replace(**w.ins._asdict())
    outs = _gather(state.chans, env.net.out_ch[p.node])._replace(**w.outs._asdict())
    return p._replace(writes=Compute(node, ins, outs, w.payloads))


def write_rows(env: Env, state: NetState, p: Pending) -> NetState:
    """Apply a computation's writes (no effect unless `p.active`)."""
    w = p.writes
    nodes = _set_row(state.nodes, p.node, w.node, p.active)
    chans = _scatter(state.chans, env.net.in_ch[p.node], w.ins, p.active)
    chans = _scatter(chans, env.net.out_ch[p.node], w.outs, p.active)
    return NetState(nodes, chans)


def apply_compute(alg: Algorithm, env: Env, state: NetState, i: Array, key: Array,
                  active: Array, phase: Array | int = 0) -> tuple[NetState, Array]:
    """Node i finished a computation (no effect unless `active`): returns state and payloads."""
    p = compute_rows(alg, env, state, i, key, active, phase)
    return write_rows(env, state, p), p.writes.payloads


def apply_receive(alg: Algorithm, env: Env, state: NetState, c: Array, payload: Array,
                  fresh: Array, active: Array) -> NetState:
    """A packet arrived on channel c (no effect unless `active`)."""
    assert alg.on_receive is not None
    if alg.supersedes:  # a stale packet is a no-op: skipping it lets the write read the packet
        active, fresh = active & fresh, jnp.bool_(True)  # directly (no select with the old row)
    a, b = env.net.src[c], env.net.dst[c]

    def row(arrays: Any, k: Array) -> Any:
        return type(arrays)(*(x[k] for x in arrays))

    w = alg.on_receive(env, c, payload, fresh, row(state.nodes, b), row(state.nodes, a),
                       row(state.chans, c))
    nodes = _set_row(state.nodes, b, w.dst, active)
    nodes = _set_row(nodes, a, w.src, active)
    return NetState(nodes, _set_row(state.chans, c, w.chan, active))


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
