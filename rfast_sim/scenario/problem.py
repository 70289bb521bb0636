"""The `problem` block: a built-in kind, a dataset x model x loss, or a registered kind.

A leaf module (no JAX): kind, model, loss and partition names are checked against the
registries of :mod:`rfast_sim.scenario.problem_kinds`; files must exist. What needs the data
or JAX (labels, shapes, the model applied to a batch) is checked when the problem is built,
before any simulation starts.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from rfast_sim.scenario.base import Strict
from rfast_sim.scenario.problem_kinds import (
    ACTIVATIONS,
    LOSSES,
    MODELS,
    PARTITIONS,
    PROBLEM_KINDS,
    SOURCES,
    Family,
)

TABLE_SUFFIXES = (".npz", ".csv", ".parquet")
MODEL_KEYS = {"linear": ("bias",), "mlp": ("hidden", "activation", "bias"),
              "cnn": ("channels", "kernel", "hidden", "activation"),
              "python": ("entry", "path", "options")}
PARTITION_KEYS = {"iid": (), "dirichlet": ("alpha",), "shards": ("classes_per_node",),
                  "by_key": ("key",)}


def _known(family: Family, name: str, field: str) -> None:
    if name not in family.names():
        close = difflib.get_close_matches(name, family.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{field}: unknown {family.what} {name!r}{hint} (known: "
                         f"{', '.join(family.names())})")


def _only(model: Strict, kind: str, allowed: tuple[str, ...], what: str) -> None:
    """Refuse keys set explicitly that `kind` does not read (a silently ignored key misleads)."""
    extra = sorted(set(model.model_fields_set) - set(allowed) - {"kind"})
    if extra:
        raise ValueError(f"{extra[0]}: not a key of {what} {kind!r} (its keys: "
                         f"{', '.join(k for k in allowed if k != 'kind') or 'none'})")


class Heterogeneity(Strict):
    kind: Literal["none", "shift", "label_skew"] = Field(
        "shift", description="built-in kinds: none, shifted local optima (least squares) or "
        "Dirichlet label skew")
    scale: float = Field(1.0, ge=0, description="least squares: spread of local optima")
    alpha: float = Field(0.5, gt=0, description="label_skew: Dirichlet concentration")


class ModelSpec(Strict):
    """A model: linear | mlp | cnn | python (your own `init` / `apply` pair) | registered."""

    kind: str = Field("linear", description="a registered model (rfast-sim list)")
    bias: bool = Field(True, description="linear / mlp: affine layers")
    hidden: list[int] = Field([32], description="mlp / cnn: dense hidden widths")
    activation: str = Field("relu", description=f"mlp / cnn: {', '.join(ACTIVATIONS)}")
    channels: list[int] = Field([8, 16], description="cnn: channels of each conv layer")
    kernel: int = Field(3, ge=1, description="cnn: kernel size (k x k on images, k on "
                        "sequences)")
    entry: str | None = Field(None, description="python: 'module:function' returning "
                              "(init, apply)")
    path: str | None = Field(None, description="python: folder to import the module from "
                             "(default: the scenario file's folder)")
    options: dict[str, Any] = Field({}, description="python: keyword arguments of the function")

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        _known(MODELS, self.kind, "kind")
        if self.kind in MODEL_KEYS:
            _only(self, self.kind, MODEL_KEYS[self.kind], "model")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown {self.activation!r} (known: "
                             f"{', '.join(ACTIVATIONS)})")
        if any(h < 1 for h in [*self.hidden, *self.channels]):
            raise ValueError("hidden: layer widths must be >= 1")
        entry = self.entry or ""
        if self.kind == "python" and (entry.count(":") != 1 or not all(entry.split(":"))):
            raise ValueError(f"entry: give 'module:function' (got {self.entry!r})")
        return self

    def dumped(self) -> dict[str, Any]:
        """Plain data with only the keys its kind reads (all of them for a registered kind)."""
        keys = MODEL_KEYS.get(self.kind)
        return self.model_dump(mode="json", include=None if keys is None else {*keys, "kind"})

    def static_key(self) -> tuple:
        """The spec as a hashable tuple (keys the compile cache)."""
        return tuple(sorted((k, repr(v)) for k, v in self.dumped().items()))

    def module_file(self) -> Path | None:
        """python: the module's source file, if it can be found without importing it."""
        if self.entry is None:
            return None
        module = self.entry.split(":")[0]
        if self.path is not None:
            base = Path(self.path, *module.split("."))
            for cand in (base.with_suffix(".py"), base / "__init__.py"):
                if cand.is_file():
                    return cand
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        return Path(spec.origin) if spec is not None and spec.origin else None


class Mnist1dSpec(Strict):
    """MNIST-1D's generator options (``source: mnist1d``); the defaults are the paper's."""

    samples: int = Field(5000, ge=10, description="samples made, train + test (the first 80% "
                         "train), samples // 10 per class")
    scale: float = Field(0.4, ge=0, lt=2, description="amplitude x (1 + scale U(-1/2, 1/2))")
    max_translation: int = Field(48, ge=1, le=72, description="rolled by 0 .. this - 1 places")
    corr_noise: float = Field(0.25, ge=0, description="std of the smoothed noise where the "
                              "signal is zero")
    iid_noise: float = Field(0.02, ge=0, description="std of the noise added everywhere")
    shear: float = Field(0.75, ge=0, description="slope of a random ramp: shear U(-1/2, 1/2)")
    seed: int = Field(42, ge=0, description="the generator's seed (not the scenario's: every "
                      "scenario sees the same set unless this changes)")

    def nbytes(self) -> int:
        """Bytes of the set as float64 features (40 per sample) and labels."""
        return self.samples // 10 * 10 * 41 * 8


class PartitionSpec(Strict):
    """How the training set is split over the nodes."""

    kind: str = Field("iid", description="a registered partition (rfast-sim list)")
    alpha: float = Field(0.5, gt=0, description="dirichlet: concentration (small = skewed)")
    classes_per_node: int = Field(2, ge=1, description="shards: classes (shards) per node")
    key: str = Field("node", description="by_key: the array / column holding node ids")

    @model_validator(mode="after")
    def _check(self) -> PartitionSpec:
        _known(PARTITIONS, self.kind, "kind")
        if self.kind in PARTITION_KEYS:
            _only(self, self.kind, PARTITION_KEYS[self.kind], "partition")
        return self

    def dumped(self) -> dict[str, Any]:
        keys = PARTITION_KEYS.get(self.kind)
        return self.model_dump(mode="json", include=None if keys is None else {*keys, "kind"})


class Problem(Strict):
    """The objective. Built-in kinds generate their data; `dataset` reads yours."""

    kind: str = Field("least_squares", description="a registered problem kind (rfast-sim "
                      "list); each reads its own keys of this block")
    dim: int = Field(10, ge=1, description="features (least_squares, logistic)")
    samples_per_node: int = Field(50, ge=1, description="built-in kinds: samples per node")
    heterogeneity: Heterogeneity = Field(Heterogeneity(), description="built-in kinds: how "
                                         "the nodes' data differ")
    batch_size: int | None = Field(None, ge=1, description="null = exact local gradient")
    l2: float = Field(1e-3, ge=0, description="weight of the (l2/2)|x|^2 regulariser")
    noise: float = Field(0.1, ge=0, description="least squares: label noise std")
    hidden: int = Field(16, ge=1, description="mlp: hidden units")
    # dataset
    file: str | None = Field(None, description="dataset: .npz, .csv or .parquet (relative to "
                             "the scenario file)")
    source: str | None = Field(None, description=f"dataset: {', '.join(SOURCES)} "
                               "(scikit-learn's bundled sets; MNIST-1D generated here)")
    mnist1d: Mnist1dSpec = Field(Mnist1dSpec(), description="source mnist1d: the generator's "
                                 "options (held out: its own 20% unless test_fraction is set)")
    x_key: str = Field("x", description=".npz: the features array")
    y_key: str = Field("y", description=".npz: the labels / targets array")
    features: list[str] | None = Field(None, description="table: feature columns (default: "
                                       "every column but the label and the by_key column)")
    label: str = Field("label", description="table: the label / target column")
    input_shape: list[int] | None = Field(None, description="reshape each sample, e.g. "
                                          "[8, 8, 1] for a cnn")
    model: ModelSpec = Field(ModelSpec(), description="dataset: the model trained")
    loss: str = Field("cross_entropy", description="cross_entropy | binary_cross_entropy | mse")
    test_fraction: float = Field(0.0, ge=0, lt=1, description="held out before partitioning")
    test_file: str | None = Field(None, description="a separate test set (same format)")
    partition: PartitionSpec = Field(PartitionSpec(), description="dataset: how the training "
                                     "set is split over the nodes")
    standardize: bool = Field(False, description="scale features (fitted on the train split)")
    data_seed: int | None = Field(None, ge=0, description="seed of split, partition and "
                                  "model init (default: the scenario's seed; replicates share "
                                  "it and differ in timing and minibatches)")
    options: dict[str, Any] = Field({}, description="registered kinds: their own options")

    @model_validator(mode="after")
    def _check(self) -> Problem:
        _known(PROBLEM_KINDS, self.kind, "kind")
        _only(self, self.kind, PROBLEM_KINDS.entries[self.kind].keys, "problem kind")
        if self.kind == "dataset":
            self._check_dataset()
        return self

    def _check_dataset(self) -> None:
        _known(LOSSES, self.loss, "loss")
        if (self.file is None) == (self.source is None):
            raise ValueError("file: give either file (.npz, .csv, .parquet) or source "
                             f"({', '.join(SOURCES)})")
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"source: unknown {self.source!r} (bundled: {', '.join(SOURCES)})")
        if "mnist1d" in self.model_fields_set and self.source != "mnist1d":
            raise ValueError("mnist1d: options of source mnist1d (source is "
                             f"{self.source or self.file!r}); drop the block or set source: "
                             "mnist1d")
        if self.test_file is not None and self.test_fraction > 0:
            raise ValueError("test_fraction: give either test_fraction or test_file")
        for key in ("file", "test_file"):
            path = getattr(self, key)
            if path is None:
                continue
            if Path(path).suffix not in TABLE_SUFFIXES:
                raise ValueError(f"{key}: {path}: use a {', '.join(TABLE_SUFFIXES)} file")
            if not Path(path).is_file():
                raise ValueError(f"{key}: {path}: no such file (paths are relative to the "
                                 "scenario file)")
        if self.input_shape is not None and any(s < 1 for s in self.input_shape):
            raise ValueError(f"input_shape: sizes must be >= 1 (got {self.input_shape})")

    def files(self) -> list[str]:
        """Every file the problem reads (data, python model source): their contents join a
        sweep point's run id."""
        found = [f for f in (self.file, self.test_file) if f is not None]
        module = self.model.module_file() if self.model.kind == "python" else None
        return found + ([str(module)] if module is not None else [])

    def default_target(self) -> dict[str, float]:
        """The comparison target when the scenario names none."""
        if self.kind in ("least_squares", "logistic"):
            return {"opt_gap": 1e-3}
        if self.kind == "mlp":
            return {"accuracy": 0.9}
        if self.kind == "dataset" and self.loss != "mse":
            held_out = self.held_out()
            return {"test_accuracy" if held_out else "accuracy": 0.9}
        return {"grad_norm": 1e-3}

    def held_out(self) -> bool:
        """Is there a test set (a fraction, a file, or MNIST-1D's own)?"""
        return (self.test_fraction > 0 or self.test_file is not None
                or (self.kind == "dataset" and self.source == "mnist1d"))

    def dumped(self) -> dict[str, Any]:
        """The block as plain data with only the keys its kind reads (so adding keys for other
        kinds leaves a built-in scenario's dump, and its sweep run id, as it was)."""
        keys = set(PROBLEM_KINDS.entries[self.kind].keys)
        if self.source != "mnist1d":  # other sources' dumps (and run ids) as they were
            keys.discard("mnist1d")
        data = self.model_dump(mode="json", include=keys)
        for key in ("model", "partition"):
            if key in data:
                data[key] = getattr(self, key).dumped()
        return data


def mlp_dim(hidden: int, features: int = 64, classes: int = 10) -> int:
    """Parameters of the digits MLP (64 features, `hidden` tanh units, 10 classes)."""
    return features * hidden + hidden + hidden * classes + classes
