"""Synchronous baselines. The engine's barrier decides when their events fire:

- all-reduce: one global update per round, after a ring all-reduce (global by nature);
- D-PSGD and synchronous gradient tracking: per-node functions, like the asynchronous methods,
  driven in lock-step rounds (a neighbour barrier by default: a node waits only for its
  in-neighbours' messages of the round). Node i's k-th computation reads exactly its
  in-neighbours' packets of round k-1 (a packet of a later round is held until i gets there).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from rfast_sim.maths.algorithms.base import (
    Access,
    Accesses,
    Algorithm,
    Array,
    Compute,
    Env,
    NetState,
    NoChans,
    NoWrite,
    Receive,
    all_grads,
    neighbourhood,
    num_nodes,
    replicate,
)
from rfast_sim.maths.algorithms.rfast import (
    TRACKING_ACCESS,
    RunningSums,
    TrackerNodes,
    node_models,
    rfast_compute,
    rfast_receive,
    tracking_init,
)
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.scenario.registry import info
from rfast_sim.timing.topology import ROLE_GOSSIP


class Models(NamedTuple):
    x: Array


def _init_models(env: Env, key: Array) -> NetState:
    return NetState(Models(replicate(env.data.x0, num_nodes(env))), NoChans())


def allreduce_sgd(ops: ProblemOps) -> Algorithm:
    """Parallel SGD with a ring all-reduce: x <- x - gamma * mean_i g_i(x), same x everywhere."""

    def on_round(env: Env, st: NetState, key: Array) -> NetState:
        x = st.nodes.x
        g = all_grads(ops, env, x, key).mean(0)
        return NetState(Models(x - env.step_size * g), st.chans)

    return Algorithm(info("allreduce_sgd"), 1, _init_models, node_models, on_round=on_round)


class GossipModels(NamedTuple):
    x: Array  # x_i^k, the model node i sent in its last round
    g: Array  # g_i(x_i^k), its gradient there (zero before the first computation)


class Latest(NamedTuple):
    recv: Array  # the in-neighbour's model of the previous round


def dpsgd(ops: ProblemOps) -> Algorithm:
    """D-PSGD: x_i^{k+1} = sum_j w_ij x_j^k - gamma g_i(x_i^k), Metropolis W (undirected graph).

    Node i's k-th computation first applies round k-1's update with the models its neighbours
    sent in round k-1 (the barrier guarantees they are there), then takes the gradient at the
    new model and sends that model to every neighbour.
    """

    def init(env: Env, key: Array) -> NetState:
        n, num_ch = num_nodes(env), env.net.src.shape[0]
        x = replicate(env.data.x0, n)
        return NetState(GossipModels(x, jnp.zeros_like(x)),
                        Latest(jnp.broadcast_to(env.data.x0, (num_ch, *env.data.x0.shape))))

    def on_compute(env: Env, i: Array, key: Array, node: GossipModels, ins: Latest,
                   outs: Latest) -> Compute:
        nb = neighbourhood(env.net, i)
        w_in = jnp.where(nb.in_valid & (nb.in_role == ROLE_GOSSIP), nb.in_w, 0.0)
        x = nb.self_w[ROLE_GOSSIP] * node.x + w_in @ ins.recv - env.step_size * node.g
        g = ops.local_grad(x, env.data, i, key)
        payloads = jnp.broadcast_to(x, (env.net.out_ch.shape[1], x.shape[0]))
        return Compute(GossipModels(x, g), NoWrite(), NoWrite(), payloads)

    def on_receive(env: Env, c: Array, payload: Array, fresh: Array, dst: GossipModels,
                   src: GossipModels, chan: Latest) -> Receive:
        # keep the newest model: with a barrier timeout a node goes on without a late packet,
        # which may then arrive after the neighbour's next one and must not overwrite it
        return Receive(NoWrite(), NoWrite(), Latest(jnp.where(fresh, payload, chan.recv)))

    return Algorithm(info("dpsgd"), ops.dim, init, node_models, on_compute=on_compute,
                     on_receive=on_receive, access=Accesses(
                         compute=Access(reads=("node.x", "node.g", "in.recv"),
                                        writes=("node.x", "node.g")),
                         receive=Access(reads=("chan.recv",), writes=("chan.recv",))))


def sync_gt(ops: ProblemOps) -> Algorithm:
    """Synchronous push-pull gradient tracking: R-FAST's own compute and receive functions in
    lock-step rounds (same code, same step size meaning), so sync vs async isolates asynchrony.
    With v_j^k = x_j^k - gamma z_j^k and y_j^k node j's tracker before it keeps c_jj of it:
    x_i^{k+1} = r_ii v_i^k + sum_j r_ij v_j^{k-1};
    y_i^k = z_i^k + sum_j c_ij y_j^{k-1} + g_i(x_i^{k+1}) - g_i(x_i^k);  z_i^{k+1} = c_ii y_i^k.
    """

    def on_compute(env: Env, i: Array, key: Array, node: TrackerNodes, ins: RunningSums,
                   outs: RunningSums) -> Compute:
        return rfast_compute(ops, env, i, key, node, ins, outs)

    def init(env: Env, key: Array) -> NetState:
        return tracking_init(ops, env, key)

    return Algorithm(info("sync_gt"), ops.dim, init, node_models, on_compute=on_compute,
                     on_receive=rfast_receive, sender_fields=("rho",),
                     access=TRACKING_ACCESS)
