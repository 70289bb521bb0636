"""What a reader needs beside the pages: measured figures, notebook downloads.

- Measured figures as MyST substitutions, read from the CSVs the scripts under
  ``docs/figures/`` write, so a page quotes them (``{{ qs_s5_speedup }}``) without typing them:
  ``run_times.csv`` (``run_times.py``) gives ``time_<key>`` (a wall time, e.g. ``2 min``; keys:
  :func:`key`; ``time_nb_min`` and ``time_nb_max``: the fastest and slowest notebook) and
  ``quickstart_flip.csv`` (``quickstart_flip.py``) ``qs_<straggler>_<column>``.
- ``<!-- run-times-table -->`` in a page becomes the table of ``run_times.csv``,
  ``<!-- async-pays-table -->`` R-FAST's rows of ``when_async_pays.csv``.
- Each notebook page opens with a link to download its ``.ipynb`` (copied next to the page)
  and the time it took to run here (``run_times.csv``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).resolve().parents[1] / "_static"
RUN_TIMES = STATIC / "run_times.csv"
QUICKSTART = STATIC / "quickstart_flip.csv"
FLIP_COLUMNS = {"R-FAST t→target (s)": "rfast", "Ring-AllReduce t→target (s)": "ring",
                "R-FAST speed-up": "speedup", "best step R-FAST / ring": "steps",
                "slowest node, updates/s (R-FAST)": "slowest", "ring rounds/s": "rounds"}


def duration(seconds: float) -> str:
    """A wall time as a reader wants it: ``40 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.2g} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2g} h"


def key(what: str, command: str) -> str:
    """A run-times row's substitution key: ``nb_02`` (a notebook), ``quickstart``,
    ``docs_build``, ``reproduce``, ``sweep_stragglers`` (a shipped sweep's file name)."""
    if what.startswith("notebook "):
        return "nb_" + what.split()[1][:2]
    if command.startswith("sphinx"):
        return "docs_build"
    sweep = re.search(r"(\w+)\.yaml", command)
    return sweep.group(1) if sweep else command.split()[-1]


def run_times() -> pd.DataFrame:
    """The measured run times, with their key and a readable duration."""
    table = pd.read_csv(RUN_TIMES)
    keys = [key(w, c) for w, c in zip(table["what"], table["command"], strict=True)]
    return table.assign(key=keys, duration=table["seconds"].map(duration))


def measured_keys() -> set[str]:
    """The run times measured directly: the quickstart, each notebook, the docs build."""
    root = STATIC.parents[1]
    return {"quickstart", "docs_build",
            *(f"nb_{p.name[:2]}" for p in (root / "notebooks").glob("*.ipynb"))}


def extrapolated_keys() -> set[str]:
    """The run times extrapolated from partial runs: a full reproduce, each shipped sweep."""
    return {"reproduce", *(p.stem for p in (STATIC.parents[1] / "scenarios").glob("sweep_*.yaml"))}


def expected_keys() -> set[str]:
    """The run times the pages quote."""
    return measured_keys() | extrapolated_keys()


def substitutions() -> dict[str, str]:
    """Every figure a page may quote; a run time not measured yet reads so (the build passes,
    ``tests/test_docs_reader.py`` fails until it is measured)."""
    subs = {f"time_{k}": "(not measured yet)" for k in expected_keys()}
    times = run_times()
    subs |= {f"time_{r.key}": r.duration for r in times.itertuples()}
    notebooks = times[times["key"].str.startswith("nb_")]["seconds"]
    if len(notebooks):  # the fastest and the slowest notebook: "each runs in 16 to 30 s"
        subs |= {"time_nb_min": duration(notebooks.min()),
                 "time_nb_max": duration(notebooks.max())}
    flip = pd.read_csv(QUICKSTART)
    for row in flip.to_dict("records"):
        label = "s1" if row["straggler"] == "none" else "s" + str(row["straggler"]).rstrip("x")
        subs |= {f"qs_{label}_{short}": str(row[col]) for col, short in FLIP_COLUMNS.items()}
    return subs


MARKER = "<!-- run-times-table -->"


def run_times_markdown() -> str:
    """The measured run times as a Markdown table (replaces MARKER in a page)."""
    lines = ["| what | command | wall time | how | load average (before, after) |",
             "|---|---|---:|---|---|"]
    lines += [f"| {r.what} | `{r.command}` | {r.duration} | {r.how} | "
              f"{r.load_before:g}, {r.load_after:g} on {r.cores} cores ({r.date}) |"
              for r in run_times().itertuples()]
    return "\n".join(lines)


def async_pays_markdown() -> str:
    """R-FAST's rows of the when-async-pays sweep summary as a Markdown table."""
    table = pd.read_csv(STATIC / "when_async_pays.csv")
    ring = table[table["algorithm"] == "allreduce_sgd"].set_index(
        ["timing.message_bytes", "timing.stragglers.slowdown", "timing.nic.queue"])
    lines = ["| s per message on the NIC | straggler | R-FAST's queue | R-FAST reached | "
             "R-FAST t→target (s) | Ring-AllReduce t→target (s) | speed-up [95% CI] |",
             "|---:|---|---|---|---:|---:|---|"]
    for r in table[table["algorithm"] == "rfast"].to_dict("records"):
        point = (r["timing.message_bytes"], r["timing.stragglers.slowdown"], r["timing.nic.queue"])
        slow = r["timing.stragglers.slowdown"]
        lines.append(
            f"| {r['timing.message_bytes'] / 1.25e9:.3g} | {'none' if slow == 1 else f'{slow:g}x'}"
            f" | `{r['timing.nic.queue']}` | {r['reached']} | {r['time_to_target']:g} | "
            f"{ring.loc[point, 'time_to_target']:g} | {r['speedup']:.2f}x "
            f"[{r['speedup_ci_low']:.2f}, {r['speedup_ci_high']:.2f}] |")
    return "\n".join(lines)


TABLES = {MARKER: run_times_markdown, "<!-- async-pays-table -->": async_pays_markdown}


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    for marker, make in TABLES.items():
        if marker in source[0]:
            source[0] = source[0].replace(marker, make())


def _config_inited(app: Sphinx, config: Config) -> None:
    config.myst_substitutions = {**substitutions(), **config.myst_substitutions}


def _is_notebook(app: Sphinx, docname: str) -> bool:
    return Path(app.env.doc2path(docname)).suffix == ".ipynb"


def _notebook_header(app: Sphinx, doctree: nodes.document) -> None:
    """A download link and the measured run time under a notebook page's title."""
    docname = app.env.docname
    if not _is_notebook(app, docname) or app.builder.format != "html":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    name = Path(docname).name
    para = nodes.paragraph(classes=["notebook-download"])
    para += nodes.reference("", f"Download this notebook ({name}.ipynb)",
                            refuri=f"{name}.ipynb")
    times = run_times().set_index("key")
    row = f"nb_{name[:2]}"
    if row in times.index:
        where = app.builder.get_relative_uri(docname, "getting_started") + "#how-long-things-take"
        para += nodes.Text(f" · runs in {times.loc[row, 'duration']} on a "
                           f"{times.loc[row, 'cores']}-core CPU (")
        para += nodes.reference("", "measured", refuri=where)
        para += nodes.Text(")")
    section.insert(1, para)


def _outdated(app: Sphinx, env: Any, added: set[str], changed: set[str],
              removed: set[str]) -> list[str]:
    """Pages quoting measured figures (notebooks, substitutions) are read again on every
    build, so a new CSV shows without a clean build."""
    return [d for d in env.found_docs if _is_notebook(app, d)
            or any(m in Path(env.doc2path(d)).read_text(errors="ignore")
                   for m in ("{{", *TABLES))]


def _copy_notebooks(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for docname in app.env.found_docs:
        if _is_notebook(app, docname):
            target = Path(app.outdir) / f"{docname}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(app.env.doc2path(docname), target)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _notebook_header)
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
