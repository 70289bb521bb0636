"""The event engine: decides *when* things happen and records them. No math, no JAX.

Asynchronous patterns run one process per node (compute for a sampled time, then send on its
out-channels); each packet is delivered after its link delay or lost. Synchronous patterns run
one barrier process: a round ends when the slowest node has computed and every message of the
round has arrived (a lost packet is resent after a timeout, and that time is charged).

The product is an :class:`EventTrace` of numpy arrays. A packet that will be delivered gets a
*slot* in the in-flight store when it is sent and frees it on delivery, so the store holds at
most the maximum number of packets in flight.
"""

from rfast_sim.engine.simulation import simulate
from rfast_sim.engine.trace import (
    COMPUTE,
    DELIVER,
    DROP,
    KIND_NAMES,
    ROUND,
    SAMPLE,
    Event,
    EventTrace,
)

__all__ = ["COMPUTE", "DELIVER", "DROP", "KIND_NAMES", "ROUND", "SAMPLE", "Event", "EventTrace",
           "simulate"]
