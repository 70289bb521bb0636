"""Set-up of one run's maths: the problem data and the built algorithm, on top of the timing
side (:mod:`rfast_sim.timing.traces`: graphs, channels, the engine and its trace)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.maths.algorithms import Algorithm, Env, Net, make
from rfast_sim.maths.problems import ProblemData, ProblemOps, make_problem
from rfast_sim.maths.workload import step_cost
from rfast_sim.scenario import Scenario
from rfast_sim.timing.topology import Channels
from rfast_sim.timing.traces import (
    ScenarioGraphs,
    TimingSetup,
    choose_engine,
    record_trace,
    scenario_graphs,
    timing_setup,
)


def _net(ch: Channels, dtype: str) -> Net:
    """The channel arrays as the algorithms' pytree (floating arrays in the scenario dtype)."""
    def array(name: str) -> jax.Array:
        a = np.asarray(getattr(ch, name))
        return jnp.asarray(a, dtype=dtype if a.dtype.kind == "f" else None)

    net = Net(*(array(name) for name in Net._fields if name != "phase"))
    return net._replace(phase=jnp.int32(0))


@dataclass
class Setup(TimingSetup):
    """Everything one (algorithm, seed) run needs before any event fires: the timing side and
    the problem's data and functions, with the algorithm built on them."""

    ops: ProblemOps
    data: ProblemData
    algorithm: Algorithm

    def env(self, step_size: float) -> Env:
        return Env(_net(self.channels, self.scenario.dtype), self.data,
                   jnp.asarray(step_size, dtype=self.scenario.dtype))


def prepare(sc: Scenario, name: str, seed: int,
            graphs: ScenarioGraphs | None = None) -> Setup:
    """Build problem data and channels for one algorithm and seed."""
    assert sc.problem is not None, "a timing-only scenario has no maths: use timing_setup"
    ops, data = make_problem(sc.problem, sc.nodes, seed, sc.dtype)
    cost = step_cost(ops, data) if sc.timing.compute.from_model else None
    t = timing_setup(sc, name, seed, graphs, dim=ops.dim, step_cost=cost)
    return Setup(**vars(t), ops=ops, data=data, algorithm=make(name, ops))


__all__ = ["ScenarioGraphs", "Setup", "TimingSetup", "choose_engine", "prepare", "record_trace",
           "scenario_graphs", "timing_setup"]
