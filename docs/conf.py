"""Sphinx configuration of the rfast-sim docs (build: ``sphinx-build -W docs docs/_build/html``).

Notebooks under ``notebooks/`` are pages (``notebooks/*`` is a glob in the toctree): myst-nb
runs each one at build time through a jupyter-cache under ``docs/_build/.jupyter_cache/`` (one
per state of the sources, :func:`rfast_docs.notebook_cache`), so a notebook is executed again
only when it or the code changed, and the notebook tests read that same cache. A notebook that
fails fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

from rfast_docs import notebook_cache  # noqa: E402

import rfast_sim  # noqa: E402

project = "rfast-sim"
author = "the rfast-sim developers"
copyright = "2026, the rfast-sim developers"
release = version = rfast_sim.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax 3 shipped with the site (its files copied under _static/mathjax/): the equations
    # render without the internet, where the default loads MathJax from a CDN
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "rfast_docs",
    "reader_aids",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "furo"
html_title = f"rfast-sim {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# substitution: pages quote measured figures ({{ time_quickstart }}) from docs/_static/*.csv
# (reader_aids), never typed by hand
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist", "substitution"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_cache_path = str(notebook_cache(prune=True))
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"exclude-members": "model_config, model_fields, model_computed_fields"}
# docstrings quote names in single backticks, as Markdown does: show them as code
default_role = "code"

# Warnings are errors (-W) and every cross-reference must resolve. With no network there is no
# intersphinx, so the names of other libraries that annotations mention cannot resolve: named
# here, by package.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|pandas|pd|pydantic|pydantic_core|networkx|nx|simpy|"
               r"scipy|typer|click|pathlib|collections|typing|types|enum|os|matplotlib)(\..*)?"),
    (r"py:.*", r"(Array|ArrayLike|DataFrame|Path|PathLike|Any|Callable|Iterator|Mapping|"
               r"Sequence|Literal|NamedTuple|Protocol|TypeVar|Figure)"),
]
# internal names the API page mentions but does not document
nitpick_ignore = [
    ("py:class", "K"),
    ("py:class", "rfast_sim.scenario.kinds.K"),
    ("py:class", "rfast_sim.timing.topology.Channels"),
    ("py:class", "rfast_sim.maths.algorithms.base.Accesses"),
    ("py:mod", "rfast_sim.experiment.budget"),
    ("py:mod", "rfast_sim.timing.trace_events"),
    ("py:class", "rfast_sim.timing.devices.StepCost"),
    ("py:class", "StepCost"),
    ("py:class", "Channels"),
    ("py:class", "ScenarioGraphs"),
    ("py:class", "rfast_sim.timing.traces.ScenarioGraphs"),
    ("py:class", "rfast_sim.timing.TimingModel"),
    ("py:class", "rfast_sim.timing.engine.trace.Event"),
    ("py:class", "rfast_sim.experiment.budget.Estimate"),
]
# a plan's fields are the scenario's sub-specs: the scenario reference documents their keys
nitpick_ignore_regex += [(r"py:class", r"rfast_sim\.scenario\.[\w.]+")]
