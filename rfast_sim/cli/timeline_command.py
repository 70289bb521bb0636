"""`rfast-sim timeline RUN_DIR`: one run's timeline as Chrome trace-event JSON (Perfetto)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rfast_sim.cli.common import app, console, fail
from rfast_sim.scenario import Scenario, ScenarioError

if TYPE_CHECKING:
    from rfast_sim.timing.devices import StepCost

_OPEN = ("open it at https://ui.perfetto.dev (Open trace file) or in chrome://tracing; times are "
         "microseconds of simulated time")


def _scenario_of(run_dir: Path) -> Scenario:
    from rfast_sim.scenario.loading import load_scenario

    if not run_dir.is_dir():
        raise ScenarioError(f"RUN_DIR: {run_dir} is not a folder; give a run's output folder "
                            "(rfast-sim run SCENARIO --out DIR writes one)")
    if not (run_dir / "scenario.yaml").is_file():
        what = ("a sweep's folder: a sweep keeps no run folders; run one point with rfast-sim "
                "run" if (run_dir / "manifest.json").is_file() else "not a run's output folder")
        raise ScenarioError(f"RUN_DIR: {run_dir} has no scenario.yaml ({what})")
    return load_scenario(run_dir / "scenario.yaml")


def _message_dim(sc: Scenario) -> int | None:
    """The model's dimension where ``message_bytes: auto`` needs it: from the keys of a
    built-in problem (no JAX), else from the model."""
    if sc.timing.message_bytes != "auto" or sc.problem is None:
        return None
    from rfast_sim.experiment import budget
    from rfast_sim.scenario.problem_kinds import BUILTIN_KEYS

    if sc.problem.kind in BUILTIN_KEYS:
        return budget.model_dim(sc)
    from rfast_sim.experiment.plan import model_dim

    return model_dim(sc)


def _check_memory(sc: Scenario, end: float | None, cost: StepCost | None) -> None:
    """The memory estimate of one timing-only trace to `end` (None: the run's), with its
    packet log."""
    from rfast_sim.experiment import budget
    from rfast_sim.experiment.plan import timing_plan
    from rfast_sim.timing.devices import compute_rate

    run = sc.run.model_copy(update={"until": end if end is not None else sc.run.until})
    one = sc.model_copy(update={"seeds": 1, "problem": None, "run": run})
    try:
        budget.check(one, rate=compute_rate(timing_plan(sc), cost) if cost is not None else None,
                     packets=True)
    except ScenarioError as err:
        raise ScenarioError(f"{err}; a timeline needs less for a shorter window (--until)") \
            from None


@app.command()
def timeline(
    run_dir: Annotated[Path, typer.Argument(help="a run's output folder (rfast-sim run --out)")],
    algorithm: Annotated[str | None, typer.Option(help="which algorithm (default: the first)")]
    = None,
    seed: Annotated[int | None, typer.Option(help="which seed (default: the scenario's first)")]
    = None,
    from_: Annotated[float, typer.Option("--from", help="window start, simulated seconds")] = 0.0,
    until: Annotated[float | None, typer.Option(help="window end, simulated seconds (default: "
                                                "the run's end)")] = None,
    nodes: Annotated[str | None, typer.Option(help="these nodes only, e.g. 0-7,12 (default: "
                                              "all)")] = None,
    out: Annotated[Path | None, typer.Option(help="output file (default: "
                                             "RUN_DIR/timeline-ALGORITHM-SEED.json)")] = None,
) -> None:
    """Write one run's timeline as Chrome trace-event JSON, for Perfetto or chrome://tracing:
    a track per node (computations, rounds, barrier waits, down periods), every packet as a
    flow from its send to its arrival (or to why it was lost), egress queueing on a NIC
    track per node. The trace is re-derived from RUN_DIR/scenario.yaml, timing only (no
    maths), to a window's length past --until (so what is under way then shows where it
    ends); --from/--until and --nodes keep big runs openable."""
    from rfast_sim.experiment.plan import model_step_cost, packet_trace
    from rfast_sim.timing import timeline as tl

    try:
        sc = _scenario_of(run_dir)
        algorithms = list(dict.fromkeys(a.name for a in sc.algorithm_list))
        name, seed_ = tl.pick_run(algorithms, sc.seed_list, algorithm, seed,
                                  ("--algorithm", "--seed"))
        start, end = tl.check_window(sc.run.until, from_, until, ("--from", "--until"))
        picked = tl.parse_nodes(nodes, sc.nodes, "--nodes") if nodes is not None else None
        t0 = time.perf_counter()
        cost = model_step_cost(sc)
        derive = tl.derive_until(sc.run.until, start, end)
        _check_memory(sc, derive, cost)
        trace = packet_trace(sc, name, seed_, until=derive, dim=_message_dim(sc),
                             step_cost=cost)
        path = out or run_dir / f"timeline-{name}-{seed_}.json"
        count = tl.write_timeline(trace, sc.nodes, path, start=start, until=end, nodes=picked,
                                  title=f"{sc.name} · {name} · seed {seed_}",
                                  meta={"scenario": sc.name, "algorithm": name, "seed": seed_})
    except ScenarioError as err:
        fail(str(err))
        return
    except OSError as err:
        fail(f"--out: cannot write {err.filename}: {err.strerror}")
        return
    size = path.stat().st_size / 1e6
    window = f"{start:g}-{end:g} s" if math.isfinite(end) else f"from {start:g} s"
    console.print(f"wrote {path} ({count} events, {size:.3g} MB; {name}, seed {seed_}, "
                  f"{window}, {'nodes ' + nodes if nodes else 'all nodes'}; "
                  f"{time.perf_counter() - t0:.2g} s)", highlight=False)
    console.print(_OPEN, highlight=False)
