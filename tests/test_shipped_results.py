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
