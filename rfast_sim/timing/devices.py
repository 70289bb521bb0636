"""Devices on the timing side: the roofline time of a step on a device class, and which class
each node has.

The maths side states a local step's cost as two plain numbers (:class:`StepCost`: FLOPs and
bytes accessed, from XLA's cost analysis in :mod:`rfast_sim.maths.workload`); everything here is
arithmetic on them, so the timing side stays free of JAX. A node's mean compute time is the
roofline time of the step on its device,

    overhead_s + max(flops / peak[dtype], bytes / memory_bandwidth) / efficiency,

and the clocks draw the compute law's unit-mean shape times that mean
(:func:`rfast_sim.timing.clocks.node_factors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from rfast_sim.scenario import DeviceClass
from rfast_sim.scenario.seeding import stream
from rfast_sim.timing.plan import TimingPlan


@dataclass(frozen=True)
class StepCost:
    """The cost of one local step (a minibatch gradient): floating-point operations and
    bytes of memory accessed."""

    flops: float
    bytes_accessed: float


@dataclass(frozen=True)
class Prediction:
    """A step's roofline time on one device class, and which roof bounds it."""

    device: str
    dtype: str
    flops: float
    bytes_accessed: float
    step_time_s: float
    bound: Literal["compute", "memory"]

    def record(self) -> dict[str, float | str]:
        """As summary.json and `rfast-sim profile --json` write it."""
        return {"name": self.device, "dtype": self.dtype, "flops": self.flops,
                "bytes": self.bytes_accessed, "step_time_s": self.step_time_s,
                "bound": self.bound}


def roofline(cost: StepCost, device: DeviceClass, dtype: str) -> Prediction:
    """The step's time on `device` in `dtype`: the overhead plus the larger of its compute
    time at peak and its memory time at full bandwidth, over the sustained efficiency."""
    compute = cost.flops / getattr(device.peak_flops, dtype)
    memory = cost.bytes_accessed / device.memory_bandwidth
    seconds = device.overhead_s + max(compute, memory) / device.efficiency
    return Prediction(device.name, dtype, cost.flops, cost.bytes_accessed, seconds,
                      "compute" if compute >= memory else "memory")


def class_predictions(spec: TimingPlan, cost: StepCost) -> dict[str, Prediction]:
    """The scenario's device classes, by name, with the step's roofline time on each."""
    return {d.name: roofline(cost, d.resolve(), spec.dtype) for d in spec.devices}


def class_counts(spec: TimingPlan) -> dict[str, int]:
    """How many nodes each class has (the same for every seed: only which nodes is drawn)."""
    counts = {d.name: d.count or len(d.nodes or []) for d in spec.devices}
    for d in spec.devices:
        if d.default:
            counts[d.name] = spec.nodes - sum(counts.values())
    return counts


def assign(spec: TimingPlan, seed: int) -> list[str]:
    """Each node's device class. Explicit `nodes` first; then `count` entries, in order, take
    nodes of a permutation of the rest drawn from the seed's own "devices" stream (the
    "nodes" stream draws the stragglers: sharing it would move them); the default class
    takes what is left."""
    names: list[str | None] = [None] * spec.nodes
    for d in spec.devices:
        for i in d.nodes or []:
            names[i] = d.name
    free = np.array([i for i, name in enumerate(names) if name is None], dtype=np.int64)
    order = stream(seed, "devices").permutation(free)
    pos = 0
    for d in spec.devices:
        for i in order[pos:pos + (d.count or 0)].tolist():
            names[i] = d.name
        pos += d.count or 0
    default = next((d.name for d in spec.devices if d.default), None)
    return [name if name is not None else str(default) for name in names]


def node_means(spec: TimingPlan, seed: int, cost: StepCost) -> np.ndarray:
    """Each node's mean compute time (seconds): its device's roofline time of the step."""
    times = {name: p.step_time_s for name, p in class_predictions(spec, cost).items()}
    return np.array([times[name] for name in assign(spec, seed)], dtype=float)


def compute_rate(spec: TimingPlan, cost: StepCost) -> float:
    """Computations per simulated second of all nodes together (sum over nodes of 1 / mean;
    stragglers and speed factors aside), for the memory estimate."""
    predictions = class_predictions(spec, cost)
    return sum(k / predictions[name].step_time_s for name, k in class_counts(spec).items())
