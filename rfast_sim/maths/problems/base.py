"""The problem interface: a frozen bundle of pure, jittable functions and its data pytree.

Shaped like :mod:`rfast_sim.maths.algorithms.base`. A problem kind is a factory
``(spec, nodes, seed, dtype) -> (ProblemOps, ProblemData)`` registered by name
(:func:`rfast_sim.register_problem`). Algorithms see one flat parameter vector ``x`` of
``ops.dim`` floats: a model's parameter pytree is raveled once
(``jax.flatten_util.ravel_pytree``), so packets, ``message_bytes: auto`` and metrics all use it.

Every node holds a shard of ``counts[i]`` samples, padded to a common size ``m``. The global
objective is ``F(x) = (1/n) sum_i f_i(x) + (l2/2) |x|^2`` with ``f_i`` the mean loss over node
i's own samples: nodes weigh equally, as in the paper, whatever their shard sizes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

# Every JAX-using module of the package imports this one first: float64 must be on before any
# array is made (exact-convergence checks need it; a scenario may still ask for float32).
jax.config.update("jax_enable_x64", True)

Array = jax.Array


class ProblemData(NamedTuple):
    """Per-run arrays (a pytree, so runs with different seeds can be stacked and vmapped)."""

    feats: Array  # [n, m, *input_shape] each node's samples, padded to m
    targets: Array  # [n, m, *target_shape]
    x0: Array  # [D] initial model shared by all nodes
    x_star: Array  # [D] exact minimiser of F (NaN if unknown)
    f_star: Array  # [] F(x_star) (NaN if unknown)
    l2: Array  # [] L2 regularisation weight (traced: a sweep over it does not recompile)
    counts: Array  # [n] int: node i's real samples are the first counts[i] of its m
    test_feats: Array  # [T, *input_shape] held-out samples (T = 0: none)
    test_targets: Array  # [T, *target_shape]


class DataLossFn(Protocol):
    """Mean loss (no L2 term) over the samples where `mask` holds (every sample when None)."""

    def __call__(self, x: Array, feats: Array, targets: Array, mask: Array | None, /) -> Array:
        ...


class AccuracyFn(Protocol):
    """Fraction of the samples where `mask` holds (all when None) classified right."""

    def __call__(self, x: Array, feats: Array, targets: Array, mask: Array | None, /) -> Array:
        ...


def no_accuracy(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
    """The accuracy of a problem that does not classify: NaN."""
    return jnp.array(jnp.nan, dtype=x.dtype)


@dataclass(frozen=True)
class ProblemOps:
    """Static, jittable functions of a problem. Hashable by `key`, never by the functions'
    identity: ops with equal keys share compiled code, so runs that differ only in data, seed
    or step size never recompile. `key` must therefore determine the functions (a kind's
    factory puts its static spec there: model, loss, shapes, a user module's source hash)."""

    kind: str
    dim: int
    batch_size: int | None
    classify: bool
    key: Hashable = ()
    padded: bool = False  # shards of unequal size: masks in exact gradients and metrics
    has_test: bool = False
    data_loss: DataLossFn | None = field(default=None, compare=False, repr=False)
    correct: AccuracyFn = field(default=no_accuracy, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.data_loss is None:
            raise TypeError(f"ProblemOps({self.kind!r}, ...): give data_loss (and correct, "
                            "for a classifier): the functions of the problem")

    def loss(self, x: Array, feats: Array, targets: Array, l2: Array,
             mask: Array | None = None) -> Array:
        """Mean loss over the given samples plus ``(l2/2) |x|^2``."""
        assert self.data_loss is not None
        return self.data_loss(x, feats, targets, mask) + 0.5 * l2 * jnp.dot(x, x)

    def local_grad(self, x: Array, data: ProblemData, i: Array, key: Array) -> Array:
        """Gradient of f_i at x: exact, or on a minibatch drawn with replacement (from `key`)
        among node i's own samples (never its padding)."""
        feats, targets = data.feats[i], data.targets[i]
        if self.batch_size is not None:
            high = data.counts[i] if self.padded else feats.shape[0]
            idx = jax.random.randint(key, (self.batch_size,), 0, high)
            return jax.grad(self.loss)(x, feats[idx], targets[idx], data.l2)
        mask = jnp.arange(feats.shape[0]) < data.counts[i] if self.padded else None
        return jax.grad(self.loss)(x, feats, targets, data.l2, mask)

    def global_loss(self, x: Array, data: ProblemData) -> Array:
        """F(x): the mean over nodes of each node's mean loss, plus the L2 term."""
        if self.padded:
            m = data.feats.shape[1]
            masks = jnp.arange(m)[None, :] < data.counts[:, None]
            zero = jnp.zeros((), x.dtype)
            per_node = jax.vmap(self.loss, in_axes=(None, 0, 0, None, 0))(
                x, data.feats, data.targets, zero, masks)
            return jnp.mean(per_node) + 0.5 * data.l2 * jnp.dot(x, x)
        f, t = _flat(data.feats, data.targets)
        return self.loss(x, f, t, data.l2)

    def accuracy(self, x: Array, data: ProblemData) -> Array:
        """Training accuracy: the fraction of every node's real samples classified right."""
        f, t = _flat(data.feats, data.targets)
        mask = None
        if self.padded:
            m = data.feats.shape[1]
            mask = (jnp.arange(m)[None, :] < data.counts[:, None]).reshape(-1)
        return self.correct(x, f, t, mask)

    def test_loss(self, x: Array, data: ProblemData) -> Array:
        """Mean loss on the held-out set plus the L2 term (NaN without one)."""
        if not self.has_test:
            return jnp.array(jnp.nan, dtype=x.dtype)
        return self.loss(x, data.test_feats, data.test_targets, data.l2)

    def test_accuracy(self, x: Array, data: ProblemData) -> Array:
        if not self.has_test:
            return jnp.array(jnp.nan, dtype=x.dtype)
        return self.correct(x, data.test_feats, data.test_targets, None)


def _flat(feats: Array, targets: Array) -> tuple[Array, Array]:
    """Every node's samples in one batch."""
    n, m = feats.shape[:2]
    return feats.reshape(n * m, *feats.shape[2:]), targets.reshape(n * m, *targets.shape[2:])


def problem_data(feats: Any, targets: Any, x0: Any, l2: float, *, x_star: Any = None,
                 f_star: float = float("nan"), counts: Any = None, test_feats: Any = None,
                 test_targets: Any = None, dtype: str = "float64") -> ProblemData:
    """A :class:`ProblemData` from arrays (for a registered kind's factory): `feats` and
    `targets` are per node ([n, m, ...]); `counts` default to m each; no test set unless
    given; `x_star` NaN unless known."""
    def arr(a: Any) -> Array:
        return jnp.asarray(a, dtype=dtype)

    feats, targets, x0 = arr(feats), arr(targets), arr(x0)
    n, m = feats.shape[:2]
    return ProblemData(
        feats, targets, x0, arr(jnp.full(x0.shape, jnp.nan) if x_star is None else x_star),
        arr(f_star), arr(l2),
        jnp.full(n, m, jnp.int32) if counts is None else jnp.asarray(counts, jnp.int32),
        arr(jnp.zeros((0, *feats.shape[2:])) if test_feats is None else test_feats),
        arr(jnp.zeros((0, *targets.shape[2:])) if test_targets is None else test_targets))
