"""Objectives with heterogeneous per-node data: least squares, logistic regression, small MLP."""

from rfast_sim.problems.core import ProblemData, ProblemOps, make_problem

__all__ = ["ProblemData", "ProblemOps", "make_problem"]
