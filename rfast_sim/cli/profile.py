"""`rfast-sim profile`: what one local step of a scenario's model costs, what it would take on
every device of the table and of the scenario (the roofline), and what it takes here.

The predicted times are those ``timing.compute.mean: model`` gives the nodes; the measured
time of the jitted step on this machine (and on a GPU where JAX sees one) is there to
calibrate ``efficiency``: the implied efficiency is the one that makes the table's entry for
this kind of device predict the measurement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rfast_sim.scenario import DEVICES, DeviceClass, ScenarioError
from rfast_sim.scenario.devices import table_class
from rfast_sim.scenario.loading import load_scenario

if TYPE_CHECKING:  # scipy (the timing laws) loads when the command runs: `--version` stays quick
    from rfast_sim.scenario import Problem
    from rfast_sim.timing.devices import StepCost
    from rfast_sim.timing.plan import TimingPlan

# the table's entry a JAX platform's device is compared with: the CPU entry, or a GPU whose
# name (jax's device_kind, e.g. "NVIDIA A100-SXM4-40GB") contains the entry's model
_KINDS = {"V100": "v100", "A100-SXM4-40GB": "a100_40gb", "A100-SXM4-80GB": "a100_80gb",
          "A100": "a100_40gb", "H100": "h100_sxm", "T4": "t4"}


def implied_efficiency(cost: StepCost, device: DeviceClass, dtype: str,
                       seconds: float) -> float | None:
    """The efficiency at which `device`'s roofline predicts `seconds` for the step (None
    where the measurement does not exceed the device's overhead)."""
    from rfast_sim.timing.devices import roofline

    bare = roofline(cost, device.model_copy(update={"efficiency": 1.0, "overhead_s": 0.0}),
                    dtype).step_time_s
    return bare / (seconds - device.overhead_s) if seconds > device.overhead_s else None


def _table_entry(platform: str, kind: str) -> str | None:
    if platform == "cpu":
        return "cpu"
    return next((name for key, name in _KINDS.items() if key.lower() in kind.lower()), None)


def measurements(dtype: str, ops: Any, data: Any, cost: StepCost,
                 repeats: int) -> dict[str, Any]:
    """The jitted step's time on the first device of each platform JAX sees here."""
    import jax

    from rfast_sim.maths.workload import measure_step

    out: dict[str, Any] = {}
    platforms = dict.fromkeys(["cpu", *(d.platform for d in jax.devices())])
    for platform in platforms:
        try:
            device = jax.devices(platform)[0]
        except RuntimeError:  # a platform JAX_PLATFORMS leaves out
            continue
        timed = measure_step(ops, data, device, repeats)
        entry = _table_entry(platform, device.device_kind)
        implied = {f"implied_efficiency{suffix}": implied_efficiency(
            cost, table_class(entry), dtype, timed[key]) if entry else None
            for suffix, key in (("", "median_s"), ("_fastest", "min_s"))}
        out[platform] = {"device": device.device_kind, **timed, "table_entry": entry,
                         **implied}
    return out


def profile_scenario(problem: Problem | None, tp: TimingPlan, seed: int,
                     repeats: int = 200) -> dict[str, Any]:
    """The profile of a scenario's local step (its problem on `tp`'s nodes, devices and
    dtype, the data of `seed`), as `--json` prints it: ``{"model": {...}, "devices": [...],
    "measured": {platform: {...}}}``. Only what the step needs is built: no graphs, no
    memory estimate of a run (a scenario too big to run can still be profiled)."""
    from rfast_sim.maths.workload import problem_cost
    from rfast_sim.timing.devices import roofline

    if problem is None:
        raise ScenarioError("problem: profile times the problem's local step, and a "
                            "timing-only run (problem: null) has none")
    ops, data, cost = problem_cost(problem, tp.nodes, seed, tp.dtype)
    model = {"problem": problem.kind, "parameters": ops.dim, "dtype": tp.dtype,
             "batch_size": ops.batch_size, "message_bytes": tp.message_bytes(ops.dim),
             "flops": cost.flops, "bytes": cost.bytes_accessed}
    devices = [{**roofline(cost, table_class(name), tp.dtype).record(), "where": "table"}
               for name in DEVICES.names()]
    devices += [{**roofline(cost, d.resolve(), tp.dtype).record(), "where": "scenario"}
                for d in tp.devices]
    return {"model": model, "devices": devices,
            "measured": measurements(tp.dtype, ops, data, cost, repeats)}


def print_profile(report: dict[str, Any], console: Console) -> None:
    """The profile as tables: the model, the predictions, the measurements."""
    m = report["model"]
    console.print(f"{m['problem']}: {m['parameters']:,} parameters, {m['dtype']}, batch "
                  f"{m['batch_size']}, {m['message_bytes']:,.0f} bytes per message; one local "
                  f"step: {m['flops']:.3g} FLOPs, {m['bytes']:.3g} bytes accessed",
                  highlight=False)
    table = Table(title="predicted step time (roofline)")
    for col in ("device", "from", "step time (us)", "bound"):
        table.add_column(col, justify="left" if col in ("device", "from") else "right")
    for d in report["devices"]:
        table.add_row(d["name"], d["where"], f"{d['step_time_s'] * 1e6:.3g}", d["bound"])
    console.print(table)
    for platform, t in report["measured"].items():
        eff, fast = t["implied_efficiency"], t["implied_efficiency_fastest"]
        hint = (f"; {t['table_entry']} predicts the median at efficiency {eff:.3g}"
                + (f", the fastest at {fast:.3g}" if fast is not None else "")
                if eff is not None else "")
        console.print(f"measured on {platform} ({t['device']}): median "
                      f"{t['median_s'] * 1e6:.3g} us, fastest {t['min_s'] * 1e6:.3g} us over "
                      f"{t['repeats']} calls{hint}", highlight=False)


def profile_command(
    scenario: Annotated[Path, typer.Argument(
        help="scenario YAML file, or a shipped scenario's name (rfast-sim list)")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override KEY=VALUE (YAML value)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="timed calls of the step")] = 200,
) -> None:
    """A local step's cost: FLOPs, bytes, predicted time on each device, measured time here."""
    from rfast_sim.experiment.budget import check_data
    from rfast_sim.experiment.plan import timing_plan

    console = Console()
    try:
        sc = load_scenario(scenario, set_ or [])
        check_data(sc)  # the step reads the data; a run's trace is not built
        report = profile_scenario(sc.problem, timing_plan(sc), sc.seed, repeats)
    except ScenarioError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False,
                                   soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        print_profile(report, console)
