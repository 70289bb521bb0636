"""rfast-sim: simulate asynchronous decentralized training (R-FAST and baselines) in virtual time.

The package imports lazily (PEP 562): ``import rfast_sim.scenario`` or ``rfast_sim.timing.engine``
loads neither JAX nor any algorithm. JAX float64 (``jax_enable_x64``) is turned on by the first
module that uses JAX (:mod:`rfast_sim.maths.problems`): exact-convergence checks need it; a scenario
may still ask for ``dtype: float32``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rfast_sim._version import __version__

_EXPORTS = {
    "Result": "rfast_sim.experiment.results",
    "run": "rfast_sim.experiment.runner",
    "Scenario": "rfast_sim.scenario",
    "ScenarioError": "rfast_sim.scenario",
    "load_scenario": "rfast_sim.scenario.loading",
    "parse_scenario": "rfast_sim.scenario.loading",
    "register": "rfast_sim.scenario.registry",
    "register_problem": "rfast_sim.scenario.problem_kinds",
    "sweep": "rfast_sim.sweeps",
}
__all__ = ["Result", "Scenario", "ScenarioError", "__version__", "load_scenario", "parse_scenario",
           "register", "register_problem", "run", "sweep"]

if TYPE_CHECKING:  # pragma: no cover
    from rfast_sim.experiment.results import Result
    from rfast_sim.experiment.runner import run
    from rfast_sim.scenario import Scenario, ScenarioError
    from rfast_sim.scenario.loading import load_scenario, parse_scenario
    from rfast_sim.scenario.problem_kinds import register_problem
    from rfast_sim.scenario.registry import register
    from rfast_sim.sweeps import run_sweep as sweep


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rfast_sim' has no attribute {name!r}")
    attr = "run_sweep" if name == "sweep" else name
    value = getattr(importlib.import_module(_EXPORTS[name]), attr)
    globals()[name] = value
    return value
