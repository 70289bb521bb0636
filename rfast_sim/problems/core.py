"""Problem definitions: pure JAX losses over a flat parameter vector, and seeded data.

Every node holds ``samples_per_node`` samples, so the global objective
``F(x) = (1/n) sum_i f_i(x)`` is the mean loss over all samples plus the L2 term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.scenario import Problem, mlp_dim
from rfast_sim.seeding import stream

# Every JAX-using module of the package imports this one first: float64 must be on before any
# array is made (exact-convergence checks need it; a scenario may still ask for float32).
jax.config.update("jax_enable_x64", True)

Array = jax.Array


class ProblemData(NamedTuple):
    """Per-run arrays (a pytree, so runs with different seeds can be stacked and vmapped)."""

    feats: Array  # [n, m, f]
    targets: Array  # [n, m]
    x0: Array  # [D] initial model shared by all nodes
    x_star: Array  # [D] exact minimiser of F (NaN if unknown)
    f_star: Array  # [] F(x_star) (NaN if unknown)
    l2: Array  # [] L2 regularisation weight (traced: a sweep over it does not recompile)


@dataclass(frozen=True)
class ProblemOps:
    """Static, jittable functions of a problem kind. Hashable by value: equal ops share
    compiled code, so runs that differ only in data, seed or step size never recompile."""

    kind: str
    dim: int
    batch_size: int | None
    classify: bool
    mlp_shape: tuple[int, int, int] = (0, 0, 0)  # (features, hidden, classes)

    def loss(self, x: Array, feats: Array, targets: Array, l2: Array) -> Array:
        """Mean loss over the given samples plus (l2/2) |x|^2."""
        if self.kind == "least_squares":
            r = feats @ x - targets
            data_loss = 0.5 * jnp.mean(r * r)
        elif self.kind == "logistic":
            s = feats @ x
            data_loss = jnp.mean(jax.nn.softplus(s) - targets * s)
        else:
            logits = _mlp_logits(x, feats, self.mlp_shape)
            lse = jax.nn.logsumexp(logits, axis=-1)
            picked = jnp.take_along_axis(logits, targets.astype(jnp.int32)[:, None], -1)[:, 0]
            data_loss = jnp.mean(lse - picked)
        return data_loss + 0.5 * l2 * jnp.dot(x, x)

    def local_grad(self, x: Array, data: ProblemData, i: Array, key: Array) -> Array:
        """Gradient of f_i at x: exact, or on a minibatch drawn with replacement from `key`."""
        feats, targets = data.feats[i], data.targets[i]
        if self.batch_size is not None:
            idx = jax.random.randint(key, (self.batch_size,), 0, feats.shape[0])
            feats, targets = feats[idx], targets[idx]
        return jax.grad(self.loss)(x, feats, targets, data.l2)

    def global_loss(self, x: Array, data: ProblemData) -> Array:
        f = data.feats.reshape(-1, data.feats.shape[-1])
        return self.loss(x, f, data.targets.reshape(-1), data.l2)

    def accuracy(self, x: Array, data: ProblemData) -> Array:
        f = data.feats.reshape(-1, data.feats.shape[-1])
        t = data.targets.reshape(-1)
        if self.kind == "logistic":
            return jnp.mean((f @ x > 0) == (t > 0.5))
        if self.kind == "mlp":
            logits = _mlp_logits(x, f, self.mlp_shape)
            return jnp.mean(jnp.argmax(logits, -1) == t.astype(jnp.int32))
        return jnp.array(jnp.nan, dtype=x.dtype)


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


def make_problem(spec: Problem, n: int, seed: int,
                 dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    """Build the problem's static functions and its seeded per-node data."""
    batch = None if spec.batch_size is None else min(spec.batch_size, spec.samples_per_node)
    if spec.kind == "least_squares":
        arrays = _least_squares(spec, n, seed)
        ops = ProblemOps("least_squares", spec.dim, batch, classify=False)
    elif spec.kind == "logistic":
        arrays = _logistic(spec, n, seed)
        ops = ProblemOps("logistic", spec.dim, batch, classify=True)
    else:
        arrays = _digits_mlp(spec, n, seed)
        shape = (arrays[0].shape[-1], spec.hidden, 10)
        ops = ProblemOps("mlp", arrays[2].shape[0], batch, classify=True, mlp_shape=shape)
    data = ProblemData(*(jnp.asarray(a, dtype=dtype) for a in (*arrays, spec.l2)))
    return ops, data
