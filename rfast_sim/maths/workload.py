"""The workload of a node's step: XLA's cost analysis of one local gradient, and its measured
time on this machine.

The maths side of ``timing.compute.mean: model``: the timing side receives the cost as two
plain numbers (:class:`rfast_sim.timing.devices.StepCost`) and turns it into seconds on each
device class by the roofline. One local step is the gradient of the problem's loss on one
minibatch at the scenario's batch size and dtype (a node's whole shard for exact gradients),
costed alone: never the replay's scan, whose body XLA counts once whatever its length.
Bytes accessed follow XLA:CPU's fusion decisions, so they approximate a GPU's (which fuses
much the same elementwise chains into the matmuls' neighbours).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp

from rfast_sim.maths.problems import ProblemData, ProblemOps, make_problem
from rfast_sim.scenario import Problem, ScenarioError
from rfast_sim.timing.devices import StepCost

_COSTS: dict[Hashable, StepCost] = {}  # by the compile key: the ops and the step's shapes


def local_step(ops: ProblemOps, data: ProblemData) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """(the step, its arguments): the loss's gradient on one minibatch of node 0's samples
    (with replacement, as the runs draw them), or on its whole shard (masked where shards
    are padded) for exact gradients."""
    feats, targets = data.feats[0], data.targets[0]
    grad = jax.grad(ops.loss)
    if ops.batch_size is not None:
        idx = jnp.arange(ops.batch_size) % feats.shape[0]
        return grad, (data.x0, feats[idx], targets[idx], data.l2)
    mask = jnp.arange(feats.shape[0]) < data.counts[0] if ops.padded else None
    return grad, (data.x0, feats, targets, data.l2, mask)


def cost_of(fn: Callable[..., Any], *args: Any) -> StepCost:
    """FLOPs and bytes accessed of `fn` jitted on `args`, by XLA's cost analysis."""
    return summed_cost(jax.jit(fn).lower(*args).compile().cost_analysis())


def summed_cost(analysis: Any) -> StepCost:
    """A cost analysis as JAX returns it: a dict, or in older versions a list of dicts (one
    per computation), summed; ScenarioError where the backend gives none."""
    entries: list[dict[str, float]] = [
        e for e in (analysis if isinstance(analysis, list | tuple) else [analysis]) if e]
    if not entries:
        raise ScenarioError("timing.compute.mean: model: this JAX backend gives no cost "
                            "analysis of the step; give the mean in seconds")
    return StepCost(flops=float(sum(e.get("flops", 0.0) for e in entries)),
                    bytes_accessed=float(sum(e.get("bytes accessed", 0.0) for e in entries)))


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((tuple(a.shape), str(a.dtype)) if a is not None else None for a in args)


def step_cost(ops: ProblemOps, data: ProblemData) -> StepCost:
    """The cost of one local step, cached with the compile key (equal ops and shapes: every
    seed and step size of a scenario shares it)."""
    fn, args = local_step(ops, data)
    key = (ops, _signature(args))
    if key not in _COSTS:
        _COSTS[key] = cost_of(fn, *args)
    return _COSTS[key]


def problem_cost(problem: Problem | None, nodes: int, seed: int,
                 dtype: str) -> tuple[ProblemOps, ProblemData, StepCost]:
    """A problem (built at `seed`) and its local step's cost, without running anything."""
    if problem is None:
        raise ScenarioError("timing.compute.mean: model times the problem's local step, and a "
                            "timing-only run (problem: null) has none")
    ops, data = make_problem(problem, nodes, seed, dtype)
    return ops, data, step_cost(ops, data)


def measure_step(ops: ProblemOps, data: ProblemData, device: Any = None,
                 repeats: int = 200) -> dict[str, float]:
    """The jitted step's wall time on `device` (default: JAX's first): the median and the
    fastest of `repeats` calls after a warm-up (a shared machine's noise inflates the
    median, rarely the minimum)."""
    fn, args = local_step(ops, data)
    device = device or jax.devices()[0]
    args = jax.device_put(args, device)
    step = jax.jit(fn)
    jax.block_until_ready(step(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(*args))
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}
