"""The event engine: decides *when* things happen and records them. No math, no JAX.

Asynchronous patterns run one process per node (compute for a sampled time, then hand a packet
per out-channel to the node's NIC); the network (`network.py`) queues, transfers, delays or
loses each packet. Synchronous gossip methods run per-node rounds behind a neighbour (or global)
barrier, all-reduce runs global rounds (`rounds.py`).

The product is an :class:`EventTrace` of numpy arrays. Every packet gets a *slot* in the
in-flight store when it is sent and frees it when it is delivered, lost or superseded, so the
store holds at most the maximum number of packets in flight.

Faults (`timing.churn`, `outages`, `link_churn`, `loss`): a down node does not compute (a
computation it was doing is lost) and sends nothing; its unsent packets are lost; packets that
reach it are lost; with ``rejoin: reset`` its return is a RESET event of the trace.

`vector.py` builds the same trace with numpy for the asynchronous runs it covers
(``run.engine``); SimPy stays the reference.
"""

from rfast_sim.timing.engine.simulation import simulate
from rfast_sim.timing.engine.trace import (
    COMPUTE,
    DELIVER,
    DROP,
    KIND_NAMES,
    RESET,
    ROUND,
    SAMPLE,
    Event,
    EventTrace,
)

__all__ = ["COMPUTE", "DELIVER", "DROP", "KIND_NAMES", "RESET", "ROUND", "SAMPLE", "Event",
           "EventTrace", "simulate"]
