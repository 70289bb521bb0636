"""The built-in problem kinds: least squares, logistic regression and the digits MLP.

Their data are generated from the replicate seed as they always were (every node holds
``samples_per_node`` samples, so ``F`` is also the mean over all samples), and their losses are
written on the flat vector exactly as before: results are bit for bit those of earlier versions.
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.maths.problems.base import (
    AccuracyFn,
    DataLossFn,
    ProblemData,
    ProblemOps,
    no_accuracy,
)
from rfast_sim.scenario import Problem, mlp_dim
from rfast_sim.scenario.seeding import stream

Array = jax.Array


def _least_squares_loss(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
    r = feats @ x - targets
    return 0.5 * jnp.mean(r * r)


def _logistic_loss(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
    s = feats @ x
    return jnp.mean(jax.nn.softplus(s) - targets * s)


def _logistic_correct(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
    return jnp.mean((feats @ x > 0) == (targets > 0.5))


def _mlp_functions(shape: tuple[int, int, int]) -> tuple[DataLossFn, AccuracyFn]:
    def loss(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
        logits = _mlp_logits(x, feats, shape)
        lse = jax.nn.logsumexp(logits, axis=-1)
        picked = jnp.take_along_axis(logits, targets.astype(jnp.int32)[:, None], -1)[:, 0]
        return jnp.mean(lse - picked)

    def correct(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
        logits = _mlp_logits(x, feats, shape)
        return jnp.mean(jnp.argmax(logits, -1) == targets.astype(jnp.int32))

    return loss, correct


def builtin_functions(kind: str, key: Hashable) -> tuple[DataLossFn, AccuracyFn]:
    """(data loss, accuracy) of a built-in kind; the mlp's `key` is its (f, hidden, classes)."""
    if kind == "least_squares":
        return _least_squares_loss, no_accuracy
    if kind == "logistic":
        return _logistic_loss, _logistic_correct
    if kind == "mlp":
        assert isinstance(key, tuple)
        return _mlp_functions(key)
    raise ValueError(f"{kind!r} is not a built-in problem kind; give its functions")


def _ops(kind: str, dim: int, batch: int | None, *, classify: bool,
         key: Hashable = ()) -> ProblemOps:
    loss, correct = builtin_functions(kind, key)
    return ProblemOps(kind, dim, batch, classify, key, data_loss=loss, correct=correct)


def _mlp_logits(x: Array, feats: Array, shape: tuple[int, int, int]) -> Array:
    f, h, c = shape
    w1 = x[: f * h].reshape(f, h)
    b1 = x[f * h : f * h + h]
    w2 = x[f * h + h : f * h + h + h * c].reshape(h, c)
    b2 = x[f * h + h + h * c :]
    return jnp.tanh(feats @ w1 + b1) @ w2 + b2


def _label_skew_counts(rng: np.random.Generator, n: int, m: int, classes: int,
                       alpha: float) -> np.ndarray:
    """Per-node class counts with Dirichlet(alpha) class proportions (small alpha = strong skew)."""
    props = rng.dirichlet(np.full(classes, alpha), size=n)
    return np.stack([rng.multinomial(m, p) for p in props])


def _least_squares(spec: Problem, n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = stream(seed, "problem")
    d, m = spec.dim, spec.samples_per_node
    feats = rng.standard_normal((n, m, d))
    center = rng.standard_normal(d)
    scale = spec.heterogeneity.scale if spec.heterogeneity.kind != "none" else 0.0
    local_opt = center + scale * rng.standard_normal((n, d))
    targets = np.einsum("nmd,nd->nm", feats, local_opt) + spec.noise * rng.standard_normal((n, m))
    A, b, N = feats.reshape(-1, d), targets.reshape(-1), n * m
    if d <= N:  # normal equations (A'A/N + l2 I) x = A'b/N
        x_star = np.linalg.solve(A.T @ A / N + spec.l2 * np.eye(d), A.T @ b / N)
    else:  # the same solution through the N x N system: x = A'(AA'/N + l2 I)^-1 b/N
        x_star = A.T @ np.linalg.solve(A @ A.T / N + spec.l2 * np.eye(N), b / N)
    r = A @ x_star - b
    f_star = 0.5 * np.mean(r * r) + 0.5 * spec.l2 * x_star @ x_star
    return feats, targets, np.zeros(d), x_star, np.array(f_star)


def _logistic(spec: Problem, n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = stream(seed, "problem")
    d, m = spec.dim, spec.samples_per_node
    w_true = rng.standard_normal(d) / np.sqrt(d)
    het = spec.heterogeneity
    if het.kind == "label_skew":
        counts = _label_skew_counts(rng, n, m, 2, het.alpha)
    else:
        counts = np.stack([rng.multinomial(m, [0.5, 0.5]) for _ in range(n)])
    labels = np.stack([np.repeat([0.0, 1.0], c) for c in counts])
    shift = het.scale * rng.standard_normal((n, 1, d)) if het.kind == "shift" else 0.0
    feats = rng.standard_normal((n, m, d)) + (2 * labels[..., None] - 1) * w_true + shift
    x_star, f_star = _newton_logistic(feats.reshape(-1, d), labels.reshape(-1), spec.l2)
    return feats, labels, np.zeros(d), x_star, np.array(f_star)


def _newton_logistic(A: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Minimise mean(softplus(Ax) - y Ax) + l2/2 |x|^2 to machine precision (damped Newton)."""
    from scipy.special import expit

    def f(x: np.ndarray) -> float:
        s = A @ x
        return float(np.mean(np.logaddexp(0, s) - y * s) + 0.5 * l2 * x @ x)

    x = np.zeros(A.shape[1])
    for _ in range(100):
        p = expit(A @ x)
        g = A.T @ (p - y) / len(y) + l2 * x
        if np.linalg.norm(g) < 1e-14:
            break
        H = (A * (p * (1 - p))[:, None]).T @ A / len(y) + (l2 + 1e-12) * np.eye(len(x))
        step = np.linalg.solve(H, g)
        t = 1.0
        while f(x - t * step) > f(x) and t > 1e-8:
            t *= 0.5
        x = x - t * step
    return x, f(x)


def _digits_mlp(spec: Problem, n: int, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits  # a runtime dependency; imported here: it is slow

    digits = load_digits()
    X = digits.data / 16.0
    y = digits.target
    rng = stream(seed, "problem")
    m = spec.samples_per_node
    het = spec.heterogeneity
    if het.kind == "label_skew":
        counts = _label_skew_counts(rng, n, m, 10, het.alpha)
    else:
        counts = np.stack([rng.multinomial(m, np.full(10, 0.1)) for _ in range(n)])
    pools = [np.flatnonzero(y == c) for c in range(10)]
    idx = np.stack([
        np.concatenate([rng.choice(pools[c], size=k, replace=True) for c, k in enumerate(row)])
        for row in counts
    ])
    f, h, c = X.shape[1], spec.hidden, 10
    d = mlp_dim(h, f, c)
    x0 = np.concatenate([
        rng.standard_normal(f * h) / np.sqrt(f), np.zeros(h),
        rng.standard_normal(h * c) / np.sqrt(h), np.zeros(c),
    ])
    nan = np.full(d, np.nan)
    return X[idx], y[idx].astype(np.float64), x0, nan, np.array(np.nan)


def _data(arrays: tuple[np.ndarray, ...], l2: float, n: int, m: int,
          dtype: str) -> ProblemData:
    feats, targets, x0, x_star, f_star = (jnp.asarray(a, dtype=dtype) for a in arrays)
    return ProblemData(feats, targets, x0, x_star, f_star, jnp.asarray(l2, dtype=dtype),
                       jnp.full(n, m, dtype=jnp.int32),
                       jnp.zeros((0, *feats.shape[2:]), dtype=dtype),
                       jnp.zeros((0,), dtype=dtype))


def _batch(spec: Problem) -> int | None:
    return None if spec.batch_size is None else min(spec.batch_size, spec.samples_per_node)


def least_squares(spec: Problem, n: int, seed: int,
                  dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    ops = _ops("least_squares", spec.dim, _batch(spec), classify=False)
    return ops, _data(_least_squares(spec, n, seed), spec.l2, n, spec.samples_per_node, dtype)


def logistic(spec: Problem, n: int, seed: int,
             dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    ops = _ops("logistic", spec.dim, _batch(spec), classify=True)
    return ops, _data(_logistic(spec, n, seed), spec.l2, n, spec.samples_per_node, dtype)


def digits_mlp(spec: Problem, n: int, seed: int,
               dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    arrays = _digits_mlp(spec, n, seed)
    shape = (arrays[0].shape[-1], spec.hidden, 10)
    ops = _ops("mlp", arrays[2].shape[0], _batch(spec), classify=True, key=shape)
    return ops, _data(arrays, spec.l2, n, spec.samples_per_node, dtype)


def builtin_dim(spec: Problem) -> int:
    return spec.dim if spec.kind != "mlp" else mlp_dim(spec.hidden)
