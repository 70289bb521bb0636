"""Run a timing model to its stop condition and return the recorded :class:`EventTrace`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from rfast_sim.engine.processes import Sim, async_node, sampler, sync_rounds
from rfast_sim.engine.trace import Event, EventTrace, Recorder
from rfast_sim.timing import TimingModel
from rfast_sim.topology import Channels, Pattern


def simulate(
    timing: TimingModel,
    channels: Channels,
    pattern: Pattern,
    *,
    until: float | None,
    max_updates: int | None,
    sample_every: float,
    on_event: Callable[[Event], None] | None = None,
) -> EventTrace:
    """Run the timing model to the stop condition and return the recorded trace.

    `on_event` (online coupling) is called for every non-drop event as it fires.
    """
    env = simpy.Environment()
    rec = Recorder(channels.out_ch.shape[1], on_event)
    sim = Sim(env, timing, channels, rec,
              limit=until if until is not None else np.inf,
              max_updates=max_updates if max_updates is not None else np.inf)
    env.process(sampler(sim, sample_every))
    if pattern in ("all", "one"):
        for i in range(channels.n):
            env.process(async_node(sim, i, pattern))
    else:
        env.process(sync_rounds(sim, pattern))
    env.run(until=sim.done)
    return rec.trace(sim.num_slots, sim.durations)
