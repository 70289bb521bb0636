"""Regenerate builtin_values.npz: the built-in problems' metrics from the code before the
problem interface (run once with that code: `python make_builtin_values.py`)."""

from pathlib import Path

import numpy as np

import rfast_sim

COLUMNS = ["loss", "opt_gap", "grad_norm", "consensus", "accuracy", "dist_opt"]
CASES = {
    "least_squares": {"kind": "least_squares", "dim": 5, "samples_per_node": 20, "batch_size": 4},
    "least_squares_exact": {"kind": "least_squares", "dim": 5, "samples_per_node": 20},
    "logistic": {"kind": "logistic", "dim": 6, "samples_per_node": 30, "batch_size": 8,
                 "heterogeneity": {"kind": "label_skew", "alpha": 0.3}},
    "mlp": {"kind": "mlp", "hidden": 8, "samples_per_node": 40, "batch_size": 8},
}


def scenario(problem: dict) -> rfast_sim.Scenario:
    return rfast_sim.parse_scenario({
        "nodes": 4, "seed": 3, "seeds": 2, "problem": problem,
        "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
        "timing": {"drop_prob": 0.1},
        "algorithms": [{"name": "rfast", "step_size": [0.05, 0.1]},
                       {"name": "dpsgd", "step_size": 0.05},
                       {"name": "allreduce_sgd", "step_size": 0.05}],
        "run": {"until": 15.0, "sample_every": 1.0}})


if __name__ == "__main__":
    out = {name: rfast_sim.run(scenario(p)).metrics[COLUMNS].to_numpy()
           for name, p in CASES.items()}
    np.savez(Path(__file__).with_name("builtin_values.npz"), **out)
