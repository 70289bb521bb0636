"""Algorithms: pure JAX functions over a network state. ``make(name, ops)`` builds one by name.

The names and factories live in the leaf :mod:`rfast_sim.scenario.registry`, so the scenario
schema can check a name without importing any algorithm; each algorithm module is imported when
first made.
"""

from __future__ import annotations

from rfast_sim.maths.algorithms.base import Algorithm, Env, Net, NetState
from rfast_sim.maths.problems import ProblemOps
from rfast_sim.scenario import registry
from rfast_sim.scenario.registry import AlgorithmInfo, info, register


def make(name: str, ops: ProblemOps) -> Algorithm:
    """The algorithm registered under `name`, built for the problem's static functions."""
    alg = registry.factory(name)(ops)
    assert isinstance(alg, Algorithm)
    assert alg.info == registry.info(name), f"{name}: built with another name's info"
    return alg


__all__ = ["Algorithm", "AlgorithmInfo", "Env", "Net", "NetState", "info", "make", "register"]
