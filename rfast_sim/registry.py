"""Algorithm names and their factories, resolved lazily.

A leaf module: the scenario schema validates algorithm names here without importing any
algorithm code (or JAX). ``make`` imports a factory only when a run needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> "module:function" (built in, imported on first use) or a factory (registered)
_FACTORIES: dict[str, str | Callable[[Any], Any]] = {
    "rfast": "rfast_sim.algorithms.rfast:rfast",
    "rfast_nonrobust": "rfast_sim.algorithms.rfast:rfast_nonrobust",
    "osgp": "rfast_sim.algorithms.asynchronous:osgp",
    "adpsgd": "rfast_sim.algorithms.asynchronous:adpsgd",
    "allreduce_sgd": "rfast_sim.algorithms.synchronous:allreduce_sgd",
    "dpsgd": "rfast_sim.algorithms.synchronous:dpsgd",
    "sync_gt": "rfast_sim.algorithms.synchronous:sync_gt",
}


def names() -> list[str]:
    """Every known algorithm name, built-in ones first."""
    return list(_FACTORIES)


def register(name: str, factory: Callable[[Any], Any]) -> None:
    """Add an algorithm factory ``ops -> Algorithm`` under `name` (scenarios may then use it)."""
    _FACTORIES[name] = factory


def factory(name: str) -> Callable[[Any], Any]:
    """The factory registered under `name` (KeyError if unknown)."""
    entry = _FACTORIES[name]
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = _FACTORIES[name] = getattr(importlib.import_module(module), attr)
    return entry
