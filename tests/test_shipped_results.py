"""Results the docs and notebooks read instead of recomputing them stay true: each is
regenerated here and compared with the shipped copy (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rfast_sim
from rfast_sim.sweeps import summarize

ROOT = Path(__file__).resolve().parent.parent
ASYNC_PAYS = ROOT / "docs" / "_static" / "when_async_pays.csv"


def assert_frames_match(fresh: pd.DataFrame, shipped: pd.DataFrame) -> None:
    """Same rows and columns; numbers equal to rounding (inf and NaN where the other has them),
    the rest equal."""
    assert list(fresh.columns) == list(shipped.columns)
    assert len(fresh) == len(shipped)
    for col in shipped.columns:
        a, b = fresh[col], shipped[col]
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float),
                                       rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=col)
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col


def test_the_shipped_summary_is_read_back_whole():
    shipped = pd.read_csv(ASYNC_PAYS)
    assert len(shipped) == 12 * 2  # 12 points, two algorithms
    assert_frames_match(shipped.copy(), shipped)


@pytest.mark.slow
def test_when_async_pays_summary_is_what_the_sweep_gives(tmp_path):
    """docs/_static/when_async_pays.csv (notebook 02 and the README's figure read it) is the
    summary of scenarios/sweep_when_async_pays.yaml; regenerate both with
    ``python docs/figures/when_async_pays.py`` when this fails."""
    rfast_sim.sweep(ROOT / "scenarios" / "sweep_when_async_pays.yaml", tmp_path / "sw",
                    workers=2)
    fresh = summarize(tmp_path / "sw")
    fresh.to_csv(tmp_path / "fresh.csv", index=False)  # through CSV, as the shipped copy went
    assert_frames_match(pd.read_csv(tmp_path / "fresh.csv"), pd.read_csv(ASYNC_PAYS))


@pytest.mark.slow
def test_mnist1d_models_summary_is_what_the_runs_give(tmp_path):
    """docs/_static/mnist1d_models.csv (docs/results/mnist1d_models.md quotes it) is what
    scenarios/mnist1d_models.yaml gives for both models; regenerate it with
    ``python docs/figures/mnist1d_models.py`` when this fails. XLA:CPU's float32 results can
    differ in the last bits between machines, so times and accuracies are compared to 1e-6."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "mnist1d_figure", ROOT / "docs" / "figures" / "mnist1d_models.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh, _ = module.run_models()
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    shipped = pd.read_csv(module.SUMMARY)
    got = pd.read_csv(tmp_path / "fresh.csv")
    assert list(got.columns) == list(shipped.columns)
    for col in ("time_to_target", "final_test_accuracy", "updates"):
        np.testing.assert_allclose(got[col], shipped[col], rtol=1e-6, err_msg=col)
    assert got["reached"].tolist() == shipped["reached"].tolist()
