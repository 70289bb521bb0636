from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

# One persistent XLA compilation cache for the session, set before JAX is imported: the xdist
# workers, the CLI subprocesses and the docs build's notebook kernels inherit it, so a
# computation several of them compile (the quickstart's replay, say) compiles once
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import pytest

import rfast_sim  # noqa: F401  (enables float64 before any JAX array is made)
from rfast_sim.loading import parse_scenario, set_path
from rfast_sim.scenario import Scenario

BASE: dict[str, Any] = {
    "name": "test",
    "seed": 0,
    "nodes": 8,
    "graphs": {"pull": {"kind": "binary_tree"}, "push": {"kind": "binary_tree"}},
    "timing": {
        "compute": {"dist": "exponential", "mean": 1.0},
        "latency": {"dist": "lognormal", "mean": 0.3, "sigma": 1.0},
        "drop_prob": 0.3,
    },
    "problem": {"kind": "least_squares", "dim": 5, "samples_per_node": 20,
                "heterogeneity": {"kind": "shift", "scale": 2.0}, "l2": 0.01},
    "algorithm": {"name": "rfast", "step_size": 0.05},
    "run": {"until": 50.0, "sample_every": 5.0},
}


def scenario(**overrides: Any) -> Scenario:
    """The test scenario with dotted-key overrides, e.g. scenario(**{"timing.drop_prob": 0})."""
    data = copy.deepcopy(BASE)
    if "algorithms" in overrides:
        del data["algorithm"]
    for key, value in overrides.items():
        set_path(data, key, value)
    return parse_scenario(data)


def reference_run(sc: Scenario, step: float = 0.05) -> tuple[Any, Any, Any, Any]:
    """(setup, trace, JAX replay run, numpy RFastReference replayed on the same trace) of
    R-FAST on a least-squares scenario with l2 = 0.01."""
    import numpy as np

    from rfast_sim.reference import RFastReference, least_squares_grad
    from rfast_sim.replay import run_replay
    from rfast_sim.setup import prepare, record_trace

    setup = prepare(sc, "rfast", sc.seed)
    trace = record_trace(setup)
    (run,) = run_replay([setup], [step], [trace])
    d = setup.data
    ref = RFastReference(setup.channels, np.asarray(d.x0), step,
                         least_squares_grad(np.asarray(d.feats), np.asarray(d.targets), 0.01))
    ref.replay(trace)
    return setup, trace, run, ref


@pytest.fixture
def make_scenario():
    return scenario


DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="session")
def docs_build():
    """The docs site, built once per session with warnings as errors (``-W``).

    It runs every notebook through myst-nb's jupyter-cache (under ``docs/_build/``, one per
    state of the sources): the notebook tests read that cache instead of running the notebooks
    again, and a rebuild runs only what changed since. Returns (exit status, log)."""
    import os
    import subprocess
    import sys

    build = DOCS / "_build"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(build / "doctrees"), str(DOCS), str(build / "html")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return out.returncode, out.stdout + out.stderr


def sweep_and_summarize(tmp_path: Path, spec: dict) -> Path:
    """Write a sweep spec, run it and `summarize` it through the CLI (both must succeed); the
    sweep's output folder."""
    import yaml
    from typer.testing import CliRunner

    from rfast_sim.cli import app

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "sw"
    for args in (["sweep", str(path), "--out", str(out), "--workers", "1"],
                 ["summarize", str(out)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return out
