"""The timing half of a compiled scenario: the settings the clocks, links, faults, devices and
the engine read, and nothing else (the runner's plan builds it once, from the scenario)."""

from __future__ import annotations

from dataclasses import dataclass

from rfast_sim.scenario import Device, RunSpec, Timing


@dataclass(frozen=True)
class TimingPlan:
    """What a run's events depend on: the network's size and timing settings, the run's
    length and engine, the device classes (``mean: model``) and the dtype their roofline
    counts in. The same for every algorithm and seed of a scenario."""

    nodes: int
    timing: Timing
    run: RunSpec
    devices: tuple[Device, ...] = ()
    dtype: str = "float64"

    def message_bytes(self, dim: int) -> float:
        """Bytes per packet: the configured size, or dim words for ``message_bytes: auto``."""
        mb = self.timing.message_bytes
        if mb == "auto":
            return float(dim * (8 if self.dtype == "float64" else 4))
        return float(mb)
