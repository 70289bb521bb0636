"""Device classes: the shipped table (peak FLOP/s, memory bandwidth, efficiency, per-step
overhead) and the scenario's ``devices:`` entries that put them on nodes.

A leaf module, like :mod:`.kinds`: figures only. The roofline that turns a step's FLOPs and
bytes into seconds, and the assignment of classes to nodes, are the timing side's
(:mod:`rfast_sim.timing.devices`); the sources of the figures are in ``docs/howto/devices.md``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pydantic import Field

from rfast_sim.scenario.base import Strict
from rfast_sim.scenario.kinds import Kind, Registry
from rfast_sim.scenario.network import LinkTiming


@dataclass(frozen=True)
class DeviceKind(Kind):
    """A device class of the table. Peaks are plain (non-tensor-core) FLOP/s, as a dense
    float32 / float64 step uses them; ``efficiency`` is the fraction of the roofline a real
    step sustains; ``overhead_s`` the fixed cost of one step (launches, dispatch)."""

    peak_float32: float = 0.0
    peak_float64: float = 0.0
    memory_bandwidth: float = 0.0  # bytes/s
    efficiency: float = 0.5
    overhead_s: float = 0.0
    source: str = ""


# Peaks and bandwidths: the vendors' datasheets (docs/howto/devices.md names each). Overhead:
# GPUs, 5 us per kernel launch (the order of CUDA's launch latency on these chips) x 10
# kernels for one fused minibatch gradient (XLA emits about that many for a small MLP) =
# 50 us; the CPU, the fastest time of the least-squares step here (35 us; its arithmetic
# takes 0.1 us at peak: the rest is dispatching the jitted call and its few kernels).
# Efficiency: GPUs 0.5 (dense layers at training batch sizes sustain 30-60% of peak); the
# CPU 0.2, what `rfast-sim profile` measured for the shipped MLPs on the project's 2-core
# AMD EPYC box (docs/howto/devices.md has the figures).
_GPU_OVERHEAD = 5e-5
_GPU_EFFICIENCY = 0.5

DEVICES: Registry[DeviceKind] = Registry("device", "name", [
    DeviceKind("v100", "NVIDIA V100 SXM2 (16/32 GB HBM2)", None, 15.7e12, 7.8e12, 900e9,
               _GPU_EFFICIENCY, _GPU_OVERHEAD, "NVIDIA Tesla V100 GPU datasheet"),
    DeviceKind("a100_40gb", "NVIDIA A100 40 GB SXM4 (HBM2)", None, 19.5e12, 9.7e12, 1555e9,
               _GPU_EFFICIENCY, _GPU_OVERHEAD, "NVIDIA A100 Tensor Core GPU datasheet"),
    DeviceKind("a100_80gb", "NVIDIA A100 80 GB SXM4 (HBM2e)", None, 19.5e12, 9.7e12, 2039e9,
               _GPU_EFFICIENCY, _GPU_OVERHEAD, "NVIDIA A100 Tensor Core GPU datasheet"),
    DeviceKind("h100_sxm", "NVIDIA H100 SXM5 80 GB (HBM3)", None, 67e12, 34e12, 3.35e12,
               _GPU_EFFICIENCY, _GPU_OVERHEAD, "NVIDIA H100 Tensor Core GPU datasheet"),
    # the T4 datasheet gives no float64 figure: Turing runs it at 1/32 of float32
    DeviceKind("t4", "NVIDIA T4 (16 GB GDDR6); float64 at 1/32 of float32", None, 8.1e12,
               8.1e12 / 32, 320e9, _GPU_EFFICIENCY, _GPU_OVERHEAD,
               "NVIDIA T4 Tensor Core GPU datasheet; NVIDIA Turing GPU Architecture whitepaper"),
    # one x86-64 core: 2 AVX2 FMA units x 8 float32 lanes x 2 FLOP x 3.0 GHz; one DDR4-3200
    # channel (8 bytes x 3200 MT/s)
    DeviceKind("cpu", "one x86-64 core, AVX2 FMA at 3 GHz, one DDR4-3200 channel", None,
               96e9, 48e9, 25.6e9, 0.2, 3.5e-5,
               "Intel 64 and IA-32 Architectures Optimization Reference Manual; JEDEC JESD79-4"),
])

# names people type for the classes above
ALIASES = {"a100": "a100_40gb", "h100": "h100_sxm"}


class PeakFlops(Strict):
    float32: float = Field(gt=0, description="peak float32 FLOP/s (plain, not tensor-core "
                           "TF32)")
    float64: float = Field(gt=0, description="peak float64 FLOP/s (plain, not tensor-core)")


class DeviceNic(LinkTiming):
    """A device class's network interface: `bandwidth` (bytes/s) is its nodes' egress where
    ``timing.nic`` models one (over ``nic.egress``) and the rate of the links out of them;
    `latency` the law of the links out of them. A link's own ``timing.links`` entry and its
    cluster's timing still come first; the scenario's timing fills what is left."""


class DeviceClass(Strict):
    """A device class's figures, resolved (the table's, with the entry's overrides)."""

    name: str = Field(description="the class's name")
    peak_flops: PeakFlops = Field(description="peak FLOP/s by dtype")
    memory_bandwidth: float = Field(gt=0, description="bytes/s")
    efficiency: float = Field(gt=0, le=1, description="fraction of the roofline sustained")
    overhead_s: float = Field(ge=0, description="seconds added to every step")


class Device(Strict):
    """Nodes of one device class: a class of the table (``rfast-sim list``) by name, or a
    custom one with its figures; on `count` nodes drawn from the seed, on explicit `nodes`,
    or (`default`) on every node no other entry names. A figure given here overrides the
    table's; `nic` gives its nodes their own network interface."""

    name: str = Field(description="a class of the device table (v100, a100_40gb, a100_80gb, "
                      "h100_sxm, t4, cpu; a100 and h100 are aliases), or a custom class's name "
                      "(then give peak_flops and memory_bandwidth)")
    count: int | None = Field(None, ge=0, description="nodes of this class, drawn from the "
                              "seed's own `devices` stream")
    nodes: list[int] | None = Field(None, description="explicit node ids of this class")
    default: bool = Field(False, description="every node no other entry names is of this "
                          "class")
    peak_flops: PeakFlops | None = Field(None, description="peak FLOP/s by dtype (a custom "
                                         "class; over the table's)")
    memory_bandwidth: float | None = Field(None, gt=0, description="bytes/s between the "
                                           "device and its memory (over the table's)")
    efficiency: float | None = Field(None, gt=0, le=1, description="fraction of the roofline "
                                     "a step sustains (table: per class; custom: 1.0); "
                                     "calibrate it with rfast-sim profile")
    overhead_s: float | None = Field(None, ge=0, description="seconds added to every step: "
                                     "kernel launches, dispatch (table: per class; custom: 0)")
    nic: DeviceNic | None = Field(None, description="its nodes' NIC: egress bandwidth and the "
                                  "latency law of links out of them (null: the scenario's)")

    def resolve(self) -> DeviceClass:
        """The class's figures: the table's entry (if named) with this entry's overrides."""
        key = ALIASES.get(self.name, self.name)
        if key not in DEVICES:
            if self.peak_flops is None or self.memory_bandwidth is None:
                raise ValueError(unknown_device(self.name))
            return DeviceClass(name=self.name, peak_flops=self.peak_flops,
                               memory_bandwidth=self.memory_bandwidth,
                               efficiency=self.efficiency or 1.0,
                               overhead_s=self.overhead_s or 0.0)
        base = DEVICES[key]
        return DeviceClass(
            name=self.name,
            peak_flops=self.peak_flops or PeakFlops(float32=base.peak_float32,
                                                    float64=base.peak_float64),
            memory_bandwidth=self.memory_bandwidth or base.memory_bandwidth,
            efficiency=self.efficiency or base.efficiency,
            overhead_s=self.overhead_s if self.overhead_s is not None else base.overhead_s)


def table_class(name: str) -> DeviceClass:
    """A class of the table (or an alias) with its own figures."""
    return Device(name=name).resolve()


def unknown_device(name: str) -> str:
    known = [*DEVICES.names(), *ALIASES]
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (f"unknown device {name!r}; {hint}(the table: {', '.join(DEVICES.names())}; a "
            "custom class gives peak_flops and memory_bandwidth)")


def check_devices(devices: list[Device], n: int, from_model: bool) -> None:
    """Every entry names a known or complete class once, in one way (count, nodes or
    default), with node ids in range; together they give every node exactly one class. Their
    compute figures are for ``mean: model`` (`from_model`), which needs them."""
    if from_model and not devices:
        raise ValueError("timing.compute.mean: model needs the nodes' devices; add e.g. "
                         "devices: [{name: v100, default: true}]")
    if devices and not from_model and not any(d.nic for d in devices):
        raise ValueError("devices: device classes set compute times through "
                         "timing.compute.mean: model (a number gives every node that mean) "
                         "and links through nic; set timing.compute.mean: model")
    explicit: set[int] = set()
    for k, d in enumerate(devices):
        _check_entry(k, d, [e.name for e in devices[:k]], n, explicit)
    counted = sum(d.count or 0 for d in devices)
    defaults = [k for k, d in enumerate(devices) if d.default]
    if len(defaults) > 1:
        raise ValueError(f"devices.{defaults[1]}.default: one entry at most is the default")
    if counted + len(explicit) > n:
        k = max(k for k, d in enumerate(devices) if d.count or d.nodes)
        raise ValueError(f"devices.{k}: the entries give {counted + len(explicit)} devices "
                         f"(counts and nodes) for nodes={n}; lower a count")
    if devices and not defaults and counted + len(explicit) < n:
        raise ValueError(f"devices: {n - counted - len(explicit)} of the {n} nodes have no "
                         f"device; give counts (and nodes) summing to nodes={n}, or "
                         "default: true on one entry")


def _check_entry(k: int, d: Device, earlier: list[str], n: int, explicit: set[int]) -> None:
    """One entry: a known or complete class, named once, given in one way, on nodes that
    exist and have no class yet (added to `explicit`)."""
    where = f"devices.{k}"
    try:
        d.resolve()
    except ValueError as err:
        raise ValueError(f"{where}.name: {err}") from None
    if d.name in earlier:
        raise ValueError(f"{where}.name: {d.name!r} is given twice; give one entry per class "
                         "(count or nodes)")
    ways = [w for w, given in (("count", d.count is not None), ("nodes", d.nodes is not None),
                               ("default", d.default)) if given]
    if len(ways) != 1:
        raise ValueError(f"{where}: give one of count, nodes or default: true (got "
                         f"{', '.join(ways) or 'none'})")
    for i in d.nodes or []:
        if not 0 <= i < n:
            raise ValueError(f"{where}.nodes: node ids must be in 0..{n - 1} (got {i})")
        if i in explicit:
            raise ValueError(f"{where}.nodes: node {i} is given a class twice")
        explicit.add(i)
