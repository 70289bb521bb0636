"""Set-up of one run's maths: the problem data and the built algorithm, on top of the timing
side (:mod:`rfast_sim.timing.traces`: channels, the engine and its trace). The plan builder
(:mod:`rfast_sim.experiment.plan`) makes one."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rfast_sim.maths.algorithms import Algorithm, Env, Net
from rfast_sim.maths.problems import ProblemData, ProblemOps
from rfast_sim.timing.topology import Channels
from rfast_sim.timing.traces import TimingSetup


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
        return Env(_net(self.channels, self.plan.dtype), self.data,
                   jnp.asarray(step_size, dtype=self.plan.dtype))
