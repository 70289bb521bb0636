"""What every command shares: the typer app, the consoles, one-line errors, tables, progress."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pandas loads lazily: `--help` and `validate` stay quick
    import pandas as pd

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Simulate asynchronous decentralized training (R-FAST and baselines).")
# piped or redirected output is read by programs and people with wide editors: never cut a
# name to fit a terminal that is not there
PIPED_WIDTH = 100_000
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True)


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


def fmt(v: object) -> str:
    """A table cell: numbers to 3 significant digits, NaN as '-'."""
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"
    return str(v)


def print_table(df: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), justify="right" if col != "algorithm" else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(fmt(v) for v in row))
    console.print(table)


class _Count(ProgressColumn):
    """`done/total UNIT`, or `preparing` while the total is not known yet (the first run
    compiles before anything is counted)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("preparing")
        return Text(f"{task.completed:g}/{task.total:g} {self.unit}")


class Reporter:
    """Progress on stderr: a live bar on a terminal; piped, a line each time the count or the
    description moves, so a log shows the run is alive."""

    def __init__(self, description: str, unit: str, total: int | None = None,
                 *extra: ProgressColumn) -> None:
        self.unit, self.total, self.description = unit, total, description
        self.live = err_console.is_terminal
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            _Count(unit), *extra, console=err_console, transient=True)
        self.task = self.bar.add_task(description, total=total, failed=0)
        self.started = time.monotonic()
        self.shown: tuple[int, str | None] = (-1, None)

    def __enter__(self) -> Reporter:
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.bar.stop()

    def update(self, done: int, total: int | None = None, description: str | None = None,
               **fields: Any) -> None:
        """Record `done` of `total` (and the task's description and fields)."""
        self.total = total if total is not None else self.total
        self.bar.update(self.task, completed=done, total=self.total,
                        description=description or self.description, **fields)
        if not self.live and (done, description) != self.shown:
            self.shown = (done, description)
            more = "".join(f", {v} {k}" for k, v in fields.items() if v)
            err_console.print(f"{description or self.description}: {done}/{self.total} "
                              f"{self.unit}{more} ({time.monotonic() - self.started:.0f} s)",
                              highlight=False)
