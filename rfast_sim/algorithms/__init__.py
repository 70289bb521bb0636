"""Algorithm registry: ``make(name, ops)`` builds the named algorithm for a problem."""

from __future__ import annotations

from collections.abc import Callable

from rfast_sim.algorithms.asynchronous import adpsgd, osgp
from rfast_sim.algorithms.base import Algorithm, Env, Net, NetState
from rfast_sim.algorithms.rfast import rfast, rfast_nonrobust
from rfast_sim.algorithms.synchronous import allreduce_sgd, dpsgd, sync_gt
from rfast_sim.problems import ProblemOps

ALGORITHMS: dict[str, Callable[[ProblemOps], Algorithm]] = {}


def register(name: str, factory: Callable[[ProblemOps], Algorithm]) -> None:
    """Add an algorithm factory under `name` (it then works in scenarios and the CLI)."""
    ALGORITHMS[name] = factory


def make(name: str, ops: ProblemOps) -> Algorithm:
    return ALGORITHMS[name](ops)


for _f in (rfast, rfast_nonrobust, osgp, adpsgd, allreduce_sgd, dpsgd, sync_gt):
    register(_f.__name__, _f)

__all__ = ["ALGORITHMS", "Algorithm", "Env", "Net", "NetState", "make", "register"]
