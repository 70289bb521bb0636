"""What a simulated update costs against the model's own step.

    python benchmarks/bench_models.py            # the table (about 10 minutes on 2 cores)
    python benchmarks/bench_models.py --quick    # two models, float32 only: a smoke run
    python benchmarks/bench_models.py --models CNN   # the rows of some models

For each model (linear and MLPs on digits, 1-D and 2-D CNNs), dtype and algorithm: the replay's
marginal wall time per node-update (the difference of two run lengths, each compiled first, so
compilation and fixed costs cancel), beside the bare jitted minibatch step of the same model
(`rfast-sim profile`'s measured figure, the fastest of 100 calls) and one step of 8 nodes
vmapped together (per node). A node-update is one node's gradient step: an asynchronous
computation, a node's D-PSGD round, or 1/n of an all-reduce round.

Targets: an SGD-family update (allreduce_sgd, dpsgd) <= 1.3x the bare step; an R-FAST update
<= 2x the bare step plus its own channel traffic at this machine's memory bandwidth (measured
here by a large array copy). R-FAST's traffic per computation: its node rows (x, z, g) read and
written, each in-channel's packet and absorbed sum read and the sum written, each out-channel's
running sum read and written and its payload written; per delivery the packet read and the
channel's row read and written. Every number of a row comes from one process, one after the
other; absolute times on a shared machine are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rfast_sim  # noqa: F401  (float64)
from rfast_sim.experiment.plan import prepare
from rfast_sim.experiment.results import updates_per_node
from rfast_sim.maths.replay import run_replay
from rfast_sim.maths.workload import local_step, measure_step
from rfast_sim.scenario.loading import parse_scenario
from rfast_sim.timing.traces import record_trace

NODES = 8
ALGORITHMS = ("allreduce_sgd", "dpsgd", "rfast")
MODELS: dict[str, dict[str, Any]] = {
    "linear (digits)": {"source": "digits", "model": {"kind": "linear"}},
    "MLP [32] (digits)": {"source": "digits", "model": {"kind": "mlp", "hidden": [32]}},
    "MLP [256, 256] (digits)": {"source": "digits",
                                "model": {"kind": "mlp", "hidden": [256, 256]}},
    "CNN [8, 16] (digits 8x8)": {"source": "digits", "input_shape": [8, 8, 1],
                                 "model": {"kind": "cnn", "channels": [8, 16]}},
    "CNN1d [16, 16] (MNIST-1D)": {"source": "mnist1d", "input_shape": [40, 1],
                                  "model": {"kind": "cnn", "channels": [16, 16], "kernel": 5,
                                            "hidden": []}},
}


def scenario(problem: dict[str, Any], alg: str, dtype: str, until: float,
             drop: float = 0.0) -> Any:
    return parse_scenario({
        "name": "bench-models", "seed": 0, "nodes": NODES, "dtype": dtype,
        "graphs": {"pull": {"kind": "exponential"}, "push": {"kind": "exponential"},
                   "undirected": {"kind": "ring"}},
        "timing": {"compute": {"dist": "exponential", "mean": 1.0},
                   "latency": {"dist": "constant", "mean": 0.01}, "drop_prob": drop},
        "problem": {"kind": "dataset", "batch_size": 32, "l2": 1e-4, **problem},
        "algorithm": {"name": alg, "step_size": 0.01},
        "run": {"until": until, "sample_every": until},
    })


def best(fn: Any, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def memory_bandwidth(nbytes: int = 256 * 2**20) -> float:
    """Bytes per second of a large array copy (read + write), the fastest of 5."""
    a, b = np.ones(nbytes // 8), np.empty(nbytes // 8)
    return 2 * nbytes / best(lambda: np.copyto(b, a), 5)


def replay_per_update(problem: dict[str, Any], alg: str, dtype: str,
                      lengths: tuple[float, float], repeats: int,
                      drop: float = 0.0) -> dict[str, float]:
    """Marginal replay seconds per node-update between two run lengths, deliveries per
    node-update, and R-FAST's rows of channel traffic per node-update."""
    times, updates, extra = [], [], {}
    for until in lengths:
        setup = prepare(scenario(problem, alg, dtype, until, drop), alg, 0)
        trace = record_trace(setup)

        def call(setup: Any = setup, trace: Any = trace) -> None:
            (run,) = run_replay([setup], [0.01], [trace])
            jax.block_until_ready(run.final_state)

        call()  # compiles this length's shapes
        times.append(best(call, repeats))
        u = int(updates_per_node(trace, NODES).sum())
        updates.append(u)
        k = setup.channels.num / NODES  # in- and out-channels per node, on average
        deliveries = int(trace.is_kind("deliver").sum()) / max(u, 1)
        extra = {"rows_compute": 6 + 3 * k + 3 * k, "rows_deliver": 3 * deliveries,
                 "deliveries": deliveries, "dim": setup.ops.dim}
    per = (times[1] - times[0]) / (updates[1] - updates[0])
    return {"per_update_s": per, **extra}


def bare_steps(problem: dict[str, Any], dtype: str) -> dict[str, float]:
    """The bare jitted step (fastest of 100) and 8 nodes' steps vmapped (per node)."""
    setup = prepare(scenario(problem, "rfast", dtype, 1.0), "rfast", 0)
    ops, data = setup.ops, setup.data
    bare = measure_step(ops, data, repeats=100)["min_s"]
    fn, args = local_step(ops, data)
    x, feats, _, l2 = args[:4]
    idx = (jnp.arange(NODES)[:, None] * 7 + jnp.arange(feats.shape[0])) % data.feats.shape[1]
    many = jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, None)))
    xs = jnp.stack([x] * NODES)
    call_args = (xs, data.feats[0][idx], data.targets[0][idx], l2)
    jax.block_until_ready(many(*call_args))
    vmapped = best(lambda: jax.block_until_ready(many(*call_args)), 100) / NODES
    return {"bare_s": bare, "vmap_s": vmapped}


def rfast_split(problem: dict[str, Any], dtype: str, lengths: tuple[float, float],
                repeats: int, full: dict[str, float]) -> float:
    """Seconds per delivery: R-FAST again with 99% of packets lost (the same computations,
    hardly any deliveries), the difference over the difference in deliveries."""
    lossy = replay_per_update(problem, "rfast", dtype, lengths, repeats, drop=0.99)
    gap = full["deliveries"] - lossy["deliveries"]
    return max(full["per_update_s"] - lossy["per_update_s"], 0.0) / gap if gap > 0 else 0.0


def lengths_for(bare: float, short: bool) -> tuple[float, float]:
    """Run lengths (simulated seconds, 8 node-updates each) whose difference takes about
    half a second of replay (a second and a half for the full table)."""
    longer = min(max((0.15 if short else 0.5) / (3 * bare * NODES), 20.0), 400.0)
    return longer / 4, longer


def rows(models: dict[str, dict[str, Any]], dtypes: tuple[str, ...], short: bool,
         repeats: int) -> list[dict[str, Any]]:
    bw = memory_bandwidth()
    print(f"memory bandwidth (array copy): {bw / 1e9:.1f} GB/s", flush=True)
    out = []
    for name, problem in models.items():
        for dtype in dtypes:
            steps = bare_steps(problem, dtype)
            lengths = lengths_for(steps["bare_s"], short)
            word = 8 if dtype == "float64" else 4
            for alg in ALGORITHMS:
                r = replay_per_update(problem, alg, dtype, lengths, repeats)
                rfast = alg == "rfast"
                traffic = ((r["rows_compute"] + r["rows_deliver"]) * r["dim"] * word / bw
                           if rfast else 0.0)
                per_delivery = rfast_split(problem, dtype, lengths, repeats, r) if rfast else 0
                limit = 2 * steps["bare_s"] + traffic if rfast else 1.3 * steps["bare_s"]
                row = {"model": name, "dim": r["dim"], "dtype": dtype, "algorithm": alg,
                       **steps, "update_s": r["per_update_s"], "traffic_s": traffic,
                       "deliveries_s": per_delivery * r["deliveries"],
                       "limit_s": limit,
                       "met": verdict(r["per_update_s"], steps["vmap_s"], limit)}
                out.append(row)
                print(markdown_row(row), flush=True)
    return out


def verdict(update_s: float, vmap_s: float, limit_s: float) -> bool | None:
    """Met, not met, or None: noise. An update computes at least one node's gradient, so a
    marginal time under half the vmapped per-node step (or negative) is the noise of a
    difference of two run lengths on a busy machine, not a fast update: rerun."""
    if update_s < 0.5 * vmap_s:
        return None
    return update_s <= limit_s


HEADER = ("| model | dim | dtype | algorithm | bare step | vmap 8 (per node) | update "
          "| update / bare | R-FAST traffic | of which deliveries | target | met |\n"
          "|:--|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|:--|")


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us" if seconds >= 1e-5 else f"{seconds * 1e6:.1f} us"


def markdown_row(r: dict[str, Any]) -> str:
    rfast = r["algorithm"] == "rfast"
    traffic = _us(r["traffic_s"]) if rfast else "-"
    deliveries = _us(r["deliveries_s"]) if rfast else "-"
    target = ("2 bare + traffic" if r["algorithm"] == "rfast" else "1.3 bare")
    return (f"| {r['model']} | {r['dim']:,} | {r['dtype']} | {r['algorithm']} "
            f"| {_us(r['bare_s'])} | {_us(r['vmap_s'])} | {_us(r['update_s'])} "
            f"| {r['update_s'] / r['bare_s']:.2f}x | {traffic} | {deliveries} "
            f"| {target} = {_us(r['limit_s'])} | {_verdict(r['met'])} |")


def _verdict(met: bool | None) -> str:
    return "noise: rerun" if met is None else "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two models, float32, short")
    parser.add_argument("--models", default="", help="only the models whose name contains "
                        "this text (e.g. CNN)")
    args = parser.parse_args()
    models = dict(list(MODELS.items())[1:3]) if args.quick else MODELS
    models = {k: v for k, v in models.items() if args.models.lower() in k.lower()}
    if not models:
        parser.error(f"--models: no model name contains {args.models!r}; the models: "
                     f"{', '.join(MODELS)}")
    dtypes = ("float32",) if args.quick else ("float32", "float64")
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; {NODES} nodes, "
          "exponential graphs, batch 32", flush=True)
    print(HEADER, flush=True)
    table = rows(models, dtypes, args.quick, repeats=2)
    print("\n" + HEADER)
    for r in table:
        print(markdown_row(r))
    met = sum(r["met"] is True for r in table)
    print(f"\n{met} of {len(table)} targets met")


if __name__ == "__main__":
    main()
