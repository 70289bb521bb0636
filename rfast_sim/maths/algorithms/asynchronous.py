"""Asynchronous baselines: OSGP (push-sum SGD) and AD-PSGD (pairwise gossip averaging)."""

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
    neighbourhood,
    num_nodes,
    replicate,
)
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.scenario.registry import info
from rfast_sim.timing.topology import ROLE_PUSH


class PushSumNodes(NamedTuple):
    x: Array  # push-sum numerator
    w: Array  # push-sum weight


def osgp(ops: ProblemOps) -> Algorithm:
    """Push-sum SGD: step on x_i/w_i, send c_ji (x_i, w_i), add what arrives. Lost mass is lost."""

    def init(env: Env, key: Array) -> NetState:
        n = num_nodes(env)
        return NetState(PushSumNodes(replicate(env.data.x0, n), jnp.ones(n, env.data.x0.dtype)),
                        NoChans())

    def on_compute(env: Env, i: Array, key: Array, node: PushSumNodes, ins: NoChans,
                   outs: NoChans) -> Compute:
        nb = neighbourhood(env.net, i)
        x = node.x - env.step_size * ops.local_grad(node.x / node.w, env.data, i, key)
        share = nb.out_w[:, None]
        payloads = jnp.concatenate([share * x, share * node.w], axis=1)
        keep = nb.self_w[ROLE_PUSH]
        return Compute(PushSumNodes(keep * x, keep * node.w), NoWrite(), NoWrite(), payloads)

    def on_receive(env: Env, c: Array, payload: Array, fresh: Array, dst: PushSumNodes,
                   src: PushSumNodes, chan: NoChans) -> Receive:
        return Receive(PushSumNodes(dst.x + payload[:-1], dst.w + payload[-1]), NoWrite(),
                       NoWrite())

    return Algorithm(
        info("osgp"),
        payload_width=ops.dim + 1,
        init=init,
        models=lambda st: st.nodes.x / st.nodes.w[:, None],
        on_compute=on_compute,
        on_receive=on_receive,
        # a receive adds into the receiver's sums: deliveries to one node stay in trace order
        # (float sums may not be reordered)
        access=Accesses(compute=Access(reads=("node.x", "node.w"), writes=("node.x", "node.w")),
                        receive=Access(reads=("dst.x", "dst.w"), writes=("dst.x", "dst.w"))),
    )


class GossipNodes(NamedTuple):
    x: Array  # model
    snap: Array  # the model the node read when its current computation started


class Averaged(NamedTuple):
    x: Array


def adpsgd(ops: ProblemOps) -> Algorithm:
    """AD-PSGD: the gradient, taken at the (stale) model read when the computation started, is
    applied when it ends; the node then averages with one random neighbour, atomically, when
    its request arrives."""

    def init(env: Env, key: Array) -> NetState:
        x = replicate(env.data.x0, num_nodes(env))
        return NetState(GossipNodes(x, x), NoChans())

    def on_compute(env: Env, i: Array, key: Array, node: GossipNodes, ins: NoChans,
                   outs: NoChans) -> Compute:
        x = node.x - env.step_size * ops.local_grad(node.snap, env.data, i, key)
        payloads = jnp.zeros((env.net.out_ch.shape[1], 1), x.dtype)
        return Compute(GossipNodes(x, x), NoWrite(), NoWrite(), payloads)

    def on_receive(env: Env, c: Array, payload: Array, fresh: Array, dst: GossipNodes,
                   src: GossipNodes, chan: NoChans) -> Receive:
        avg = 0.5 * (dst.x + src.x)
        return Receive(Averaged(avg), Averaged(avg), NoWrite())

    return Algorithm(
        info("adpsgd"),
        payload_width=1,
        init=init,
        models=lambda st: st.nodes.x,
        on_compute=on_compute,
        on_receive=on_receive,
        # the averaging writes both ends
        access=Accesses(
            compute=Access(reads=("node.x", "node.snap"), writes=("node.x", "node.snap")),
            receive=Access(reads=("dst.x", "src.x"), writes=("dst.x", "src.x"))),
    )
