"""Commands over many runs: sweep, summarize, reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rfast_sim.cli.common import Reporter, SetOpt, app, console, err_console, fail, print_table
from rfast_sim.cli.tables import comparison_notes, comparison_view
from rfast_sim.scenario import ScenarioError, slug


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(
        help="sweep YAML file (base, grid, zip, seeds), or a shipped sweep's name")],
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
    from rich.progress import TextColumn, TimeRemainingColumn

    import rfast_sim.sweeps as sweep_mod

    try:
        if executor not in ("local", "dask"):
            raise ScenarioError(f"--executor: must be local or dask (got {executor!r})")
        points = sweep_mod.expand(spec)
        if dry_run:
            print_points(points)
            return
        folder = out or Path("runs") / f"{slug(spec.stem)}-sweep"
        with Reporter(f"sweep {spec.name}", "points", len(points),
                      TextColumn("[red]{task.fields[failed]} failed"),
                      TimeRemainingColumn()) as bar:

            def progress(done: int, failed: int, total: int) -> None:
                bar.update(done + failed, total, failed=failed)

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
    only: Annotated[list[str] | None, typer.Option(
        help="only the claims on this paper scenario (repeatable), without the "
        "contention-free reruns and design variants: a smoke run")] = None,
) -> None:
    """Check the R-FAST paper's claims on scenarios/paper/: a table, per-claim verdicts, figures."""
    from rfast_sim.paper import reproduce as run_claims

    try:
        table = run_claims(out, overrides=set_ or [], only=only,
                           progress=lambda name: err_console.print(f"running {name}"))
    except ScenarioError as err:
        fail(str(err))
        return
    print_table(table.drop(columns=["scenario"]), "the R-FAST paper's claims in the simulator")
    console.print(f"written to {out}/ (claims.csv, claims.md, one folder of figures per scenario)")
