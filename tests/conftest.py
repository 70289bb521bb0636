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
from rfast_sim.scenario import Scenario
from rfast_sim.scenario.loading import parse_scenario, set_path

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

    from rfast_sim.experiment.plan import prepare
    from rfast_sim.maths.reference import RFastReference, least_squares_grad
    from rfast_sim.maths.replay import run_replay
    from rfast_sim.timing.traces import record_trace

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


def _docs_build_files(config: pytest.Config) -> tuple[Path, Path]:
    """(log, exit status) files of this test run's docs build (one per run: xdist's run id)."""
    run = getattr(config, "workerinput", {}).get("testrunuid") or str(id(config))
    folder = DOCS / "_build" / "test-runs" / run
    return folder / "log.txt", folder / "status"


def _start_docs_build(config: pytest.Config) -> None:
    """Start the docs build in the background, once per test run (the first process to claim
    it): it runs every notebook, the longest job of the suite, so it starts before the tests
    and overlaps them instead of holding one worker at the end."""
    import os
    import shlex
    import subprocess
    import sys

    log, status = _docs_build_files(config)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(log.parent / "claimed", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return
    build = DOCS / "_build"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(build / "doctrees"), str(DOCS), str(build / "html")]
    # the status file is written last, by the shell, so a reader sees the log complete
    script = (f"{shlex.join(cmd)} > {shlex.quote(str(log))} 2>&1; "
              f"echo $? > {shlex.quote(str(status))}.tmp && "
              f"mv {shlex.quote(str(status))}.tmp {shlex.quote(str(status))}")
    subprocess.Popen(["sh", "-c", script], env={**os.environ, "JAX_PLATFORMS": "cpu"},
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the tests marked `long` first (in collection order), then the rest: the workers take
    # tests in this order, so the long ones start early and the many short ones fill in at
    # the end; in collection order a long test that came last ran alone while the other
    # worker idled (~30 s a run)
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    # after -k / -m deselection: a run without a test that reads the build builds nothing
    if session.config.option.collectonly:
        return
    if any("docs_build" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_docs_build(session.config)


@pytest.fixture(scope="session")
def docs_build(request):
    """The docs site, built once per test run with warnings as errors (``-W``), started in
    the background at collection (`_start_docs_build`); this waits for it.

    It runs every notebook through myst-nb's jupyter-cache (under ``docs/_build/``, one per
    state of the sources): the notebook tests read that cache instead of running the notebooks
    again, and a rebuild runs only what changed since. Returns (exit status, log)."""
    import time

    _start_docs_build(request.config)  # a no-op unless collection did not start it
    log, status = _docs_build_files(request.config)
    deadline = time.monotonic() + 1800
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the docs build did not finish in 30 minutes (log: {log})")
        time.sleep(1.0)
    return int(status.read_text()), log.read_text()


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
