"""Commands on one scenario: run, validate, list, show, plot, schema."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from rfast_sim.cli.common import (
    MemOpt,
    Reporter,
    ScenarioArg,
    SetOpt,
    app,
    console,
    err_console,
    fail,
    print_table,
)
from rfast_sim.cli.profile import profile_command
from rfast_sim.cli.tables import NETWORK_LEGEND, comparison_notes, comparison_view, network_view
from rfast_sim.scenario import ScenarioError
from rfast_sim.scenario.loading import load_scenario


@app.command()
def run(
    scenario: ScenarioArg,
    out: Annotated[Path | None, typer.Option(help="output folder (default runs/NAME-TIME)")] = None,
    set_: SetOpt = None,
    mode: Annotated[str | None, typer.Option(help="replay (fast) or online (literal)")] = None,
    max_memory: MemOpt = None,
) -> None:
    """Run a scenario: every algorithm x seed x step size; write metrics and a summary."""
    import rfast_sim
    from rfast_sim.experiment.budget import parse_bytes

    try:
        sc = load_scenario(scenario, set_ or [])
        if mode not in (None, "replay", "online"):
            raise ScenarioError(f"--mode: must be replay or online (got {mode!r})")
        limit = parse_bytes(max_memory) if max_memory is not None else None
        # the scenario's name becomes a folder name only once made safe (no '..', no '/')
        folder = out or Path("runs") / f"{sc.slug}-{datetime.now():%Y%m%d-%H%M%S}"
        with Reporter(f"simulating {sc.name}", "runs") as bar:

            def progress(done: int, total: int, name: str) -> None:
                bar.update(done, total, description=f"{sc.name}: {name}")

            result = rfast_sim.run(sc, mode=mode, progress=progress, max_memory=limit)
    except ScenarioError as err:
        fail(str(err))
        return
    result.save(folder)
    until = f"{sc.run.until:g} s simulated" if sc.run.until is not None else "max_updates"
    if result.timing_only:
        print_table(network_view(result.network()),
                    f"{sc.name}: {sc.nodes} nodes, {until}, timing only (medians over seeds)")
        console.print(NETWORK_LEGEND, highlight=False)
        console.print(f"results written to {folder}/ (metrics.parquet, scenario.yaml, "
                      "summary.json, network.csv)")
        return
    target = ", ".join(f"{k} {v:g}" for k, v in result.target.items())
    table = result.comparison()
    print_table(comparison_view(table), f"{sc.name}: {sc.nodes} nodes, {until}, target {target}")
    for note in comparison_notes(table):
        console.print(note, highlight=False)
    console.print(f"results written to {folder}/ (metrics.parquet, scenario.yaml, "
                  "summary.json, comparison.csv)")


@app.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(
        help="scenario YAML files, or shipped scenarios' names (rfast-sim list)")],
    set_: SetOpt = None,
    max_memory: MemOpt = None,
) -> None:
    """Check scenarios (schema, memory estimate, graphs, common root) without running them:
    each is compiled into its plan, as a run would. Several: one line each, exit status 2
    if any is refused."""
    from rfast_sim.experiment import budget
    from rfast_sim.experiment.plan import build_plan

    try:
        limit = budget.parse_bytes(max_memory) if max_memory else None
    except ScenarioError as err:
        fail(str(err))
        return
    refused = 0
    for scenario in scenarios:
        try:
            sc = load_scenario(scenario, set_ or [])
            est = build_plan(sc, limit).memory
        except ScenarioError as err:
            if len(scenarios) == 1:
                fail(str(err))
            refused += 1
            err_console.print(f"[bold red]error:[/] {scenario}: {err}", highlight=False,
                              soft_wrap=True)
            continue
        names = ", ".join(a.name for a in sc.algorithm_list)
        console.print(f"{scenario}: ok ({sc.nodes} nodes, algorithms: {names}); memory "
                      f"estimate {est.describe()}", highlight=False)
    if refused:
        raise typer.Exit(2)


app.command("profile")(profile_command)  # the step's cost and time (rfast_sim.cli.profile)


@app.command("list")
def list_() -> None:
    """Graph kinds, distributions, problems, algorithms and shipped scenarios."""
    from rfast_sim.scenario import DEVICES, GRAPH_KINDS, LAWS, LOSS_MODELS, registry
    from rfast_sim.scenario.loading import shipped_scenarios
    from rfast_sim.scenario.problem_kinds import LOSSES, MODELS, PARTITIONS, PROBLEM_KINDS

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        console.print(f"[bold]{title}:[/]")
        for name, text in rows:
            console.print(f"  {name:<21} {text}", highlight=False)

    section("graph kinds (graphs.pull / push / undirected .kind)",
            [(k.name, k.description) for k in GRAPH_KINDS])
    console.print("  (time-varying also: graphs.schedule)")
    section("laws (timing.compute / latency / speed .dist)",
            [(k.name, k.description) for k in LAWS])
    section("loss models", [(k.name, f"{k.description} ({k.key})") for k in LOSS_MODELS])
    section("devices (devices[].name)", [(k.name, k.description) for k in DEVICES])
    for family in (PROBLEM_KINDS, MODELS, LOSSES, PARTITIONS):
        section(plural(family.what), list(family.describe().items()))
    console.print("[bold]link timing:[/] timing.links, timing.clusters")
    console.print("[bold]faults:[/] timing.churn (nodes, rejoin keep|reset), timing.link_churn, "
                  "timing.outages (node or link), timing.barrier_timeout")
    section("algorithms", [(name, registry.info(name).description) for name in registry.names()])
    console.print("[bold]shipped scenarios[/] (run by name, e.g. rfast-sim run quickstart; "
                  "sweeps: rfast-sim sweep NAME; a copy to edit: rfast-sim show NAME > "
                  "FILE.yaml): " + ", ".join(shipped_scenarios()), highlight=False)


def plural(noun: str) -> str:
    """English plural of a registry's noun: 'loss' -> 'losses', 'model' -> 'models'."""
    return noun + ("es" if noun.endswith(("s", "x", "z", "ch", "sh")) else "s")


@app.command()
def show(name: Annotated[str, typer.Argument(
        help="a shipped scenario or sweep (rfast-sim list), e.g. quickstart")]) -> None:
    """Print a shipped scenario or sweep file (YAML, with its comments) to save and edit:
    `rfast-sim show quickstart > mine.yaml`."""
    from rfast_sim.scenario.loading import shipped_file

    try:
        path = shipped_file(name)
    except ScenarioError as err:
        fail(str(err))
        return
    sys.stdout.write(path.read_text())


@app.command()
def plot(
    folder: Annotated[Path, typer.Argument(help="a run or sweep output folder")],
    x: Annotated[str | None, typer.Option(help="sweep: swept key on the x axis")] = None,
    y: Annotated[str, typer.Option(help="sweep: speedup, or a summary column")] = "speedup",
    hue: Annotated[str, typer.Option(help="sweep: column that gives one line each")] = "algorithm",
    col: Annotated[str | None, typer.Option(help="sweep: swept key, a panel per value")] = None,
    row: Annotated[str | None, typer.Option(help="sweep: swept key, a row of panels per "
                                            "value")] = None,
    where: Annotated[list[str] | None, typer.Option(
        help="sweep: fix a swept key, KEY=VALUE (repeatable); other keys not on --x, --hue, "
        "--col or --row give lines of their own")] = None,
) -> None:
    """Write PNG figures: metrics against simulated time and updates (medians over seeds with
    their interquartile band), or a sweep's summary (every swept combination drawn, or named
    as fixed in the title)."""
    from rfast_sim import plotting

    try:
        files = plotting.plot_folder(folder, x=x, y=y, hue=hue, col=col, row=row,
                                     where=plotting.parse_where(where or []))
    except ScenarioError as err:
        fail(str(err))
        return
    for f in files:
        console.print(f"wrote {f}")


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="scenario | sweep")] = "scenario",
    out: Annotated[Path | None, typer.Option(help="write it to this file (default: stdout)")]
    = None,
) -> None:
    """Print the JSON Schema of a scenario file (or of a sweep file), for an editor's YAML
    support: save it and start a scenario with `# yaml-language-server: $schema=FILE`."""
    import json

    from rfast_sim.cli.schema import SCHEMAS

    if which not in SCHEMAS:
        fail(f"schema: unknown {which!r}; give {' or '.join(SCHEMAS)}")
        return
    text = json.dumps(SCHEMAS[which](), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        err_console.print(f"written to {out}")
