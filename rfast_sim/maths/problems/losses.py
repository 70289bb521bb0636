"""Losses by name: per-sample values of a model's outputs against the targets.

Each loss maps ``(outputs [b, ...], targets [b, ...]) -> [b]`` and says how a sample counts as
classified right (None: the loss does not classify; accuracy is NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

Array = jax.Array


@dataclass(frozen=True)
class Loss:
    name: str
    per_sample: Callable[[Array, Array], Array]
    correct: Callable[[Array, Array], Array] | None  # per sample: 1 if classified right
    classify: bool  # targets must be integer labels
    outputs: Callable[[int], int]  # model outputs for `classes` (or target width)


def _ce(out: Array, y: Array) -> Array:
    picked = jnp.take_along_axis(out, y.astype(jnp.int32)[:, None], -1)[:, 0]
    return jax.nn.logsumexp(out, axis=-1) - picked


def _ce_correct(out: Array, y: Array) -> Array:
    return jnp.argmax(out, -1) == y.astype(jnp.int32)


def _score(out: Array) -> Array:
    return out.reshape(out.shape[0])


def _bce(out: Array, y: Array) -> Array:
    s = _score(out)
    return jax.nn.softplus(s) - y * s


def _bce_correct(out: Array, y: Array) -> Array:
    return (_score(out) > 0) == (y > 0.5)


def _mse(out: Array, y: Array) -> Array:
    r = (out.reshape(y.shape) - y).reshape(y.shape[0], -1)
    return 0.5 * jnp.mean(r * r, axis=1)


def cross_entropy() -> Loss:
    return Loss("cross_entropy", _ce, _ce_correct, True, lambda classes: classes)


def binary_cross_entropy() -> Loss:
    return Loss("binary_cross_entropy", _bce, _bce_correct, True, lambda classes: 1)


def mse() -> Loss:
    return Loss("mse", _mse, None, False, lambda width: width)
