"""The docs' own Sphinx extension: generated pages and the CLI for sphinx-click.

- ``reference/scenario``: the generated key tables (:mod:`scenario_reference`) are appended
  to the page's hand-written introduction when it is read, and the page is read again on every
  build, so it follows the schema and the registries without a stale cache.
- the scenario's and the sweep file's JSON Schemas are written next to the site's pages
  (``scenario.schema.json``, ``sweep.schema.json``), for editors.
- ``reference/cli``: every command of the typer app, its usage, arguments and options, from
  the app itself (typer vendors its own click, so sphinx-click cannot read it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer.main
from sphinx.application import Sphinx

from rfast_sim.cli import app as _app
from rfast_sim.schema import SCHEMAS

cli = typer.main.get_command(_app)


def cli_markdown() -> str:
    """One section per command: its help, usage, arguments and options."""
    root = cli.make_context("rfast-sim", [], resilient_parsing=True)
    parts = []
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        ctx = command.make_context(name, [], parent=root, resilient_parsing=True)
        rows = [record for p in command.get_params(ctx)
                if (record := p.get_help_record(ctx)) is not None]
        parts += [f"## `rfast-sim {name}`", "", command.help or "", "", "```text",
                  command.get_usage(ctx), "```", "", "| argument / option | what |",
                  "|---|---|"]
        parts += [f"| `{flag}` | {text.replace('|', '/')} |" for flag, text in rows]
        parts.append("")
    return "\n".join(parts)


def _generated(docname: str) -> str | None:
    import scenario_reference

    make = {"reference/scenario": scenario_reference.scenario_markdown,
            "reference/cli": cli_markdown}.get(docname)
    return None if make is None else make()


GENERATED = ("reference/scenario", "reference/cli")


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    text = _generated(docname)
    if text is not None:
        source[0] += "\n\n" + text + "\n"


def _always_outdated(app: Sphinx, env: Any, added: set[str], changed: set[str],
                     removed: set[str]) -> list[str]:
    return [d for d in GENERATED if d in env.found_docs]


def _write_schemas(app: Sphinx) -> None:
    out = Path(app.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in SCHEMAS.items():
        (out / f"{name}.schema.json").write_text(json.dumps(make(), indent=2) + "\n")


class _EmptySectionGlob(logging.Filter):
    """Each section's toctree lists its pages in reading order, then ``*`` for pages dropped
    in later; that ``*`` matching nothing is expected, not a problem (Sphinx gives this
    warning no type, so ``suppress_warnings`` cannot name it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "toctree glob pattern '*' didn't match any documents" not in record.getMessage()


def setup(app: Sphinx) -> dict[str, Any]:
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(_EmptySectionGlob())
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_outdated)
    app.connect("builder-inited", _write_schemas)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
