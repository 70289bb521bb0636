"""R-FAST and its non-robust ablation, as in ALGORITHM.md (descend, pull, absorb, track, push).

Node i keeps x_i, z_i and its last local gradient g_i. Channel c = (j -> i) keeps ``recv[c]``,
the newest packet that arrived (v_j on G_R channels, the running sum rho_ij on G_C channels);
``rho[c]``, the sender's running sum of all tracker mass pushed on c; ``rho_tilde[c]``, the part
of it the receiver has already absorbed.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rfast_sim.maths.algorithms.base import (
    Access,
    Accesses,
    Algorithm,
    Array,
    Compute,
    Env,
    NetState,
    NoWrite,
    Receive,
    neighbourhood,
    num_nodes,
    replicate,
)
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.scenario.registry import info
from rfast_sim.timing.topology import ROLE_PULL, ROLE_PUSH


class TrackerNodes(NamedTuple):
    x: Array  # parameters
    z: Array  # gradient tracker
    g: Array  # last local gradient


class RunningSums(NamedTuple):
    recv: Array  # newest packet received on the channel
    rho: Array  # sender's running sum (G_C channels)
    rho_tilde: Array  # receiver's absorbed running sum (G_C channels)


# the channel fields each event writes (subsets of RunningSums)
class Absorbed(NamedTuple):
    rho_tilde: Array


class Pushed(NamedTuple):
    rho: Array


class Received(NamedTuple):
    recv: Array


# R-FAST's computation reads its in-channels' packets and absorbed sums and its out-channels'
# running sums, and writes the sums; a delivery only replaces the channel's packet
TRACKING_ACCESS = Accesses(
    compute=Access(reads=("node.x", "node.z", "node.g", "in.recv", "in.rho_tilde", "out.rho"),
                   writes=("node.x", "node.z", "node.g", "in.rho_tilde", "out.rho")),
    receive=Access(reads=("chan.recv",), writes=("chan.recv",)))


def tracking_init(ops: ProblemOps, env: Env, key: Array) -> NetState:
    n = num_nodes(env)
    x = replicate(env.data.x0, n)
    keys = jax.random.split(key, n)
    g = jax.vmap(ops.local_grad, in_axes=(0, None, 0, 0))(x, env.data, jnp.arange(n), keys)
    num_ch = env.net.src.shape[0]
    # v_j starts at x_j(0) on pull channels; running sums start at 0.
    is_pull = (env.net.role == ROLE_PULL)[:, None]
    recv = jnp.where(is_pull, env.data.x0, 0.0) * jnp.ones((num_ch, 1), x.dtype)
    zeros = jnp.zeros((num_ch, x.shape[1]), x.dtype)
    return NetState(TrackerNodes(x, g, g), RunningSums(recv, zeros, zeros))


def rfast_compute(ops: ProblemOps, env: Env, i: Array, key: Array, node: TrackerNodes,
                   ins: RunningSums, outs: RunningSums) -> Compute:
    nb = neighbourhood(env.net, i)
    pull_in = nb.in_valid & (nb.in_role == ROLE_PULL)
    push_in = (nb.in_valid & (nb.in_role == ROLE_PUSH))[:, None]
    push_out = (nb.out_valid & (nb.out_role == ROLE_PUSH))[:, None]
    # descend, then pull the newest v_j received from each G_R in-neighbour
    v = node.x - env.step_size * node.z
    x = nb.self_w[ROLE_PULL] * v + jnp.where(pull_in, nb.in_w, 0.0) @ ins.recv
    # absorb only mass not absorbed before: a lost packet's mass comes with the next one
    z = node.z + jnp.where(push_in, ins.recv - ins.rho_tilde, 0.0).sum(0)
    rho_tilde = jnp.where(push_in, ins.recv, ins.rho_tilde)
    # track the gradient
    g = ops.local_grad(x, env.data, i, key)
    z = z + g - node.g
    # push: add c_ji z_i to each running sum, keep c_ii z_i
    rho = outs.rho + jnp.where(push_out, nb.out_w[:, None] * z, 0.0)
    z = nb.self_w[ROLE_PUSH] * z
    payloads = jnp.where(push_out, rho, v)
    return Compute(TrackerNodes(x, z, g), Absorbed(rho_tilde), Pushed(rho), payloads)


def rfast_receive(env: Env, c: Array, payload: Array, fresh: Array, dst: TrackerNodes,
                   src: TrackerNodes, chan: RunningSums) -> Receive:
    # keep only the newest packet per channel (a stale one carries an older running sum;
    # with `supersedes` the runners apply fresh ones only)
    return Receive(NoWrite(), NoWrite(), Received(jnp.where(fresh, payload, chan.recv)))


def _nonrobust_compute(ops: ProblemOps, env: Env, i: Array, key: Array, node: TrackerNodes,
                       ins: RunningSums, outs: RunningSums) -> Compute:
    # R-FAST's own computation; only the packets on G_C differ: each carries the new mass
    # c_ji z_i (rho's increment) instead of the running sum rho
    out = rfast_compute(ops, env, i, key, node, ins, outs)
    push_out = (env.net.role[jnp.maximum(env.net.out_ch[i], 0)] == ROLE_PUSH)[:, None]
    return out._replace(payloads=jnp.where(push_out, out.outs.rho - outs.rho, out.payloads))


def _nonrobust_receive(env: Env, c: Array, payload: Array, fresh: Array, dst: TrackerNodes,
                       src: TrackerNodes, chan: RunningSums) -> Receive:
    # an increment is never stale: the receiver sums every one that arrives (in any order) and
    # absorbs the sum at its next computation, as R-FAST absorbs its running sums
    is_push = env.net.role[c] == ROLE_PUSH
    recv = jnp.where(is_push, chan.recv + payload, jnp.where(fresh, payload, chan.recv))
    return Receive(NoWrite(), NoWrite(), Received(recv))


def tracker_mass(state: NetState, role: Array) -> Array:
    """sum_i z_i + mass pushed but not yet absorbed: equals sum_i g_i (R-FAST's invariant)."""
    ch = state.chans
    pending = jnp.where((role == ROLE_PUSH)[:, None], ch.rho - ch.rho_tilde, 0.0)
    return state.nodes.z.sum(0) + pending.sum(0)


def mass_residual(env: Env, state: NetState) -> Array:
    """tracker mass - sum_i g_i: zero after every event, dropped packets included."""
    return tracker_mass(state, env.net.role) - state.nodes.g.sum(0)


def rfast(ops: ProblemOps) -> Algorithm:
    def on_compute(env: Env, i: Array, key: Array, node: TrackerNodes, ins: RunningSums,
                   outs: RunningSums) -> Compute:
        return rfast_compute(ops, env, i, key, node, ins, outs)

    return Algorithm(
        info("rfast"),
        payload_width=ops.dim,
        init=functools.partial(tracking_init, ops),
        models=node_models,
        on_compute=on_compute,
        on_receive=rfast_receive,
        invariant=mass_residual,
        sender_fields=("rho",),
        access=TRACKING_ACCESS,
    )


def rfast_nonrobust(ops: ProblemOps) -> Algorithm:
    def on_compute(env: Env, i: Array, key: Array, node: TrackerNodes, ins: RunningSums,
                   outs: RunningSums) -> Compute:
        return _nonrobust_compute(ops, env, i, key, node, ins, outs)

    return Algorithm(
        info("rfast_nonrobust"),
        payload_width=ops.dim,
        init=functools.partial(tracking_init, ops),
        models=node_models,
        on_compute=on_compute,
        on_receive=_nonrobust_receive,
        sender_fields=("rho",),
        access=TRACKING_ACCESS,
    )


def node_models(state: NetState) -> Array:
    return state.nodes.x
