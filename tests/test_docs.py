"""The docs site: it builds with warnings as errors, and its reference pages are complete.

The scenario reference is generated from the JSON Schema; here it is compared with the keys
the sweep machinery derives from the pydantic models themselves (``schema_keys``).
"""

from __future__ import annotations

import html
import re
import sys

import pytest
from conftest import DOCS
from pydantic import BaseModel, Field

from rfast_sim.cli.schema import scenario_schema
from rfast_sim.scenario import GRAPH_KINDS, GraphKind
from rfast_sim.sweeps.spec import schema_keys

sys.path.insert(0, str(DOCS / "_ext"))
import scenario_reference

# the docs build (a session fixture) runs once, on one xdist worker
pytestmark = pytest.mark.xdist_group("docs")

HTML = DOCS / "_build" / "html"


def _page(docs_build, name: str) -> str:
    code, log = docs_build
    assert code == 0, f"the docs build failed:\n{log[-6000:]}"
    return html.unescape((HTML / f"{name}.html").read_text())


def test_docs_build_with_warnings_as_errors(docs_build):
    code, log = docs_build
    assert code == 0, log[-6000:]
    for page in ("index", "getting_started", "concepts/rfast", "howto/scenarios",
                 "results/when_async_pays", "reference/api", "reference/cli", "changelog",
                 "notebooks/01_quickstart"):
        assert (HTML / f"{page}.html").is_file(), page
    assert (HTML / "scenario.schema.json").is_file()
    assert (HTML / "sweep.schema.json").is_file()


def test_scenario_reference_lists_every_schema_key():
    documented = {k.replace("[]", "") for k in
                  scenario_reference.Reference(scenario_schema()).documented_keys()}
    keys = {k for k in schema_keys() if not k.endswith(".*")}
    assert documented == keys, (sorted(keys - documented), sorted(documented - keys))


def test_scenario_reference_page_shows_every_key_and_kind(docs_build):
    page = _page(docs_build, "reference/scenario")
    ref = scenario_reference.Reference(scenario_schema())
    rows = ref.rows() + [r for b in ref.shared for r in ref.block_rows(b)]
    missing = [r.key for r in rows if f'<span class="pre">{r.key}</span>' not in page]
    assert not missing, missing
    for kind in GRAPH_KINDS.names():
        assert f'<span class="pre">{kind}</span>' in page, kind


def test_cli_page_documents_every_command(docs_build):
    from rfast_docs import cli

    page = _page(docs_build, "reference/cli")
    for name in cli.commands:  # type: ignore[attr-defined]
        assert f"rfast-sim {name}" in page, name


def test_api_page_documents_the_public_names(docs_build):
    import rfast_sim

    page = _page(docs_build, "reference/api")
    for name in set(rfast_sim.__all__) - {"__version__"}:
        assert f'id="rfast_sim.{name}"' in page, name
    for name in ("maths.algorithms.base.Algorithm", "maths.problems.base.ProblemOps",
                 "scenario.registry.AlgorithmInfo", "experiment.plan.build_plan"):
        assert f'id="rfast_sim.{name}"' in page, name


class _Law(BaseModel):
    """A shared block."""

    mean: float = Field(1.0, ge=0, description="the mean")


class _Inner(BaseModel):
    a: int = Field(3, gt=0, le=9, description="an int")
    law: _Law | None = None


class _Item(BaseModel):
    a: int = Field(3, description="an item's int")
    law: _Law | None = None


class _Top(BaseModel):
    inner: _Inner = Field(_Inner(a=5), description="an inline block")
    items: list[_Item] = Field([], description="a list of blocks")
    first: _Law = Field(_Law(mean=2.0), description="one law")
    second: _Law | None = Field(None, description="another")
    free: dict[str, float] = Field({}, description="a mapping")


def test_reference_expands_inline_blocks_and_links_shared_ones():
    ref = scenario_reference.Reference(_Top.model_json_schema())
    assert ref.shared == ["_Law"]
    rows = {r.key: r for r in ref.rows()}
    assert list(rows) == ["inner", "inner.a", "inner.law", "items", "items[].a", "items[].law",
                          "first", "second", "free"]
    assert rows["inner.a"].default == "`5`"  # the enclosing block's default, not the field's
    assert rows["items[].a"].default == "`3`"
    assert rows["inner.a"].bounds == "> 0, <= 9"
    assert rows["first"].default == "`{mean: 2.0}`"
    assert "_Law <block-_law>" in rows["second"].type
    assert rows["second"].type.endswith("or null")
    assert rows["free"].type == "mapping of names to float"
    assert rows["inner"].description == "an inline block"
    assert sorted(ref.documented_keys()) == sorted([*rows, "inner.law.mean", "items[].law.mean",
                                         "first.mean", "second.mean"])


def test_a_registered_kind_documents_itself():
    GRAPH_KINDS.register(GraphKind("docs_test_ring", "a kind registered by a test"))
    try:
        text = scenario_reference.registry_markdown()
        assert re.search(r"`docs_test_ring` \|  \| a kind registered by a test", text)
        enum = scenario_schema()["$defs"]["GraphSpec"]["properties"]["kind"]["enum"]
        assert "docs_test_ring" in enum
    finally:
        GRAPH_KINDS.unregister("docs_test_ring")


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")
                                        if "_build" not in p.parts))
def test_pages_are_reachable_from_a_glob_toctree(page):
    """Sections list their pages by glob, so a page dropped in a section folder is in the site."""
    folder = page.rsplit("/", 1)[0] if "/" in page else ""
    if not folder or page.endswith("index.md"):
        return
    index = (DOCS / folder / "index.md").read_text()
    assert ":glob:" in index, f"{folder}/index.md has no glob toctree"
    assert "\n*\n" in index, f"{folder}/index.md does not glob its folder"


def test_the_figure_draws_a_line_per_straggler_and_queue():
    import pandas as pd

    from rfast_sim.plotting import plot_async_pays

    rows = [{"algorithm": alg, "timing.message_bytes": mb, "timing.stragglers.slowdown": slow,
             "timing.nic.queue": queue, "speedup": s, "speedup_ci_low": s / 2,
             "speedup_ci_high": s * 2}
            for alg in ("rfast", "allreduce_sgd") for mb in (1e7, 1e9) for slow in (1.0, 5.0)
            for queue in ("fifo", "latest") for s in [float("inf") if mb == 1e9 else 1.5]]
    ax = plot_async_pays(pd.DataFrame(rows))
    assert len(ax.get_legend().get_texts()) == 4
    assert ax.get_xscale() == "log"
    for line in ax.get_lines()[1:]:
        assert max(line.get_ydata()) <= 5.0  # inf speed-ups clipped
