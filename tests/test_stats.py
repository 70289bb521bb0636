"""Censored statistics: misses count, CIs are reproducible, a diverged step is never best."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfast_sim.experiment import stats
from rfast_sim.experiment.metrics import comparison_table

TIMES = {"allreduce_sgd": [10.0, 12.0, 11.0, 13.0, 9.0], "rfast": [4.0, 5.0, 6.0, None, None]}


def _frame(times: dict[str, list[float | None]], steps: dict[str, float] | None = None,
           diverged: set[tuple[str, int]] = frozenset()) -> pd.DataFrame:
    """Runs whose opt_gap drops from 1 to 0 at the given time (None: never), sampled each 1 s."""
    rows = []
    for alg, ts in times.items():
        for seed, t in enumerate(ts):
            for time in np.arange(0.0, 20.0):
                gap = 0.0 if t is not None and time >= t else 1.0
                bad = (alg, seed) in diverged and time >= 3
                rows.append({"algorithm": alg, "seed": seed,
                             "step_size": (steps or {}).get(alg, 0.1), "time": time,
                             "updates": 1, "messages": 1, "bytes": 1.0, "dropped": 0,
                             "loss": np.nan if bad else gap, "opt_gap": np.nan if bad else gap,
                             "grad_norm": gap, "consensus": 0.0, "accuracy": np.nan,
                             "dist_opt": gap, "diverged": bad})
    return pd.DataFrame(rows)


def test_misses_count_in_reached_and_in_the_median():
    table = comparison_table(_frame(TIMES), "allreduce_sgd", {"opt_gap": 0.5}).set_index(
        "algorithm")
    rf = table.loc["rfast"]
    assert rf["reached"] == "3/5"
    assert rf["reached_fraction"] == pytest.approx(0.6)
    assert rf["seeds"] == 5
    # sorted with the misses as inf: 4, 5, 6, inf, inf -> the median is 6
    assert rf["time_to_target"] == 6.0
    # (averaging only the seeds that made it would give 5.0, which flatters R-FAST)
    assert rf["speedup"] == pytest.approx(11.0 / 6.0)
    assert rf["speedup_ci_low"] <= rf["speedup"] <= rf["speedup_ci_high"]
    assert rf["time_to_target_ci_high"] == np.inf  # with 2 of 5 missing, it may be inf


def test_median_is_inf_when_half_or_more_miss():
    c = stats.summarize_times(np.array([1.0, 2.0, np.nan, np.nan]), np.random.default_rng(0))
    assert c.median == np.inf
    assert c.reached == 2
    assert stats.median(np.array([1.0, 2.0, 3.0, np.inf])) == 2.5


def test_bootstrap_cis_are_reproducible_from_the_seed():
    a = comparison_table(_frame(TIMES), "allreduce_sgd", {"opt_gap": 0.5}, seed=3)
    b = comparison_table(_frame(TIMES), "allreduce_sgd", {"opt_gap": 0.5}, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_a_step_with_a_diverged_seed_is_never_best():
    times = {"allreduce_sgd": [10.0] * 3, "rfast": [2.0, 2.0, 2.0]}
    frame = pd.concat([
        _frame(times, diverged={("rfast", 1)}),  # step 0.1: fast, but one seed diverged
        _frame({"rfast": [8.0, 8.0, 8.0]}, steps={"rfast": 0.05}),
    ])
    table = comparison_table(frame, "allreduce_sgd", {"opt_gap": 0.5}).set_index("algorithm")
    assert table.loc["rfast", "step_size"] == 0.05
    assert table.loc["rfast", "diverged"] == 0
    assert table.loc["rfast", "step_at_edge"]  # 0.05 is the smaller end of {0.05, 0.1}


def test_paired_speedup_resamples_the_same_seeds():
    rng = np.random.default_rng(1)
    base = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    point, low, high = stats.paired_speedup(base, base / 2, rng)
    # every resample keeps the pairs together: the ratio is exactly 2 in each
    assert point == low == high == 2.0
