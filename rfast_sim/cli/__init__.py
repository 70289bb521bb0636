"""The `rfast-sim` command line: run, validate, list, show, plot, timeline, sweep, summarize,
reproduce, schema."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from rfast_sim.cli import (  # noqa: F401  (they register)
    scenario_commands,
    sweep_commands,
    timeline_command,
)
from rfast_sim.cli.common import app, err_console, fail
from rfast_sim.cli.tables import comparison_notes, comparison_view, network_view

__all__ = ["app", "comparison_notes", "comparison_view", "fail", "main", "network_view"]


def _version(show: bool) -> None:
    if show:
        from rfast_sim._version import __version__

        typer.echo(f"rfast-sim {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="print the version and exit")] = False) -> None:
    """Simulate asynchronous decentralized training (R-FAST and baselines)."""


def main() -> None:
    """Console-script entry point."""
    # figures from the command line go to files: a headless backend for this process only,
    # unless the user chose one (the library itself never chooses, so notebooks keep theirs)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
