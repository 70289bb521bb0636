"""R-FAST and its non-robust ablation, as in ALGORITHM.md (descend, pull, absorb, track, push).

State per node i: parameters x_i, tracker z_i, last local gradient g_i. Per channel c = (j -> i):
``recv[c]`` the newest packet that arrived (v_j on G_R channels, the running sum rho_ij on G_C
channels), ``rho[c]`` the sender's running sum of all mass pushed on c, ``rho_tilde[c]`` the part
of it the receiver has already absorbed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rfast_sim.algorithms.base import Algorithm, Array, Env, masked_index, replicate
from rfast_sim.problems import ProblemOps
from rfast_sim.topology import ROLE_PULL, ROLE_PUSH


class RFastState(NamedTuple):
    x: Array  # [n, D]
    z: Array  # [n, D]
    g: Array  # [n, D]
    recv: Array  # [E, D]
    rho: Array  # [E, D] (push channels only)
    rho_tilde: Array  # [E, D] (push channels only)


def _init(ops: ProblemOps, env: Env, key: Array) -> RFastState:
    n = env.net.self_weight.shape[1]
    x = replicate(env.data.x0, n)
    keys = jax.random.split(key, n)
    g = jax.vmap(ops.local_grad, in_axes=(0, None, 0, 0))(x, env.data, jnp.arange(n), keys)
    num_ch = env.net.src.shape[0]
    # v_j starts at x_j(0) on pull channels; running sums start at 0.
    is_pull = (env.net.role == ROLE_PULL)[:, None]
    recv = jnp.where(is_pull, env.data.x0, 0.0) * jnp.ones((num_ch, 1), x.dtype)
    zeros = jnp.zeros((num_ch, x.shape[1]), x.dtype)
    return RFastState(x, g, g, recv, zeros, zeros)


def _descend_and_pull(env: Env, st: RFastState, i: Array) -> tuple[Array, Array, Array, Array]:
    net = env.net
    v = st.x[i] - env.step_size * st.z[i]
    ins = net.in_ch[i]
    valid = ins >= 0
    ci = jnp.where(valid, ins, 0)
    is_pull = valid & (net.role[ci] == ROLE_PULL)
    is_push = valid & (net.role[ci] == ROLE_PUSH)
    w = jnp.where(is_pull, net.weight[ci], 0.0)
    x_i = net.self_weight[ROLE_PULL, i] * v + w @ st.recv[ci]
    return v, x_i, ci, is_push


def _push_payloads(env: Env, i: Array, v: Array, rho_or_mass: Array) -> Array:
    """Per out-channel packet: v_i on G_R channels, `rho_or_mass[k]` on G_C channels."""
    oc = jnp.where(env.net.out_ch[i] >= 0, env.net.out_ch[i], 0)
    pull = (env.net.role[oc] == ROLE_PULL)[:, None]
    return jnp.where(pull, v, rho_or_mass)


def _rfast_compute(ops: ProblemOps, env: Env, st: RFastState, i: Array,
                   key: Array) -> tuple[RFastState, Array]:
    net = env.net
    num_ch = net.src.shape[0]
    v, x_i, ci, is_push = _descend_and_pull(env, st, i)
    # Absorb only the mass not absorbed before: running sums make lost packets harmless.
    new = jnp.where(is_push[:, None], st.recv[ci] - st.rho_tilde[ci], 0.0)
    z_i = st.z[i] + new.sum(0)
    rho_tilde = st.rho_tilde.at[masked_index(ci, is_push, num_ch)].set(st.recv[ci], mode="drop")
    g_new = ops.local_grad(x_i, env.data, i, key)
    z_i = z_i + g_new - st.g[i]
    outs = net.out_ch[i]
    oc = jnp.where(outs >= 0, outs, 0)
    push_out = (outs >= 0) & (net.role[oc] == ROLE_PUSH)
    rho = st.rho.at[masked_index(oc, push_out, num_ch)].add(
        net.weight[oc][:, None] * z_i, mode="drop")
    z_i = net.self_weight[ROLE_PUSH, i] * z_i
    state = RFastState(st.x.at[i].set(x_i), st.z.at[i].set(z_i), st.g.at[i].set(g_new),
                       st.recv, rho, rho_tilde)
    return state, _push_payloads(env, i, v, rho[oc])


def _rfast_receive(env: Env, st: RFastState, c: Array, payload: Array,
                   fresh: Array) -> RFastState:
    # Keep only the newest packet per channel (a stale one carries an older running sum).
    return st._replace(recv=st.recv.at[c].set(jnp.where(fresh, payload, st.recv[c])))


def _nonrobust_compute(ops: ProblemOps, env: Env, st: RFastState, i: Array,
                       key: Array) -> tuple[RFastState, Array]:
    net = env.net
    v, x_i, _, _ = _descend_and_pull(env, st, i)
    g_new = ops.local_grad(x_i, env.data, i, key)
    z_i = st.z[i] + g_new - st.g[i]
    oc = jnp.where(net.out_ch[i] >= 0, net.out_ch[i], 0)
    mass = net.weight[oc][:, None] * z_i  # each packet carries only its new mass
    z_i = net.self_weight[ROLE_PUSH, i] * z_i
    state = st._replace(x=st.x.at[i].set(x_i), z=st.z.at[i].set(z_i), g=st.g.at[i].set(g_new))
    return state, _push_payloads(env, i, v, mass)


def _nonrobust_receive(env: Env, st: RFastState, c: Array, payload: Array,
                       fresh: Array) -> RFastState:
    is_push = env.net.role[c] == ROLE_PUSH
    dst = env.net.dst[c]
    z = st.z.at[dst].add(jnp.where(is_push, payload, 0.0))  # every packet counts, in any order
    recv = st.recv.at[c].set(jnp.where(fresh & ~is_push, payload, st.recv[c]))
    return st._replace(z=z, recv=recv)


def tracker_mass(st: RFastState, role: Array) -> Array:
    """sum_i z_i + mass pushed but not yet absorbed (R-FAST's conserved quantity)."""
    pending = jnp.where((role == ROLE_PUSH)[:, None], st.rho - st.rho_tilde, 0.0)
    return st.z.sum(0) + pending.sum(0)


def rfast(ops: ProblemOps) -> Algorithm:
    return Algorithm(
        name="rfast",
        pattern="all",
        graphs=("pull", "push"),
        payload_width=ops.dim,
        init=lambda env, key: _init(ops, env, key),
        models=lambda st: st.x,
        on_compute=lambda env, st, i, key: _rfast_compute(ops, env, st, i, key),
        on_receive=_rfast_receive,
        description="R-FAST: asynchronous gradient tracking with running-sum buffers",
    )


def rfast_nonrobust(ops: ProblemOps) -> Algorithm:
    return Algorithm(
        name="rfast_nonrobust",
        pattern="all",
        graphs=("pull", "push"),
        payload_width=ops.dim,
        init=lambda env, key: _init(ops, env, key),
        models=lambda st: st.x,
        on_compute=lambda env, st, i, key: _nonrobust_compute(ops, env, st, i, key),
        on_receive=_nonrobust_receive,
        description="async gradient tracking whose packets carry only new mass (no running sums)",
    )
