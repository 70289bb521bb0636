"""The algorithm interface shared by R-FAST and every baseline.

An algorithm is a frozen bundle of pure functions (cf. optax's GradientTransformation):

- ``init(env, key) -> state``: the network state pytree (arrays with a leading node axis);
- ``on_compute(env, state, i, key) -> (state, payloads)``: node i finished a local gradient;
  ``payloads[k]`` is what it sends on its k-th out-channel ``env.net.out_ch[i, k]``;
- ``on_receive(env, state, c, payload, fresh) -> state``: a packet arrived on channel c
  (``fresh`` is False when a newer packet on c was already applied);
- ``on_round(env, state, key) -> state``: a synchronous round completed (barrier methods);
- ``models(state) -> [n, D]``: each node's current model, for metrics.

They know nothing of time. ``pattern`` tells the engine how the algorithm communicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rfast_sim.problems import ProblemData, ProblemOps
from rfast_sim.topology import Pattern

Array = jax.Array
State = Any


class Net(NamedTuple):
    """Channel arrays of :class:`rfast_sim.topology.Channels` as a pytree (traced, vmappable)."""

    src: Array
    dst: Array
    role: Array
    weight: Array
    self_weight: Array  # [3, n]
    out_ch: Array  # [n, Kout], -1 padded
    in_ch: Array  # [n, Kin], -1 padded


class Env(NamedTuple):
    """Everything an update reads but does not change."""

    net: Net
    data: ProblemData
    step_size: Array


@dataclass(frozen=True)
class Algorithm:
    name: str
    pattern: Pattern
    graphs: tuple[str, ...]  # which scenario graphs it uses: "pull", "push", "gossip"
    payload_width: int  # floats per packet
    init: Callable[[Env, Array], State]
    models: Callable[[State], Array]
    on_compute: Callable[[Env, State, Array, Array], tuple[State, Array]] | None = None
    on_receive: Callable[[Env, State, Array, Array, Array], State] | None = None
    on_round: Callable[[Env, State, Array], State] | None = None
    description: str = ""

    @property
    def synchronous(self) -> bool:
        return self.pattern.startswith("sync")


def masked_index(idx: Array, valid: Array, size: int) -> Array:
    """Indices with invalid entries sent out of bounds, for `.at[...]` updates with mode='drop'.

    Padded entries must not alias a real index: duplicate scatter indices have no defined winner.
    """
    return jnp.where(valid, idx, size)


def all_grads(ops: ProblemOps, env: Env, x: Array, key: Array) -> Array:
    """Every node's local gradient at its own row of x (used by synchronous rounds)."""
    n = x.shape[0]
    keys = jax.random.split(key, n)
    return jax.vmap(ops.local_grad, in_axes=(0, None, 0, 0))(x, env.data, jnp.arange(n), keys)


def dense(net: Net, role: int, n: int) -> Array:
    """The n x n mixing matrix of one graph role from the channel list (W[dst, src])."""
    w = jnp.where(net.role == role, net.weight, 0.0)
    W = jnp.zeros((n, n), dtype=net.weight.dtype).at[net.dst, net.src].add(w)
    return W + jnp.diag(net.self_weight[role])


def replicate(x0: Array, n: int) -> Array:
    return jnp.broadcast_to(x0, (n, *x0.shape))
