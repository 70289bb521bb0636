"""The problem interface: built-ins unchanged, registered kinds, pytree models, compile sharing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import rfast_sim

DATA = Path(__file__).parent / "data"


def _builtin_cases():
    spec = importlib.util.spec_from_file_location("make_builtin_values",
                                                  DATA / "make_builtin_values.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["least_squares", "least_squares_exact", "logistic", "mlp"])
def test_builtin_results_bit_for_bit_as_before_the_interface(name):
    """builtin_values.npz holds these runs' metrics from the code before the problem interface
    (tests/data/make_builtin_values.py); the re-expressed kinds give the very same bits."""
    cases = _builtin_cases()
    before = np.load(DATA / "builtin_values.npz")[name]
    now = rfast_sim.run(cases.scenario(cases.CASES[name])).metrics[cases.COLUMNS].to_numpy()
    np.testing.assert_array_equal(now, before)
