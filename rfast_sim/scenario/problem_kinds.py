"""Names of the problem side's families and their lazily imported factories.

A leaf module, like :mod:`rfast_sim.scenario.registry` for algorithms: the scenario schema, the
memory estimate, ``rfast-sim list`` and the docs read the names and one-line descriptions here
without importing any problem code (or JAX). Each family maps a name to ``"module:function"``
(built in, imported on first use) or to a callable (registered from outside).

- problem kinds: ``(spec, nodes, seed, dtype) -> (ProblemOps, ProblemData)``
- models: ``(spec: ModelSpec, outputs: int) -> (init, apply)``
- losses: ``(outputs, targets) -> per-sample losses`` (plus whether it classifies)
- partitions: ``(labels, keys, nodes, spec, rng) -> list of index arrays``
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Target = str | Callable[..., Any]


@dataclass(frozen=True)
class Entry:
    target: Target
    description: str
    keys: tuple[str, ...] = ()  # problem kinds: the `problem` keys the kind reads


@dataclass
class Family:
    """One family of named factories (problem kinds, models, losses, partitions)."""

    what: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def add(self, name: str, target: Target, description: str = "",
            keys: tuple[str, ...] = ()) -> None:
        self.entries[name] = Entry(target, description, keys)

    def describe(self) -> dict[str, str]:
        return {k: e.description for k, e in self.entries.items()}

    def resolve(self, name: str) -> Callable[..., Any]:
        """The factory registered under `name`, imported on first use (KeyError if unknown)."""
        entry = self.entries[name]
        if isinstance(entry.target, str):
            module, attr = entry.target.split(":")
            fn = getattr(importlib.import_module(module), attr)
            self.entries[name] = entry = Entry(fn, entry.description, entry.keys)
        assert callable(entry.target)
        return entry.target


_COMMON = ("kind", "batch_size", "l2")
# the built-in kinds keep reading (and dumping) the keys they always had, so old scenario files
# and sweep run ids stay valid
_BUILTIN = (*_COMMON, "dim", "samples_per_node", "heterogeneity", "noise", "hidden")
BUILTIN_KEYS = {"least_squares": _BUILTIN, "logistic": _BUILTIN, "mlp": _BUILTIN}
DATASET_KEYS = (*_COMMON, "file", "source", "x_key", "y_key", "features", "label", "input_shape",
                "model", "loss", "test_fraction", "test_file", "partition", "standardize",
                "data_seed", "mnist1d")
REGISTERED_KEYS = (*_COMMON, "dim", "samples_per_node", "heterogeneity", "options", "data_seed")

PROBLEM_KINDS = Family("problem kind")
PROBLEM_KINDS.add("least_squares", "rfast_sim.maths.problems.builtin:least_squares",
                  "heterogeneous least squares, 0.5 mean(r^2) + l2 (closed-form optimum)",
                  BUILTIN_KEYS["least_squares"])
PROBLEM_KINDS.add("logistic", "rfast_sim.maths.problems.builtin:logistic",
                  "logistic regression without bias (optimum by Newton to machine precision)",
                  BUILTIN_KEYS["logistic"])
PROBLEM_KINDS.add("mlp", "rfast_sim.maths.problems.builtin:digits_mlp",
                  "tanh MLP on scikit-learn's digits, samples drawn per node (training metrics)",
                  BUILTIN_KEYS["mlp"])
PROBLEM_KINDS.add("dataset", "rfast_sim.maths.problems.dataset:dataset_problem",
                  "your data (.npz, CSV, parquet or a bundled set) x a model x a loss, "
                  "held-out test set, partitioned", DATASET_KEYS)

MODELS = Family("model")
MODELS.add("linear", "rfast_sim.maths.problems.models:linear", "affine map (bias: true|false)")
MODELS.add("mlp", "rfast_sim.maths.problems.models:mlp", "dense layers (hidden: [64], activation)")
MODELS.add("cnn", "rfast_sim.maths.problems.models:cnn",
           "small convnet on [H, W, C] images or [L, C] sequences (channels, kernel, hidden, "
           "activation)")
MODELS.add("python", "rfast_sim.maths.problems.models:python_entry",
           "your own pair: entry 'module:function' returning (init, apply)")

LOSSES = Family("loss")
LOSSES.add("cross_entropy", "rfast_sim.maths.problems.losses:cross_entropy",
           "softmax cross-entropy on integer labels (metric: accuracy)")
LOSSES.add("binary_cross_entropy", "rfast_sim.maths.problems.losses:binary_cross_entropy",
           "logistic loss on 0/1 labels, one output (metric: accuracy)")
LOSSES.add("mse", "rfast_sim.maths.problems.losses:mse",
           "0.5 mean squared residual (as least squares)")

PARTITIONS = Family("partition")
PARTITIONS.add("iid", "rfast_sim.maths.problems.partitions:iid",
               "shuffled, split evenly (sizes differ by at most 1)")
PARTITIONS.add("dirichlet", "rfast_sim.maths.problems.partitions:dirichlet",
               "label skew: each class split over nodes by Dirichlet(alpha) shares")
PARTITIONS.add("shards", "rfast_sim.maths.problems.partitions:shards",
               "sorted by label, cut into nodes x classes_per_node shards, k per node")
PARTITIONS.add("by_key", "rfast_sim.maths.problems.partitions:by_key",
               "a per-sample node id (array or column named by `key`)")

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "elu", "softplus", "identity")
# scikit-learn's bundled sets, and MNIST-1D generated from its recipe (no download)
SOURCES = ("digits", "iris", "wine", "breast_cancer", "mnist1d")


def register_problem(name: str, factory: Callable[..., Any], description: str = "",
                     keys: tuple[str, ...] = REGISTERED_KEYS) -> None:
    """Add a problem kind: ``factory(spec, nodes, seed, dtype) -> (ProblemOps, ProblemData)``
    (see :mod:`rfast_sim.maths.problems.base`); scenarios may then name it in ``problem.kind``.
    `keys` are the ``problem`` keys the kind reads (its own options go in ``problem.options``).
    Sweep workers re-register it from ``factory.__module__`` and ``__qualname__``.

    Example: least squares of your own (:doc:`/howto/own_model`)::

        >>> import jax.numpy as jnp, numpy as np, rfast_sim
        >>> from rfast_sim.maths.problems import ProblemOps, problem_data
        >>> def quadratic(spec, nodes, seed, dtype="float64"):
        ...     d, m = spec.options["dim"], 20
        ...     rng = np.random.default_rng(seed)
        ...     feats = rng.normal(size=(nodes, m, d))
        ...     targets = feats @ np.ones(d)                 # x* = ones, loss 0 there
        ...     ops = ProblemOps("quadratic", d, spec.batch_size, classify=False,
        ...                      key=("quadratic", d), data_loss=lambda x, f, t, mask:
        ...                      0.5 * jnp.mean((f @ x - t) ** 2))
        ...     return ops, problem_data(feats, targets, x0=jnp.zeros(d), l2=0.0,
        ...                              x_star=jnp.ones(d), f_star=0.0, dtype=dtype)
        >>> rfast_sim.register_problem("quadratic", quadratic, "my least squares")
        >>> sc = rfast_sim.load_scenario("quickstart", [
        ...     "problem={kind: quadratic, options: {dim: 5}, batch_size: null}",
        ...     "seeds=1", "run.until=20", "algorithms=[{name: rfast, step_size: 0.1}]",
        ...     "compare={baseline: rfast, target: {opt_gap: 1.0e-3}}"])
        >>> res = rfast_sim.run(sc)
        >>> bool(res.metrics["opt_gap"].iloc[-1] < res.metrics["opt_gap"].iloc[0])
        True
    """
    PROBLEM_KINDS.add(name, factory, description, tuple(dict.fromkeys((*_COMMON, *keys))))


def registered_problems() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Kinds registered from outside: (``module:qualname``, description, keys), so a sweep
    worker (another process) can register them again."""
    return {k: (f"{e.target.__module__}:{e.target.__qualname__}", e.description, e.keys)
            for k, e in PROBLEM_KINDS.entries.items()
            if callable(e.target) and not e.target.__module__.startswith("rfast_sim.")}


def reregister(entries: dict[str, tuple[str, str, tuple[str, ...]]]) -> None:
    """Register kinds again in another process (a sweep worker) from their import paths."""
    for name, (path, description, keys) in entries.items():
        if name not in PROBLEM_KINDS.entries:
            module, qual = path.split(":")
            obj: Any = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
            register_problem(name, obj, description, keys)
