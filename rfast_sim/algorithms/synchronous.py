"""Synchronous baselines: a barrier ends each round, then one update of the whole network."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from rfast_sim.algorithms.base import Algorithm, Array, Env, all_grads, dense, replicate
from rfast_sim.problems import ProblemOps
from rfast_sim.topology import ROLE_GOSSIP, ROLE_PULL, ROLE_PUSH


class ModelState(NamedTuple):
    x: Array  # [n, D]


def _init_models(env: Env, key: Array) -> ModelState:
    return ModelState(replicate(env.data.x0, env.net.self_weight.shape[1]))


def allreduce_sgd(ops: ProblemOps) -> Algorithm:
    """Parallel SGD with a ring all-reduce: x <- x - gamma * mean_i g_i(x), same x everywhere."""

    def on_round(env: Env, st: ModelState, key: Array) -> ModelState:
        g = all_grads(ops, env, st.x, key).mean(0)
        return ModelState(st.x - env.step_size * g)

    return Algorithm("allreduce_sgd", "sync_allreduce", (), 1, _init_models,
                     lambda st: st.x, on_round=on_round,
                     description="synchronous parallel SGD over a ring all-reduce")


def dpsgd(ops: ProblemOps) -> Algorithm:
    """D-PSGD: x_i <- sum_j w_ij x_j - gamma g_i(x_i), Metropolis W on an undirected graph."""

    def on_round(env: Env, st: ModelState, key: Array) -> ModelState:
        n = st.x.shape[0]
        W = dense(env.net, ROLE_GOSSIP, n)
        return ModelState(W @ st.x - env.step_size * all_grads(ops, env, st.x, key))

    return Algorithm("dpsgd", "sync_neighbors", ("gossip",), 1, _init_models,
                     lambda st: st.x, on_round=on_round,
                     description="synchronous decentralized SGD (Metropolis weights)")


class TrackingState(NamedTuple):
    x: Array
    z: Array
    g: Array


def sync_gt(ops: ProblemOps) -> Algorithm:
    """Synchronous push-pull gradient tracking: x <- R(x - gamma z); z <- C z + g(x_new) - g."""

    def init(env: Env, key: Array) -> TrackingState:
        x = replicate(env.data.x0, env.net.self_weight.shape[1])
        g = all_grads(ops, env, x, key)
        return TrackingState(x, g, g)

    def on_round(env: Env, st: TrackingState, key: Array) -> TrackingState:
        n = st.x.shape[0]
        R, C = dense(env.net, ROLE_PULL, n), dense(env.net, ROLE_PUSH, n)
        x = R @ (st.x - env.step_size * st.z)
        g = all_grads(ops, env, x, key)
        return TrackingState(x, C @ st.z + g - st.g, g)

    return Algorithm("sync_gt", "sync_neighbors", ("pull", "push"), 1, init,
                     lambda st: st.x, on_round=on_round,
                     description="synchronous push-pull gradient tracking (R-FAST with a barrier)")
