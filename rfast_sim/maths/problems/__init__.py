"""Problems: the interface (:mod:`.base`), the built-in kinds, and datasets x models x losses.

``make_problem`` builds a kind by name through the leaf registry
:mod:`rfast_sim.scenario.problem_kinds`, which imports each kind's module on first use.
"""

from __future__ import annotations

from rfast_sim.maths.problems.base import (
    AccuracyFn,
    DataLossFn,
    ProblemData,
    ProblemOps,
    problem_data,
)
from rfast_sim.scenario import Problem, ScenarioError
from rfast_sim.scenario.problem_kinds import PROBLEM_KINDS, register_problem


def make_problem(spec: Problem, n: int, seed: int,
                 dtype: str = "float64") -> tuple[ProblemOps, ProblemData]:
    """Build the problem's static functions and its per-node data (`seed`: the replicate's)."""
    ops, data = PROBLEM_KINDS.resolve(spec.kind)(spec, n, seed, dtype)
    if not isinstance(ops, ProblemOps) or not isinstance(data, ProblemData):
        raise ScenarioError(f"problem.kind: the factory of {spec.kind!r} must return "
                            f"(ProblemOps, ProblemData) (got {type(ops).__name__}, "
                            f"{type(data).__name__})")
    return ops, data


def problem_dim(spec: Problem, n: int, seed: int) -> int:
    """The model's flat dimension (a dataset's from ``jax.eval_shape``; its data are read and
    its model checked on them, so bad input fails here, before any simulation)."""
    from rfast_sim.maths.problems.builtin import builtin_dim
    from rfast_sim.maths.problems.dataset import dataset_dim

    if spec.kind in ("least_squares", "logistic", "mlp"):
        return builtin_dim(spec)
    if spec.kind == "dataset":
        return dataset_dim(spec, n)
    return make_problem(spec, n, seed)[0].dim


__all__ = ["AccuracyFn", "DataLossFn", "ProblemData", "ProblemOps", "make_problem",
           "problem_data", "problem_dim", "register_problem"]
