"""The `rfast-sim` command line: run, validate, list, plot, sweep, summarize, reproduce, schema."""

from __future__ import annotations

import math
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rfast_sim.loading import load_scenario
from rfast_sim.profile import profile_command
from rfast_sim.scenario import ScenarioError, slug
from rfast_sim.stats import reached_text

if TYPE_CHECKING:  # pandas loads lazily: `--help` and `validate` stay quick
    import pandas as pd

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Simulate asynchronous decentralized training (R-FAST and baselines).")
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True)
app.command("profile")(profile_command)  # the step's cost and time (rfast_sim.profile)

def fail(message: str) -> None:
    """Print one line naming what is wrong and exit with status 2 (bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE (YAML value)")]
MemOpt = Annotated[str | None, typer.Option(
    "--max-memory", help="refuse runs estimated above this (e.g. 4GB; default: most of the "
    "available memory)")]
ScenarioArg = Annotated[Path, typer.Argument(
    help="scenario YAML file, or a shipped scenario's name (rfast-sim list)")]


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"
    return str(v)


SHORT = {"final_opt_gap": "opt_gap", "final_accuracy": "accuracy",
         "final_test_accuracy": "test_acc", "bytes": "GB"}


def _with_ci(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "-"
    shown = "inf" if math.isinf(value) else _fmt(float(value))
    if math.isnan(low):
        return shown
    hi = "inf" if math.isinf(high) else _fmt(float(high))
    return f"{shown} [{_fmt(float(low))}, {hi}]"


def comparison_view(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as a terminal shows it: reached as k/n, medians and speed-ups with
    their 95% CIs, short column names."""
    import pandas as pd

    ttt = next(c for c in df.columns if c.startswith("time_to_") and not c.endswith(
        ("_ci_low", "_ci_high")))
    view = pd.DataFrame({"algorithm": df["algorithm"]})
    view["reached"] = [reached_text(r, n) for r, n in zip(df["reached"], df["seeds"],
                                                          strict=True)]
    view[ttt.replace("time_to_", "t→")] = [
        _with_ci(*v) for v in zip(df[ttt], df[f"{ttt}_ci_low"], df[f"{ttt}_ci_high"],
                                  strict=True)]
    tuned = df["tuned"] if "tuned" in df else pd.Series(False, index=df.index)
    view["step"] = [f"{_fmt(float(h))} (auto)" if t else float(h)
                    for h, t in zip(df["step_size"], tuned, strict=True)]
    for col in ("updates", "bytes", "messages", "dropped", "final_opt_gap", "final_accuracy",
                "final_test_accuracy"):
        if col in df and df[col].notna().any():
            view[SHORT.get(col, col)] = df[col] / 1e9 if col == "bytes" else df[col]
    view["speedup"] = [_with_ci(*v) for v in zip(df["speedup"], df["speedup_ci_low"],
                                                  df["speedup_ci_high"], strict=True)]
    return view


NETWORK_LEGEND = ("totals per run; upd/node/s: updates per node per simulated second, slowest "
                  "/ median / fastest node; queue: mean send-queue length (max); delays per "
                  "packet in seconds: waiting in the queue, transfer, latency; round: seconds "
                  "per synchronous round (of which after the node's own computation)")


def network_view(df: pd.DataFrame) -> pd.DataFrame:
    """The network figures of a timing-only run as a terminal shows them."""
    import pandas as pd

    def col(name: str) -> pd.Series:
        return df[name] if name in df else pd.Series(math.nan, index=df.index)

    def pair(a: pd.Series, b: pd.Series) -> list[str]:
        return ["-" if math.isnan(x) else f"{_fmt(float(x))} ({_fmt(float(y))})"
                for x, y in zip(a, b, strict=True)]

    return pd.DataFrame({
        "algorithm": df["algorithm"], "seeds": df["seeds"], "updates": col("updates"),
        "messages": col("messages"), "GB": col("bytes") / 1e9, "dropped": col("dropped"),
        "upd/node/s": [" / ".join(_fmt(float(v)) for v in r) for r in zip(
            col("node_rate_min"), col("node_rate_median"), col("node_rate_max"), strict=True)],
        "queue": pair(col("mean_queue"), col("max_queue")),
        "queueing": col("mean_queueing_delay"), "transfer": col("mean_transfer_delay"),
        "latency": col("mean_latency"), "round": pair(col("mean_round"), col("mean_round_comm")),
    })


def comparison_notes(df: pd.DataFrame) -> list[str]:
    """Warnings a reader of the table needs: diverged seeds, best steps at a grid's edge (or,
    for a tuned step, at the edge of everything its search could try)."""
    tuned = df["tuned"] if "tuned" in df else [False] * len(df)
    notes = [f"{r.algorithm}: best step {r.step_size:g} is at the edge of the steps auto "
             "tried within its budget; raise step_size.auto.budget or move auto.low / high"
             if t else f"{r.algorithm}: best step {r.step_size:g} is at the edge of its grid; "
             "widen step_size (or use step_size: auto)"
             for r, t in zip(df.itertuples(), tuned, strict=True) if r.step_at_edge]
    notes += [f"{r.algorithm}: {r.diverged} of {r.seeds} seeds diverged at its best step"
              for r in df.itertuples() if r.diverged]
    seeds = int(df["seeds"].max()) if len(df) else 0
    notes.append(f"medians over {seeds} seed(s), misses counted as inf; [95% bootstrap CI]"
                 + (" (few seeds: the CI is wide)" if seeds < 5 else ""))
    return notes


def print_table(df: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), justify="right" if col != "algorithm" else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


@app.command()
def run(
    scenario: ScenarioArg,
    out: Annotated[Path | None, typer.Option(help="output folder (default runs/NAME-TIME)")] = None,
    set_: SetOpt = None,
    mode: Annotated[str | None, typer.Option(help="replay (fast) or online (literal)")] = None,
    max_memory: MemOpt = None,
) -> None:
    """Run a scenario: every algorithm x seed x step size; write metrics and a summary."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import rfast_sim
    from rfast_sim.budget import parse_bytes

    try:
        sc = load_scenario(scenario, set_ or [])
        if mode not in (None, "replay", "online"):
            raise ScenarioError(f"--mode: must be replay or online (got {mode!r})")
        limit = parse_bytes(max_memory) if max_memory is not None else None
        # the scenario's name becomes a folder name only once made safe (no '..', no '/')
        folder = out or Path("runs") / f"{sc.slug}-{datetime.now():%Y%m%d-%H%M%S}"
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
                "{task.completed}/{task.total} runs"), TimeElapsedColumn(),
                console=err_console, transient=True) as bar:
            task = bar.add_task(f"simulating {sc.name}", total=None)

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, total=total, description=f"{sc.name}: {name}")

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
def validate(scenario: ScenarioArg, set_: SetOpt = None, max_memory: MemOpt = None) -> None:
    """Check a scenario (schema, memory estimate, graphs, common root) without running it."""
    from rfast_sim import budget
    from rfast_sim.runner import model_dim, model_rate
    from rfast_sim.traces import scenario_graphs

    try:
        sc = load_scenario(scenario, set_ or [])
        est = budget.check(sc, budget.parse_bytes(max_memory) if max_memory else None,
                           dim=model_dim(sc), rate=model_rate(sc))
        scenario_graphs(sc, [a.name for a in sc.algorithm_list])
    except ScenarioError as err:
        fail(str(err))
        return
    names = ", ".join(a.name for a in sc.algorithm_list)
    console.print(f"{scenario}: ok ({sc.nodes} nodes, algorithms: {names}); memory estimate "
                  f"{est.describe()}", highlight=False)


@app.command("list")
def list_() -> None:
    """Graph kinds, distributions, problems, algorithms and shipped scenarios."""
    from rfast_sim import registry
    from rfast_sim.loading import shipped_scenarios
    from rfast_sim.scenario import DEVICES, GRAPH_KINDS, LAWS, LOSS_MODELS
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
        section(f"{family.what}s", list(family.describe().items()))
    console.print("[bold]link timing:[/] timing.links, timing.clusters")
    console.print("[bold]faults:[/] timing.churn (nodes, rejoin keep|reset), timing.link_churn, "
                  "timing.outages (node or link), timing.barrier_timeout")
    section("algorithms", [(name, registry.info(name).description) for name in registry.names()])
    console.print("[bold]shipped scenarios[/] (run by name, e.g. rfast-sim run quickstart): "
                  + ", ".join(shipped_scenarios()))


@app.command()
def plot(
    folder: Annotated[Path, typer.Argument(help="a run or sweep output folder")],
    x: Annotated[str | None, typer.Option(help="sweep: swept key on the x axis")] = None,
    y: Annotated[str, typer.Option(help="sweep: speedup, or a summary column")] = "speedup",
    hue: Annotated[str, typer.Option(help="sweep: column that gives one line each")] = "algorithm",
) -> None:
    """Write PNG figures: metrics against simulated time and updates (or a sweep's summary)."""
    from rfast_sim import plotting

    try:
        files = plotting.plot_folder(folder, x=x, y=y, hue=hue)
    except ScenarioError as err:
        fail(str(err))
        return
    for f in files:
        console.print(f"wrote {f}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="sweep YAML file (base, grid, zip, seeds)")],
    out: Annotated[Path | None, typer.Option(help="output folder (default runs/NAME-sweep)")]
    = None,
    workers: Annotated[int | None, typer.Option(help="parallel workers (default: cores)")] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) or dask")] = "local",
    address: Annotated[str | None, typer.Option(help="dask scheduler, e.g. tcp://host:8786 "
                                                "(default: a LocalCluster)")] = None,
    resume: Annotated[bool, typer.Option(help="finish an interrupted sweep in --out")] = False,
    dry_run: Annotated[bool, typer.Option(help="list the points and exit")] = False,
) -> None:
    """Run a parameter sweep: every grid x zip x seed point, resumable, local or on Dask."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    import rfast_sim.sweeps as sweep_mod

    try:
        if executor not in ("local", "dask"):
            raise ScenarioError(f"--executor: must be local or dask (got {executor!r})")
        points = sweep_mod.expand(spec)
        if dry_run:
            print_points(points)
            return
        folder = out or Path("runs") / f"{slug(spec.stem)}-sweep"
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} points"),
                      TextColumn("[red]{task.fields[failed]} failed"),
                      TimeRemainingColumn(), console=err_console) as bar:
            task = bar.add_task(f"sweep {spec.name}", total=len(points), failed=0)

            def progress(done: int, failed: int, total: int) -> None:
                bar.update(task, completed=done + failed, failed=failed)

            sweep_mod.run_sweep(spec, folder, executor=executor,  # type: ignore[arg-type]
                                workers=workers, address=address, resume=resume,
                                progress=progress)
    except ScenarioError as err:
        fail(str(err))
        return
    failed = sweep_mod.failures(folder)
    console.print(f"{len(points) - len(failed)} of {len(points)} points done; results in "
                  f"{folder}/ (points/*.parquet, manifest.json)")
    for run_id, message in failed.items():
        console.print(f"[red]failed[/] {run_id}: {message}", highlight=False)
    if failed:
        raise typer.Exit(1)


def print_points(points: list) -> None:
    table = Table(title=f"{len(points)} points")
    keys = list(points[0].params) if points else []
    for col in ["run_id", *keys, "seed", "valid"]:
        table.add_column(col)
    for p in points:
        table.add_row(p.run_id, *(str(p.params[k]) for k in keys), str(p.seed),
                      "yes" if p.error is None else f"no: {p.error}")
    console.print(table)


@app.command()
def summarize(folder: Annotated[Path, typer.Argument(help="a sweep's --out folder")]) -> None:
    """A sweep's table by swept keys: reached k/n, median time and speed-up with 95% CIs."""
    import rfast_sim.sweeps as sweep_mod

    try:
        table = sweep_mod.summarize(folder)
    except ScenarioError as err:
        fail(str(err))
        return
    table.to_csv(folder / "summary.csv", index=False)
    keys = table.attrs["keys"]
    if table.attrs.get("timing_only"):
        print_table(table, f"{folder}: timing only, medians over seeds of the final counters")
        console.print(f"written to {folder}/summary.csv")
        return
    view = comparison_view(table)
    for key in reversed(keys):
        view.insert(0, key, table[key])
    target = ", ".join(f"{k} {v:g}" for k, v in table.attrs["target"].items())
    print_table(view, f"{folder}: target {target}, speed-up over {table.attrs['baseline']}")
    console.print(comparison_notes(table)[-1], highlight=False)
    console.print(f"written to {folder}/summary.csv")


@app.command()
def reproduce(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/paper"),
    set_: SetOpt = None,
) -> None:
    """Check the R-FAST paper's claims on scenarios/paper/: a table, per-claim verdicts, figures."""
    from rfast_sim.paper import reproduce as run_claims

    try:
        table = run_claims(out, overrides=set_ or [],
                           progress=lambda name: err_console.print(f"running {name}"))
    except ScenarioError as err:
        fail(str(err))
        return
    print_table(table.drop(columns=["scenario"]), "the R-FAST paper's claims in the simulator")
    console.print(f"written to {out}/ (claims.csv, claims.md, one folder of figures per scenario)")


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="scenario | sweep")] = "scenario",
    out: Annotated[Path | None, typer.Option(help="write it to this file (default: stdout)")]
    = None,
) -> None:
    """Print the JSON Schema of a scenario file (or of a sweep file), for an editor's YAML
    support: save it and start a scenario with `# yaml-language-server: $schema=FILE`."""
    import json

    from rfast_sim.schema import SCHEMAS

    if which not in SCHEMAS:
        fail(f"schema: unknown {which!r}; give {' or '.join(SCHEMAS)}")
        return
    text = json.dumps(SCHEMAS[which](), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        err_console.print(f"written to {out}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
