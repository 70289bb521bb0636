"""One finished run's record, as the maths drivers and the timing-only runner return it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfast_sim.timing.engine import EventTrace


@dataclass
class Run:
    """One finished run (one algorithm, seed and step size): its trace, sampled metrics and
    final state.

    :ivar name: the algorithm's registered name.
    :ivar seed: the seed (the same seed is the same timing draws for every algorithm).
    :ivar step_size: the step size.
    :ivar trace: the event trace (`rfast_sim.timing.engine.EventTrace`): every computation,
        send, delivery and sample, with the network's figures (``trace.network``).
    :ivar metrics: the sampled metrics, ``[samples, len(METRIC_COLUMNS)]`` (raw: the tidy view,
        with divergence marked, is ``Result.metrics``).
    :ivar final_state: the algorithm's state at the end (per node and per channel; none in a
        timing-only run).
    :ivar wall_seconds: the run's wall time here.
    :ivar message_bytes: bytes per packet.
    :ivar extra: what the runner adds: straggler and device nodes, the replay plan, peak memory.
    :ivar timings: wall seconds per phase: ``trace_s`` (building the trace; online: engine and
        updates together), ``replay_s``, ``metrics_s``.
    """

    name: str
    seed: int
    step_size: float
    trace: EventTrace
    metrics: np.ndarray  # [K, len(METRIC_COLUMNS)]
    final_state: Any
    wall_seconds: float
    message_bytes: float
    extra: dict[str, Any] = field(default_factory=dict)
    # where the time went: trace_s (building the trace; online: engine and updates together),
    # replay_s, metrics_s (the tidy frame), set by the runners
    timings: dict[str, float] = field(default_factory=dict)
