"""Datasets from files (.npz, CSV, parquet), scikit-learn's bundled sets or MNIST-1D (generated
here), checked on reading.

Every error names the file and the key or column, and the fix. Reads are cached on the file's
path, size and modification time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rfast_sim.scenario import Problem, ScenarioError


@dataclass(frozen=True)
class Table:
    x: np.ndarray  # [N, ...] float features
    y: np.ndarray  # [N, ...] labels or targets
    keys: np.ndarray | None  # [N] by_key node ids


def _stamp(path: str) -> tuple[str, int, int]:
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"problem.file: {path}: no such file (paths are relative to the "
                            "scenario file)")
    st = p.stat()
    return str(p.resolve()), st.st_size, st.st_mtime_ns


def read(spec: Problem, which: str = "file") -> Table:
    """The table of `spec.file` / `spec.test_file` / `spec.source`, as checked arrays (MNIST-1D:
    `which` "file" is its training set, or the whole set when `test_fraction` splits it
    here; "test_file" is its own test set)."""
    key = spec.partition.key if spec.partition.kind == "by_key" and which == "file" else None
    if spec.source == "mnist1d":
        return _checked(_mnist1d(spec, which), f"source mnist1d ({which})", spec, key)
    if which == "file" and spec.source is not None:
        return _checked(_bundled(spec.source), f"source {spec.source}", spec, key)
    path = getattr(spec, which)
    assert path is not None
    cols = tuple(spec.features) if spec.features is not None else None
    where = f"problem.{which}: {path}"
    return _checked(_read_file(*_stamp(path), spec.x_key, spec.y_key, cols, spec.label, key,
                               where), where, spec, key)


def own_test_set(spec: Problem) -> bool:
    """Does the source bring its own test set (MNIST-1D unless `test_fraction` is given)?"""
    return spec.source == "mnist1d" and spec.test_fraction == 0


def _mnist1d(spec: Problem, which: str) -> Table:
    from rfast_sim.maths.problems.mnist1d import Mnist1dOptions, generate

    x, y, tx, ty = generate(Mnist1dOptions(**spec.mnist1d.model_dump()))
    if which == "test_file":
        return Table(tx, ty, None)
    if spec.test_fraction > 0:  # the whole set, split by the scenario's own rule
        return Table(np.concatenate([x, tx]), np.concatenate([y, ty]), None)
    return Table(x, y, None)


@functools.lru_cache(maxsize=4)
def _bundled(source: str) -> Table:
    import sklearn.datasets as sk  # a runtime dependency; imported here: it is slow

    data = getattr(sk, f"load_{source}")()
    x = data.data / 16.0 if source == "digits" else data.data  # digits as the mlp kind has them
    return Table(np.asarray(x, dtype=float), np.asarray(data.target), None)


@functools.lru_cache(maxsize=8)
def _read_file(path: str, _size: int, _mtime: int, x_key: str, y_key: str,
               features: tuple[str, ...] | None, label: str, key: str | None,
               where: str) -> Table:
    if path.endswith(".npz"):
        return _read_npz(path, x_key, y_key, key, where)
    return _read_frame(path, features, label, key, where)


def _read_npz(path: str, x_key: str, y_key: str, key: str | None, where: str) -> Table:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:
        raise ScenarioError(f"{where}: not a readable .npz file ({type(err).__name__})") from None
    for name, field in ((x_key, "x_key"), (y_key, "y_key"), (key, "partition.key")):
        if name is not None and name not in arrays:
            raise ScenarioError(f"{where}: no array {name!r} (set problem.{field}; the file "
                                f"holds {', '.join(arrays) or 'nothing'})")
    return Table(arrays[x_key], arrays[y_key], arrays[key] if key is not None else None)


def _read_frame(path: str, features: tuple[str, ...] | None, label: str, key: str | None,
                where: str) -> Table:
    import pandas as pd

    try:
        frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
    except Exception as err:
        raise ScenarioError(f"{where}: not a readable table ({type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"
                            ) from None
    cols = list(features) if features is not None else [
        c for c in frame.columns if c not in (label, key)]
    for name, field in [(label, "label"), (key, "partition.key")] + [(c, "features")
                                                                     for c in cols]:
        if name is not None and name not in frame.columns:
            raise ScenarioError(f"{where}: no column {name!r} (set problem.{field}; columns: "
                                f"{', '.join(map(str, frame.columns))})")
    if not cols:
        raise ScenarioError(f"{where}: no feature columns besides {label!r}")
    try:
        x = frame[cols].to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = next(c for c in cols if not pd.api.types.is_numeric_dtype(frame[c]))
        raise ScenarioError(f"{where}: column {bad!r} is not numeric (list the numeric "
                            "columns in problem.features)") from None
    return Table(x, frame[label].to_numpy(), frame[key].to_numpy() if key else None)


def _check_values(x: np.ndarray, y: np.ndarray, where: str, loss: str) -> None:
    for arr, name in ((x, "features"), (y, "labels")):
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ScenarioError(f"{where}: {name} hold NaN or inf (sample {bad[0]}); clean "
                                "or drop those samples")
    if loss != "mse" and (y.ndim != 1 or np.any(y != np.round(y)) or np.any(y < 0)):
        raise ScenarioError(f"{where}: loss {loss} needs one integer class label >= 0 per "
                            "sample (got other values); use loss: mse for real targets")
    if loss == "binary_cross_entropy" and np.any(y > 1):
        raise ScenarioError(f"{where}: binary_cross_entropy needs 0/1 labels (got "
                            f"{int(y.max())}); use cross_entropy for more classes")


def _checked(t: Table, where: str, spec: Problem, key: str | None) -> Table:
    """Lengths agree, values are finite numbers, labels fit the loss, the shape fits."""
    n = len(t.x)
    for arr, name in ((t.y, "labels"), (t.keys, f"{key!r}")):
        if arr is not None and len(arr) != n:
            raise ScenarioError(f"{where}: {n} samples but {len(arr)} {name}; give one per "
                                "sample")
    if n == 0:
        raise ScenarioError(f"{where}: holds no samples")
    try:
        x = np.asarray(t.x, dtype=float)
        y = np.asarray(t.y, dtype=float)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: features and labels must be numbers") from None
    _check_values(x, y, where, spec.loss)
    if spec.input_shape is not None:
        size = int(np.prod(x.shape[1:]))
        if size != int(np.prod(spec.input_shape)):
            raise ScenarioError(f"problem.input_shape: {spec.input_shape} does not hold the "
                                f"{size} features per sample of {where}")
        x = x.reshape(n, *spec.input_shape)
    keys = None if t.keys is None else np.asarray(t.keys, dtype=float)
    return Table(x, y, keys)
