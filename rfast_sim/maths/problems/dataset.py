"""The `dataset` problem kind: your data x a model x a loss, a held-out test set, partitioned.

The split, the partition and the model's initial parameters are drawn from ``data_seed`` (the
scenario's seed by default), so every replicate seed of a run shares them and replicates differ
in timing and minibatches only. Shards of unequal size are padded to a bucketed size; masks keep
padding out of exact gradients and metrics, and minibatches are drawn among a node's own samples.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rfast_sim.maths.problems import datasets
from rfast_sim.maths.problems.base import ProblemData, ProblemOps
from rfast_sim.maths.problems.losses import Loss
from rfast_sim.maths.problems.partitions import bucket, check_nonempty
from rfast_sim.scenario import Problem, ScenarioError
from rfast_sim.scenario.problem_kinds import LOSSES, MODELS, PARTITIONS
from rfast_sim.scenario.seeding import stream
from rfast_sim.scenario.tracefiles import digest

Array = jax.Array


@dataclass(frozen=True)
class Prepared:
    """The seed-independent numpy side of a dataset problem."""

    feats: np.ndarray  # [n, m, *shape] padded shards
    targets: np.ndarray  # [n, m, *target_shape]
    counts: np.ndarray  # [n]
    test_feats: np.ndarray
    test_targets: np.ndarray


def split(spec: Problem, table: datasets.Table, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of the file: `test_fraction` of them held out at random."""
    n = len(table.x)
    if spec.test_fraction == 0:
        return np.arange(n), np.arange(0)
    perm = stream(seed, "dataset-split").permutation(n)
    n_test = max(1, round(spec.test_fraction * n))
    if n_test >= n:
        raise ScenarioError(f"problem.test_fraction: {spec.test_fraction} of {n} samples leaves "
                            "no training sample")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _pad(x: np.ndarray, parts: list[np.ndarray], m: int) -> np.ndarray:
    out = np.zeros((len(parts), m, *x.shape[1:]), dtype=x.dtype)
    for i, p in enumerate(parts):
        out[i, : len(p)] = x[p]
    return out


def prepare_data(spec: Problem, n: int) -> Prepared:
    """Read, split, standardise (train statistics) and partition; pad the shards."""
    assert spec.data_seed is not None
    table = datasets.read(spec)
    train, test = split(spec, table, spec.data_seed)
    x, y = table.x[train], table.y[train]
    if spec.test_file is not None or datasets.own_test_set(spec):
        t = datasets.read(spec, "test_file")
        if t.x.shape[1:] != x.shape[1:]:
            raise ScenarioError(f"problem.test_file: samples of shape {list(t.x.shape[1:])}, "
                                f"the training file's are {list(x.shape[1:])}")
        tx, ty = t.x, t.y
    else:
        tx, ty = table.x[test], table.y[test]
    if spec.standardize:
        mean, std = x.mean(0), x.std(0)
        std = np.where(std > 0, std, 1.0)
        x, tx = (x - mean) / std, (tx - mean) / std
    if n > len(x):
        raise ScenarioError(f"nodes: {n} nodes but only {len(x)} training samples; use fewer "
                            "nodes or more data")
    keys = table.keys[train] if table.keys is not None else None
    labels = y.astype(np.int64) if spec.loss != "mse" else None
    part_fn = PARTITIONS.resolve(spec.partition.kind)
    parts = part_fn(labels, keys, n, spec.partition, stream(spec.data_seed, "partition"),
                    len(x))
    check_nonempty(parts, spec.partition.kind)
    counts = np.array([len(p) for p in parts])
    m = int(counts[0]) if np.all(counts == counts[0]) else bucket(int(counts.max()))
    return Prepared(_pad(x, parts, m), _pad(y, parts, m), counts, tx, ty)


@functools.lru_cache(maxsize=16)
def _prepared(spec_json: str, n: int, stamps: tuple) -> Prepared:
    return prepare_data(Problem.model_validate(json.loads(spec_json)), n)


def _outputs(loss: Loss, p: Prepared) -> int:
    if loss.classify:
        classes = int(max(p.targets.max(), p.test_targets.max(initial=0))) + 1
        return loss.outputs(classes)
    return loss.outputs(int(np.prod(p.targets.shape[2:])))


def _masked_mean(values: Array, mask: Array | None) -> Array:
    if mask is None:
        return jnp.mean(values)
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)


def _zero_padding(feats: Array, mask: Array | None) -> Array:
    """Padding rows as zeros (whatever they hold, no NaN reaches a gradient)."""
    if mask is None:
        return feats
    return jnp.where(mask.reshape(-1, *([1] * (feats.ndim - 1))), feats, 0.0)


def _check_model(spec: Problem, init: Any, apply: Any, example: Array, batch: Array,
                 outputs: int, loss: Loss) -> Any:
    where = (f"problem.model ({spec.model.entry})" if spec.model.kind == "python" else
             f"problem.model ({spec.model.kind})")
    try:  # shapes only: nothing of the model's size is allocated before the memory check
        params = jax.eval_shape(init, jax.random.PRNGKey(spec.data_seed or 0), example)
    except Exception as err:
        raise ScenarioError(f"{where}: init failed on an example of shape "
                            f"{list(example.shape)}: {type(err).__name__}: "
                            f"{_line(err)}") from None
    try:
        out = jax.eval_shape(apply, params, batch)
    except Exception as err:
        raise ScenarioError(f"{where}: apply failed on inputs of shape {list(batch.shape)}: "
                            f"{type(err).__name__}: {_line(err)}; check the model against the "
                            "data's shape (problem.input_shape)") from None
    want = (batch.shape[0], outputs)
    if getattr(out, "shape", None) is None or int(np.prod(out.shape)) != int(np.prod(want)) or \
            out.shape[0] != batch.shape[0]:
        raise ScenarioError(f"{where}: apply returns {getattr(out, 'shape', type(out))} for "
                            f"{batch.shape[0]} samples; loss {loss.name} needs {list(want)} "
                            "(one row of outputs per sample)")
    return params


def _line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else ""


@dataclass(frozen=True)
class _Model:
    prepared: Prepared
    loss: Loss
    outputs: int
    init: Any
    apply: Any
    example: Array
    shapes: Any  # the params pytree as jax.ShapeDtypeStruct leaves


def _model(spec: Problem, n: int, dtype: str) -> _Model:
    """Data prepared, the model built and checked against them (shapes only)."""
    stamps = tuple(digest(f) for f in spec.files())
    p = _prepared(json.dumps(spec.dumped(), sort_keys=True), n, stamps)
    loss: Loss = LOSSES.resolve(spec.loss)()
    outputs = _outputs(loss, p)
    init, apply = MODELS.resolve(spec.model.kind)(spec.model, outputs)
    example = jnp.asarray(p.feats[0, :1], dtype=dtype)
    batch = jnp.asarray(p.feats[0, : min(spec.batch_size or 8, 8)], dtype=dtype)
    shapes = _check_model(spec, init, apply, example, batch, outputs, loss)
    return _Model(p, loss, outputs, init, apply, example, shapes)


def dataset_dim(spec: Problem, n: int) -> int:
    """The model's flat dimension, from ``jax.eval_shape`` (for the memory estimate)."""
    shapes = _model(spec, n, "float64").shapes
    return int(sum(np.prod(a.shape) for a in jax.tree_util.tree_leaves(shapes)))


def dataset_problem(spec: Problem, n: int, seed: int,
                    dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    """The dataset kind's ops and data (the same for every replicate `seed`)."""
    mod = _model(spec, n, dtype)
    p, loss, outputs, apply = mod.prepared, mod.loss, mod.outputs, mod.apply
    params = mod.init(jax.random.PRNGKey(spec.data_seed or 0), mod.example)
    x0, unravel = ravel_pytree(params)

    def predict(x: Array, feats: Array) -> Array:
        return apply(unravel(x), feats)

    def data_loss(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
        return _masked_mean(loss.per_sample(predict(x, _zero_padding(feats, mask)), targets),
                            mask)

    def correct(x: Array, feats: Array, targets: Array, mask: Array | None) -> Array:
        if loss.correct is None:
            return jnp.array(jnp.nan, dtype=x.dtype)
        hits = loss.correct(predict(x, _zero_padding(feats, mask)), targets)
        return _masked_mean(hits.astype(x.dtype), mask)

    shapes = tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree_util.tree_leaves(params))
    module = spec.model.module_file() if spec.model.kind == "python" else None
    key = ("dataset", spec.model.static_key(), digest(str(module)) if module else None,
           loss.name, tuple(p.feats.shape[2:]), outputs,
           str(jax.tree_util.tree_structure(params)), shapes)
    padded = not bool(np.all(p.counts == p.feats.shape[1]))
    ops = ProblemOps("dataset", int(x0.shape[0]), spec.batch_size, loss.classify, key, padded,
                     has_test=len(p.test_feats) > 0, data_loss=data_loss, correct=correct)

    def arr(a: Any) -> Array:
        return jnp.asarray(a, dtype=dtype)

    nan = jnp.full(x0.shape, jnp.nan, dtype=dtype)
    data = ProblemData(arr(p.feats), arr(p.targets), arr(x0), nan, arr(np.nan), arr(spec.l2),
                       jnp.asarray(p.counts, dtype=jnp.int32), arr(p.test_feats),
                       arr(p.test_targets))
    return ops, data
