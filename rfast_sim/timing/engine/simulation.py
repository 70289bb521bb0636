"""Run a timing model to its stop condition and return the recorded :class:`EventTrace`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from rfast_sim.scenario.registry import Pattern
from rfast_sim.timing import TimingModel
from rfast_sim.timing.engine.network import Network
from rfast_sim.timing.engine.processes import Sim, async_node, sampler
from rfast_sim.timing.engine.rounds import Barrier, allreduce_rounds, gossip_node
from rfast_sim.timing.engine.trace import Event, EventTrace, Recorder
from rfast_sim.timing.topology import Channels


def simulate(
    timing: TimingModel,
    channels: Channels,
    pattern: Pattern,
    *,
    until: float | None,
    max_updates: int | None,
    sample_every: float,
    on_event: Callable[[Event], None] | None = None,
    supersedes: bool = False,
    packets: bool = False,
) -> EventTrace:
    """Run the timing model to the stop condition and return the recorded trace.

    `on_event` (online coupling) is called for every non-drop event as it fires. `supersedes`:
    the algorithm's packets make older unsent ones useless, so a `latest` NIC queue may drop
    them (otherwise its queue stays fifo). `packets`: record the packet log
    (:class:`~rfast_sim.timing.engine.trace.PacketLog`: one row a packet; off by default).
    """
    env = simpy.Environment()
    rec = Recorder(channels.out_ch.shape[1], on_event)
    if packets:
        rec.packets = []
    nic = timing.spec.nic
    latest = nic is not None and nic.queue == "latest" and supersedes
    network = Network(env, timing, channels.n, latest)
    sim = Sim(env, timing, channels, rec, network,
              limit=until if until is not None else np.inf,
              max_updates=max_updates if max_updates is not None else np.inf)
    env.process(sampler(sim, sample_every))
    sim.schedule_resets()
    if pattern in ("all", "one"):
        for i in range(channels.n):
            env.process(async_node(sim, i, pattern))
    elif pattern == "sync_neighbors":
        barrier = Barrier(sim, global_=timing.spec.barrier == "global")
        for i in range(channels.n):
            env.process(gossip_node(sim, barrier, i))
    else:
        env.process(allreduce_rounds(sim))
    env.run(until=sim.done)
    stats = network.close(env.now, sim.resets)
    node_down = {i: [(a, b) for a, b in p.spans() if a < env.now]
                 for i, p in timing.faults.down.items()}
    return rec.trace(sim.num_slots, sim.durations, stats,
                     {i: s for i, s in node_down.items() if s}, timing.links.down_periods(env.now))
