"""Models as ``init(key, example_inputs) -> params`` / ``apply(params, inputs) -> outputs``.

The Flax / Haiku convention: ``model.init`` and ``model.apply`` of a Flax module fit as they
are, and so does any pure JAX pair. Params may be any pytree; the problem ravels them once into
the flat vector the algorithms see. The shipped models are plain JAX (``jax.nn``,
``lax.conv``); a user's own pair comes from ``{kind: python, entry: "module:function"}``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.scenario import ModelSpec, ScenarioError

Array = jax.Array
Params = Any
InitFn = Callable[[Array, Array], Params]
ApplyFn = Callable[[Params, Array], Array]
Model = tuple[InitFn, ApplyFn]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu, "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu, "softplus": jax.nn.softplus, "identity": lambda z: z,
}


def _dense(key: Array, fan_in: int, fan_out: int, dtype: Any, zero: bool = False) -> dict:
    w = (jnp.zeros((fan_in, fan_out), dtype) if zero else
         jax.random.normal(key, (fan_in, fan_out), dtype) / jnp.sqrt(fan_in).astype(dtype))
    return {"w": w, "b": jnp.zeros(fan_out, dtype)}


def _flat_features(inputs: Array) -> Array:
    return inputs.reshape(inputs.shape[0], -1)


def linear(spec: ModelSpec, outputs: int) -> Model:
    """``inputs @ w (+ b)``, initialised at zero (a convex model's usual start)."""

    def init(key: Array, example: Array) -> Params:
        layer = _dense(key, _flat_features(example).shape[1], outputs, example.dtype, zero=True)
        return layer if spec.bias else {"w": layer["w"]}

    def apply(params: Params, inputs: Array) -> Array:
        out = _flat_features(inputs) @ params["w"]
        return out + params["b"] if spec.bias else out

    return init, apply


def _mlp_layers(key: Array, sizes: list[int], dtype: Any) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def _mlp_apply(layers: list[dict], z: Array, act: Callable[[Array], Array],
               bias: bool = True) -> Array:
    for k, layer in enumerate(layers):
        z = z @ layer["w"] + (layer["b"] if bias else 0.0)
        if k < len(layers) - 1:
            z = act(z)
    return z


def mlp(spec: ModelSpec, outputs: int) -> Model:
    """Dense layers of widths `hidden` with `activation`, then a linear output layer;
    weights N(0, 1/fan_in), biases zero."""
    act = ACTIVATIONS[spec.activation]

    def init(key: Array, example: Array) -> Params:
        sizes = [_flat_features(example).shape[1], *spec.hidden, outputs]
        layers = _mlp_layers(key, sizes, example.dtype)
        return layers if spec.bias else [{"w": la["w"]} for la in layers]

    def apply(params: Params, inputs: Array) -> Array:
        return _mlp_apply(params, _flat_features(inputs), act, spec.bias)

    return init, apply


def _conv(z: Array, w: Array) -> Array:
    """A 'same' convolution of [batch, H, W, C] images or [batch, L, C] sequences."""
    dims = ("NHWC", "HWIO", "NHWC") if z.ndim == 4 else ("NWC", "WIO", "NWC")
    return jax.lax.conv_general_dilated(z, w, (1,) * (z.ndim - 2), "SAME",
                                        dimension_numbers=dims)


def _pool(z: Array) -> Array:
    """Average pooling by 2 along each spatial axis, while every one is at least 2 wide."""
    if any(s < 2 for s in z.shape[1:-1]):
        return z
    window = (1, *(2,) * (z.ndim - 2), 1)
    return jax.lax.reduce_window(z, 0.0, jax.lax.add, window, window,
                                 "VALID") / float(2 ** (z.ndim - 2))


def cnn(spec: ModelSpec, outputs: int) -> Model:
    """`channels` 'same' convolutions (kernel x kernel on images, kernel on sequences), each
    with `activation` and average pooling by 2, then dense layers `hidden` and the output
    layer. Inputs: [batch, H, W, C] images or [batch, L, C] sequences (MNIST-1D: [40, 1])."""
    act = ACTIVATIONS[spec.activation]

    def features(convs: list[dict], inputs: Array) -> Array:
        if inputs.ndim not in (3, 4):
            raise ValueError(f"cnn needs image- or sequence-shaped inputs, [H, W, C] or [L, C] "
                             f"per sample (got {list(inputs.shape[1:])}); set "
                             "problem.input_shape, e.g. [8, 8, 1] or [40, 1]")
        z = inputs
        for conv in convs:
            z = _pool(act(_conv(z, conv["w"]) + conv["b"]))
        return _flat_features(z)

    def init(key: Array, example: Array) -> Params:
        k_conv, k_dense = jax.random.split(key)
        convs, c_in = [], example.shape[-1]
        window = (spec.kernel,) * (example.ndim - 2)
        for k, c_out in zip(jax.random.split(k_conv, len(spec.channels)), spec.channels,
                            strict=True):
            fan_in = int(np.prod(window)) * c_in
            convs.append({"w": jax.random.normal(k, (*window, c_in, c_out),
                                                 example.dtype) / jnp.sqrt(fan_in),
                          "b": jnp.zeros(c_out, example.dtype)})
            c_in = c_out
        flat = jax.eval_shape(lambda e: features(convs, e), example).shape[1]
        return {"conv": convs,
                "dense": _mlp_layers(k_dense, [flat, *spec.hidden, outputs], example.dtype)}

    def apply(params: Params, inputs: Array) -> Array:
        return _mlp_apply(params["dense"], features(params["conv"], inputs), act)

    return init, apply


def python_entry(spec: ModelSpec, outputs: int) -> Model:
    """The pair returned by the user's ``module:function`` (called with ``outputs=`` and the
    spec's `options` as keywords when it takes them)."""
    fn = load_entry(spec)
    try:
        pair = _call(fn, outputs, spec.options)
    except Exception as err:
        raise ScenarioError(f"problem.model.entry: {spec.entry} raised {type(err).__name__}: "
                            f"{_first_line(err)}; it must return (init, apply)") from None
    if (not isinstance(pair, tuple | list) or len(pair) != 2
            or not all(callable(f) for f in pair)):
        raise ScenarioError(f"problem.model.entry: {spec.entry} must return a pair (init, "
                            f"apply) of functions (got {type(pair).__name__}); e.g. "
                            "`return model.init, model.apply`")
    return pair[0], pair[1]


def _call(fn: Callable[..., Any], outputs: int, options: dict[str, Any]) -> Any:
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    takes = any(p.name == "outputs" or p.kind == p.VAR_KEYWORD for p in params)
    return fn(**({"outputs": outputs} if takes else {}), **options)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def load_entry(spec: ModelSpec) -> Callable[..., Any]:
    """Import ``module:function`` from the spec's folder (the scenario file's) or sys.path."""
    assert spec.entry is not None
    module_name, attr = spec.entry.split(":")
    added = spec.path is not None and spec.path not in sys.path
    if added:
        sys.path.insert(0, str(spec.path))
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        where = f"{spec.path} or sys.path" if spec.path else "sys.path"
        raise ScenarioError(f"problem.model.entry: cannot import {module_name!r} from {where} "
                            f"({type(err).__name__}: {_first_line(err)}); put {module_name}.py "
                            "next to the scenario file or on PYTHONPATH") from None
    finally:
        if added:
            sys.path.remove(str(spec.path))
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ScenarioError(f"problem.model.entry: {module_name} has no function {attr!r}")
    return fn
