"""The docs' own Sphinx extension: generated pages and the CLI for sphinx-click.

- ``reference/scenario``: the generated key tables (:mod:`scenario_reference`) are appended
  to the page's hand-written introduction when it is read, and the page is read again on every
  build, so it follows the schema and the registries without a stale cache.
- the scenario's and the sweep file's JSON Schemas are written next to the site's pages
  (``scenario.schema.json``, ``sweep.schema.json``), for editors.
- ``cli``: the typer app as a click command, for the ``click`` directive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer.main
from sphinx.application import Sphinx

from rfast_sim.cli import app as _app
from rfast_sim.schema import SCHEMAS

cli = typer.main.get_command(_app)

GENERATED = {"reference/scenario": "scenario_markdown"}


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname in GENERATED:
        import scenario_reference

        source[0] += "\n\n" + getattr(scenario_reference, GENERATED[docname])() + "\n"


def _always_outdated(app: Sphinx, env: Any, added: set[str], changed: set[str],
                     removed: set[str]) -> list[str]:
    return [d for d in GENERATED if d in env.found_docs]


def _write_schemas(app: Sphinx) -> None:
    out = Path(app.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in SCHEMAS.items():
        (out / f"{name}.schema.json").write_text(json.dumps(make(), indent=2) + "\n")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_outdated)
    app.connect("builder-inited", _write_schemas)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
