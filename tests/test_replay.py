"""Replay fast path: vmapped batches equal single runs, one compilation, bounded memory."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import subprocess
import sys

import jax
import numpy as np
from conftest import scenario

import rfast_sim
from rfast_sim.experiment.plan import prepare
from rfast_sim.maths.layout import build_layout, layout_size
from rfast_sim.maths.online import compiled_online, run_online
from rfast_sim.maths.replay import compiled_replay, run_replay
from rfast_sim.maths.shapes import EVENTS_FLOOR
from rfast_sim.timing.traces import record_trace


def test_vmapped_seeds_and_step_sizes_equal_single_runs():
    sc = scenario(**{"problem.batch_size": 4, "run.until": 30.0})
    setups = [prepare(sc, "rfast", s) for s in (0, 1, 2)]
    steps = [0.02, 0.05]
    batched = run_replay(setups, steps, vmap_seeds=True)
    looped = run_replay(setups, steps, vmap_seeds=False)
    one_trace = run_replay(setups[:1], steps)  # step sizes vmapped over one trace
    assert [(r.seed, r.step_size) for r in batched] == [(r.seed, r.step_size) for r in looped]
    for a, b in zip(batched, looped, strict=True):
        np.testing.assert_allclose(a.metrics, b.metrics, rtol=1e-9, atol=1e-12)
    for a, b in zip(one_trace, looped[:2], strict=True):
        np.testing.assert_allclose(a.metrics, b.metrics, rtol=1e-9, atol=1e-12)
    assert not np.allclose(batched[0].metrics, batched[2].metrics)


def _compiles(caplog, fn: str) -> int:
    return sum(f"Finished XLA compilation of {fn}" in r.getMessage() for r in caplog.records)


def test_each_update_compiles_once(caplog):
    sc = scenario(**{"run.until": 40.0, "problem.batch_size": 4})
    setups = [prepare(sc, "rfast", s) for s in (0, 1)]
    compiled_online.cache_clear()
    compiled_replay.cache_clear()
    with jax.log_compiles(), caplog.at_level(logging.WARNING, logger="jax"):
        for setup in setups:
            for step in (0.01, 0.05):
                run_online(setup, step)
        assert _compiles(caplog, "jit(compute)") == 1, "online compute recompiled"
        assert _compiles(caplog, "jit(receive)") == 1, "online receive recompiled"
        for step in (0.01, 0.05, 0.1):  # a new step size never recompiles
            run_replay(setups[:1], [step])
        assert _compiles(caplog, "jit(replay_fn)") == 1
        # another seed's trace has another length: at most one more shape (lengths are
        # bucketed to within 1/8, so nearby lengths share a compilation)
        run_replay(setups[1:], [0.01])
        assert _compiles(caplog, "jit(replay_fn)") <= 2


@contextlib.contextmanager
def lowerings():
    """Count lowerings to XLA by function name. The persistent compilation cache hides backend
    compiles (a cache hit logs none), not lowerings: every new shape is lowered."""
    counts: collections.Counter[str] = collections.Counter()

    def listen(event: str, duration: float, **kw: str) -> None:
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            counts[kw.get("fun_name", "?")] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_a_run_lowers_each_algorithms_replay_once_across_seeds(monkeypatch):
    # with lengths rounded only to within 1/8 and no floor, the seeds' traces take several
    # shapes; their layouts are padded to one
    monkeypatch.setattr("rfast_sim.maths.shapes.COARSE_BELOW", 0)
    monkeypatch.setattr("rfast_sim.maths.shapes.EVENTS_FLOOR", 64)
    names = ("rfast", "dpsgd", "allreduce_sgd")
    sc = scenario(**{"seeds": 5, "run.until": 30.0, "problem.batch_size": 4,
                     "graphs.undirected": {"kind": "ring"},
                     "algorithms": [{"name": n, "step_size": [0.02, 0.05]} for n in names]})
    sizes = set()
    for seed in range(sc.seeds):
        setup = prepare(sc, "rfast", seed)
        sched, (steps,) = build_layout([record_trace(setup)], per_round=False)
        sizes.add(layout_size(sched, steps))
    assert len(sizes) > 1
    compiled_replay.cache_clear()
    with lowerings() as counts:
        rfast_sim.run(sc)
    assert counts["jit(replay_fn)"] == len(names), counts


def test_short_runs_of_different_lengths_share_one_compiled_replay():
    """Below the floor of event slots, a run of 5 s and one of 40 s (other event counts,
    other packet counts) lower one replay between them, with the results of their own."""
    compiled_replay.cache_clear()
    runs = {}
    with lowerings() as counts:
        for until in (5.0, 40.0):
            runs[until] = rfast_sim.run(scenario(**{"run.until": until}))
    assert counts["jit(replay_fn)"] == 1, counts
    events = {u: len(r.runs[0].trace.kind) for u, r in runs.items()}
    assert 0 < events[5.0] < events[40.0] <= EVENTS_FLOOR, events


MEMORY_SCRIPT = """
import json, resource, sys
sys.path.insert(0, "tests")
from conftest import scenario
from rfast_sim.maths.replay import run_replay
from rfast_sim.experiment.plan import prepare
sc = scenario(**{"nodes": 64, "problem.dim": 1000, "problem.samples_per_node": 20,
                 "graphs.pull.kind": "exponential", "graphs.push.kind": "exponential",
                 "timing.drop_prob": 0.1, "run.until": None, "run.max_updates": 17000,
                 "run.sample_every": 20.0})
(run,) = run_replay([prepare(sc, "rfast", 0)], [0.01])
# this process's own peak (VmHWM): ru_maxrss survives exec, so it may be pytest's at the fork
rss = next((int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:")),
           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"events": len(run.trace), "slots": run.trace.num_slots, "rss": rss}))
"""


def test_64_node_dim_1000_200k_event_replay_fits_in_2_gb():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True,
                         check=True, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["events"] >= 200_000
    assert stats["slots"] < stats["events"] / 100, "slots are reused, not one per packet"
    assert stats["rss"] < 2 * 1024**3, f"peak RSS {stats['rss'] / 1e9:.2f} GB"


def test_event_loops_compile_with_the_options_this_jaxlib_knows(monkeypatch):
    from rfast_sim.maths import xla

    known = xla.compiler_options()
    assert known in ({}, xla._CPU_OPTIONS)  # the YNNPACK fusions off where it can
    xla.compiler_options.cache_clear()
    monkeypatch.setattr(xla, "_CPU_OPTIONS", {"xla_no_such_option_anywhere": "1"})
    try:
        assert xla.compiler_options() == {}  # an unknown option: the jaxlib's defaults
    finally:
        xla.compiler_options.cache_clear()


def test_lengths_round_to_powers_of_two_while_small_and_to_an_eighth_above():
    from rfast_sim.maths.shapes import COARSE_BELOW, bucket, segment_bucket

    assert [bucket(n) for n in (1, 64, 65, 5000, COARSE_BELOW)] == [64, 64, 128, 8192,
                                                                   COARSE_BELOW]
    assert bucket(COARSE_BELOW + 1) == COARSE_BELOW + COARSE_BELOW // 8
    assert bucket(5000, coarse_below=0) == 5120  # within 1/8
    assert [segment_bucket(k) for k in (1, 11, 121, 300)] == [16, 16, 128, 320]
