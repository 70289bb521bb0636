"""Algorithm names, what each one is (:class:`AlgorithmInfo`) and its factory, resolved lazily.

A leaf module: the scenario schema, the set-up's graph checks and ``rfast-sim list`` read an
algorithm's metadata here without importing any algorithm code (or JAX). ``factory`` imports
a factory only when a run needs it; the factory builds its :class:`Algorithm` from the same
info object, so the metadata lives in one place.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# How an algorithm communicates: every out-channel, one random out-channel, or synchronous rounds.
Pattern = Literal["all", "one", "sync_neighbors", "sync_allreduce"]


@dataclass(frozen=True)
class AlgorithmInfo:
    """What an algorithm is, readable without building it.

    pattern: how it communicates; graphs: the scenario graphs it uses ("pull", "push",
    "gossip"); supersedes: a newer packet on a channel makes an older one useless (an unsent
    one is dropped from a ``latest`` queue and a stale arrival is ignored)."""

    name: str
    pattern: Pattern
    graphs: tuple[str, ...]
    description: str = ""
    supersedes: bool = False


_BUILTIN = [
    (AlgorithmInfo("rfast", "all", ("pull", "push"),
                   "R-FAST: asynchronous gradient tracking with running-sum buffers",
                   supersedes=True),  # running sums and pulled parameters: the newest matters
     "rfast_sim.maths.algorithms.rfast:rfast"),
    (AlgorithmInfo("rfast_nonrobust", "all", ("pull", "push"),
                   "async gradient tracking whose packets carry only new mass (no running sums)"),
     "rfast_sim.maths.algorithms.rfast:rfast_nonrobust"),
    (AlgorithmInfo("osgp", "all", ("push",),
                   "OSGP / asynchronous stochastic gradient push (push-sum) on graphs.push"),
     "rfast_sim.maths.algorithms.asynchronous:osgp"),
    (AlgorithmInfo("adpsgd", "one", ("gossip",),
                   "AD-PSGD: asynchronous pairwise gossip averaging (undirected graph)"),
     "rfast_sim.maths.algorithms.asynchronous:adpsgd"),
    (AlgorithmInfo("allreduce_sgd", "sync_allreduce", (),
                   "synchronous parallel SGD over a ring all-reduce"),
     "rfast_sim.maths.algorithms.synchronous:allreduce_sgd"),
    (AlgorithmInfo("dpsgd", "sync_neighbors", ("gossip",),
                   "synchronous decentralized SGD (Metropolis weights)"),
     "rfast_sim.maths.algorithms.synchronous:dpsgd"),
    (AlgorithmInfo("sync_gt", "sync_neighbors", ("pull", "push"),
                   "synchronous push-pull gradient tracking (R-FAST with a barrier)"),
     "rfast_sim.maths.algorithms.synchronous:sync_gt"),
]

# name -> (info, "module:function" (built in, imported on first use) or a factory (registered))
_ENTRIES: dict[str, tuple[AlgorithmInfo, str | Callable[[Any], Any]]] = {
    info.name: (info, path) for info, path in _BUILTIN}


def names() -> list[str]:
    """Every known algorithm name, built-in ones first."""
    return list(_ENTRIES)


def register(info: AlgorithmInfo, factory: Callable[[Any], Any]) -> None:
    """Add an algorithm: its info and its factory ``ops -> Algorithm`` (scenarios may then
    name it; :doc:`/howto/own_algorithm`).

    Example: R-FAST's functions under a name of your own, run timing-only (no maths)::

        >>> import dataclasses, rfast_sim
        >>> from rfast_sim.maths.algorithms.rfast import rfast
        >>> from rfast_sim.scenario.registry import AlgorithmInfo, register
        >>> INFO = AlgorithmInfo("my_rfast", pattern="all", graphs=("pull", "push"),
        ...                      description="R-FAST under my name", supersedes=True)
        >>> register(INFO, lambda ops: dataclasses.replace(rfast(ops), info=INFO))
        >>> sc = rfast_sim.load_scenario("quickstart", [
        ...     "problem=null", "timing.message_bytes=160", "seeds=1", "run.until=10",
        ...     "algorithms=[{name: my_rfast}]", "compare=null"])
        >>> rfast_sim.run(sc).network()["algorithm"].tolist()
        ['my_rfast']
    """
    _ENTRIES[info.name] = (info, factory)


def info(name: str) -> AlgorithmInfo:
    """The metadata of the algorithm registered under `name` (KeyError if unknown)."""
    return _ENTRIES[name][0]


def factory(name: str) -> Callable[[Any], Any]:
    """The factory registered under `name` (KeyError if unknown)."""
    meta, entry = _ENTRIES[name]
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(importlib.import_module(module), attr)
        _ENTRIES[name] = (meta, entry)
    return entry
