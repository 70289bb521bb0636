"""The model benchmark's verdict: noise is never reported as a met target."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_marginal_time_under_the_vmapped_step_is_noise():
    verdict = _bench().verdict
    vmap, limit = 400e-6, 600e-6
    assert verdict(-5e-6, vmap, limit) is None  # negative: two noisy run lengths
    assert verdict(1e-6, vmap, limit) is None  # cheaper than computing a gradient: noise
    assert verdict(500e-6, vmap, limit) is True
    assert verdict(700e-6, vmap, limit) is False
