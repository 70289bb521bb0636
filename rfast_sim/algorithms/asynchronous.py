"""Asynchronous baselines: OSGP (push-sum SGD) and AD-PSGD (pairwise gossip averaging)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from rfast_sim.algorithms.base import Algorithm, Array, Env, replicate
from rfast_sim.problems import ProblemOps
from rfast_sim.topology import ROLE_PUSH


class PushSumState(NamedTuple):
    x: Array  # [n, D] push-sum numerators
    w: Array  # [n] push-sum weights


def osgp(ops: ProblemOps) -> Algorithm:
    """Push-sum SGD: step on x_i/w_i, send c_ji (x_i, w_i), add what arrives. Lost mass is lost."""

    def init(env: Env, key: Array) -> PushSumState:
        n = env.net.self_weight.shape[1]
        return PushSumState(replicate(env.data.x0, n), jnp.ones(n, env.data.x0.dtype))

    def on_compute(env: Env, st: PushSumState, i: Array, key: Array) -> tuple[PushSumState, Array]:
        net = env.net
        g = ops.local_grad(st.x[i] / st.w[i], env.data, i, key)
        x_i = st.x[i] - env.step_size * g
        oc = jnp.where(net.out_ch[i] >= 0, net.out_ch[i], 0)
        c = net.weight[oc][:, None]
        payloads = jnp.concatenate([c * x_i, c * st.w[i]], axis=1)
        keep = net.self_weight[ROLE_PUSH, i]
        return PushSumState(st.x.at[i].set(keep * x_i), st.w.at[i].multiply(keep)), payloads

    def on_receive(env: Env, st: PushSumState, c: Array, payload: Array,
                   fresh: Array) -> PushSumState:
        dst = env.net.dst[c]
        return PushSumState(st.x.at[dst].add(payload[:-1]), st.w.at[dst].add(payload[-1]))

    return Algorithm(
        name="osgp",
        pattern="all",
        graphs=("push",),
        payload_width=ops.dim + 1,
        init=init,
        models=lambda st: st.x / st.w[:, None],
        on_compute=on_compute,
        on_receive=on_receive,
        description="OSGP / asynchronous stochastic gradient push (push-sum) on graphs.push",
    )


class GossipState(NamedTuple):
    x: Array  # [n, D]
    snap: Array  # [n, D] the model each node read when its current computation started


def adpsgd(ops: ProblemOps) -> Algorithm:
    """AD-PSGD: gradient at the (stale) model read at compute start, applied at its end;
    the node then averages with one random neighbour when its request arrives (atomic)."""

    def init(env: Env, key: Array) -> GossipState:
        x = replicate(env.data.x0, env.net.self_weight.shape[1])
        return GossipState(x, x)

    def on_compute(env: Env, st: GossipState, i: Array, key: Array) -> tuple[GossipState, Array]:
        g = ops.local_grad(st.snap[i], env.data, i, key)
        x_i = st.x[i] - env.step_size * g
        payloads = jnp.zeros((env.net.out_ch.shape[1], 1), x_i.dtype)
        return GossipState(st.x.at[i].set(x_i), st.snap.at[i].set(x_i)), payloads

    def on_receive(env: Env, st: GossipState, c: Array, payload: Array,
                   fresh: Array) -> GossipState:
        a, b = env.net.src[c], env.net.dst[c]
        avg = 0.5 * (st.x[a] + st.x[b])
        return st._replace(x=st.x.at[a].set(avg).at[b].set(avg))

    return Algorithm(
        name="adpsgd",
        pattern="one",
        graphs=("gossip",),
        payload_width=1,
        init=init,
        models=lambda st: st.x,
        on_compute=on_compute,
        on_receive=on_receive,
        description="AD-PSGD: asynchronous pairwise gossip averaging (undirected graph)",
    )
