"""The docs' own Sphinx extension: generated pages and the CLI for sphinx-click.

- ``reference/scenario``: the generated key tables (:mod:`scenario_reference`) are appended
  to the page's hand-written introduction when it is read, and the page is read again on every
  build, so it follows the schema and the registries without a stale cache.
- the scenario's and the sweep file's JSON Schemas are written next to the site's pages
  (``scenario.schema.json``, ``sweep.schema.json``), for editors.
- ``notebook_cache()``: the notebooks' jupyter-cache, one per state of the package and the
  shipped scenarios, so a cached notebook is reused only while the code it ran is unchanged.
- ``reference/cli``: every command of the typer app, its usage, arguments and options, from
  the app itself (typer vendors its own click, so sphinx-click cannot read it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import typer.main
from sphinx.application import Sphinx

from rfast_sim.cli import app as _app
from rfast_sim.cli.schema import SCHEMAS

cli = typer.main.get_command(_app)
ROOT = Path(__file__).resolve().parents[2]
CACHES = ROOT / "docs" / "_build" / ".jupyter_cache"


def source_digest() -> str:
    """A hash of what the notebooks run: the package's sources and the shipped scenarios."""
    import rfast_sim

    digest = hashlib.sha256()
    for base in (Path(rfast_sim.__file__).parent, ROOT / "scenarios"):
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml", ".csv", ".npz"):
                digest.update(path.relative_to(base).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def notebook_cache(prune: bool = False) -> Path:
    """The jupyter-cache of the current sources (`prune`: remove those of earlier ones).

    jupyter-cache keys a notebook by its code cells only; keying the folder by the sources
    too means a change to the package runs the notebooks again instead of showing (and
    passing) outputs of the old code."""
    current = CACHES / source_digest()
    if prune and CACHES.is_dir():
        for old in CACHES.iterdir():
            if old == current:
                continue
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
    return current


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
