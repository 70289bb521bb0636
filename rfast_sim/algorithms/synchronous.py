"""Synchronous baselines: a barrier ends each round, then one update of the whole network."""

from __future__ import annotations

from typing import NamedTuple

from rfast_sim.algorithms.base import (
    Algorithm,
    Array,
    Env,
    NetState,
    NoChans,
    all_grads,
    dense,
    num_nodes,
    replicate,
)
from rfast_sim.problems import ProblemOps
from rfast_sim.topology import ROLE_GOSSIP, ROLE_PULL, ROLE_PUSH


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

    return Algorithm("allreduce_sgd", "sync_allreduce", (), 1, _init_models,
                     lambda st: st.nodes.x, on_round=on_round,
                     description="synchronous parallel SGD over a ring all-reduce")


def dpsgd(ops: ProblemOps) -> Algorithm:
    """D-PSGD: x_i <- sum_j w_ij x_j - gamma g_i(x_i), Metropolis W on an undirected graph."""

    def on_round(env: Env, st: NetState, key: Array) -> NetState:
        x = st.nodes.x
        W = dense(env.net, ROLE_GOSSIP, x.shape[0])
        return NetState(Models(W @ x - env.step_size * all_grads(ops, env, x, key)), st.chans)

    return Algorithm("dpsgd", "sync_neighbors", ("gossip",), 1, _init_models,
                     lambda st: st.nodes.x, on_round=on_round,
                     description="synchronous decentralized SGD (Metropolis weights)")


class Tracking(NamedTuple):
    x: Array
    z: Array
    g: Array


def sync_gt(ops: ProblemOps) -> Algorithm:
    """Synchronous push-pull gradient tracking: x <- R(x - gamma z); z <- C z + g(x_new) - g."""

    def init(env: Env, key: Array) -> NetState:
        x = replicate(env.data.x0, num_nodes(env))
        g = all_grads(ops, env, x, key)
        return NetState(Tracking(x, g, g), NoChans())

    def on_round(env: Env, st: NetState, key: Array) -> NetState:
        s = st.nodes
        n = s.x.shape[0]
        R, C = dense(env.net, ROLE_PULL, n), dense(env.net, ROLE_PUSH, n)
        x = R @ (s.x - env.step_size * s.z)
        g = all_grads(ops, env, x, key)
        return NetState(Tracking(x, C @ s.z + g - s.g, g), st.chans)

    return Algorithm("sync_gt", "sync_neighbors", ("pull", "push"), 1, init,
                     lambda st: st.nodes.x, on_round=on_round,
                     description="synchronous push-pull gradient tracking (R-FAST with a barrier)")
