"""rfast-sim: simulate asynchronous decentralized training (R-FAST and baselines) in virtual time.

Importing the package turns on JAX float64 (``jax_enable_x64``): exact-convergence checks need
it; a scenario may still ask for ``dtype: float32``.
"""

import jax

jax.config.update("jax_enable_x64", True)

from rfast_sim.runner import Result, run  # noqa: E402
from rfast_sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario  # noqa: E402
from rfast_sim.sweeps import run_sweep as sweep  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Result", "Scenario", "ScenarioError", "load_scenario", "parse_scenario", "run", "sweep"]
