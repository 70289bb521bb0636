"""What a reader of the docs relies on: the site works offline (MathJax shipped, nothing from a
CDN), every figure has a caption, each notebook page links its .ipynb and its measured run
time, the glossary and the Cite block are there, and the examples in the public API's
docstrings run (doctest)."""

from __future__ import annotations

import doctest
import html
import re
import sys

import pandas as pd
import pytest
from conftest import DOCS

import rfast_sim

sys.path.insert(0, str(DOCS / "_ext"))
import reader_aids

HTML = DOCS / "_build" / "html"
ROOT = DOCS.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PAGES = [p for p in DOCS.rglob("*.md") if "_build" not in p.parts]


def _built(docs_build) -> None:
    code, log = docs_build
    assert code == 0, f"the docs build failed:\n{log[-6000:]}"


# --- docstring examples -------------------------------------------------------------------------

def _examples() -> list[tuple[str, object]]:
    from rfast_sim.experiment import results, runner
    from rfast_sim.scenario import loading, problem_kinds, registry

    return [("run", runner.run), ("load_scenario", loading.load_scenario),
            ("register", registry.register), ("register_problem", problem_kinds.register_problem),
            ("Result", results.Result)]


@pytest.mark.parametrize(("name", "obj"), _examples(), ids=[n for n, _ in _examples()])
def test_docstring_examples_run(name, obj):
    """The public API's examples are doctests: each runs and prints what it shows."""
    from rfast_sim.scenario import registry
    from rfast_sim.scenario.problem_kinds import PROBLEM_KINDS

    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    assert tests, f"{name} has no docstring"
    assert tests[0].examples, f"{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    # an example registers names ("quadratic") a test module of this worker may have
    # registered too: put back the registries as they were, replaced entries included
    algorithms, problems = dict(registry._ENTRIES), dict(PROBLEM_KINDS.entries)
    try:
        for test in tests:
            runner.run(test)
    finally:
        registry._ENTRIES.clear()
        registry._ENTRIES.update(algorithms)
        PROBLEM_KINDS.entries.clear()
        PROBLEM_KINDS.entries.update(problems)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed (output above)"


# --- sources (no build needed) --------------------------------------------------------------------

def test_every_figure_has_a_caption():
    """Figures are `{figure}` directives with a caption, never bare `{image}`s."""
    bare = [p.relative_to(DOCS).as_posix() for p in PAGES if "```{image}" in p.read_text()]
    assert not bare, f"pages with an image without a caption: {bare}"
    for page in PAGES:
        for block in re.findall(r"```\{figure\}.*?```", page.read_text(), flags=re.S):
            body = [ln for ln in block.splitlines()[1:-1] if ln and not ln.startswith(":")]
            assert body, f"{page.name}: a figure without a caption"


def test_run_times_cover_what_a_newcomer_runs():
    """docs/figures/run_times.py measured every notebook, the quickstart and the docs build (a
    new notebook needs its time measured); a full reproduce and the shipped sweeps, where not
    extrapolated yet, read "not measured yet" in the pages."""
    keys = set(reader_aids.run_times()["key"])
    wanted = reader_aids.measured_keys()
    assert {"quickstart", "docs_build", "nb_01"} <= wanted
    assert not wanted - keys, f"not measured: {sorted(wanted - keys)}"
    subs = reader_aids.substitutions()
    for key in reader_aids.extrapolated_keys() - keys:
        assert subs[f"time_{key}"] == "(not measured yet)"


def test_quickstart_figures_come_from_the_script():
    """Getting started quotes the quickstart's figures through substitutions from
    quickstart_flip.csv, never typed: each one it uses exists."""
    text = (DOCS / "getting_started.md").read_text()
    used = set(re.findall(r"\{\{ *(\w+) *\}\}", text))
    assert {u for u in used if u.startswith("qs_")}, "no measured quickstart figure quoted"
    assert not used - set(reader_aids.substitutions()), sorted(used - set(
        reader_aids.substitutions()))
    flip = pd.read_csv(DOCS / "_static" / "quickstart_flip.csv")
    assert list(flip["straggler"]) == ["5x", "3x", "2x", "none"]


def test_cite_block_names_the_paper_and_this_version():
    text = (DOCS / "index.md").read_text()
    assert "2307.11617" in text
    assert "Zhu, Zehan and Tian, Ye and Huang, Yan and Xu, Jinming and He, Shibo" in text
    assert f"version = {{{rfast_sim.__version__}}}" in text


# --- the built site -----------------------------------------------------------------------------

def test_the_site_loads_nothing_from_the_internet(docs_build):
    _built(docs_build)
    remote = re.compile(r'<(?:script|link|img)\b[^>]*(?:src|href)="(https?://[^"]+)"')
    found = {(p.relative_to(HTML).as_posix(), url) for p in HTML.rglob("*.html")
             for url in remote.findall(p.read_text())}
    assert not found, sorted(found)[:10]
    for page in HTML.rglob("*.html"):
        assert not re.search(r"cdn\.|jsdelivr|unpkg", page.read_text()), page


def test_the_equations_page_renders_math_offline(docs_build):
    _built(docs_build)
    page = (HTML / "concepts" / "rfast.html").read_text()
    script = re.search(r'<script[^>]*src="([^"?]*mathjax[^"?]*\.js)[?"]', page)
    assert script, "no MathJax script on the equations page"
    assert (HTML / "concepts" / script.group(1)).resolve().is_file()
    assert page.count('class="math') >= 5  # inline and display equations MathJax typesets
    assert (HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts").is_dir()


def test_figures_have_captions_in_the_site(docs_build):
    _built(docs_build)
    for name in ("index", "results/paper", "results/when_async_pays"):
        assert "<figcaption>" in (HTML / f"{name}.html").read_text(), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_pages_link_their_download_and_run_time(docs_build, path):
    _built(docs_build)
    page = html.unescape((HTML / "notebooks" / f"{path.stem}.html").read_text())
    assert f'href="{path.name}"' in page
    assert (HTML / "notebooks" / path.name).read_bytes() == path.read_bytes()
    assert re.search(r"runs in [\d.]+ (s|min|h) on a \d+-core CPU", page)


def test_glossary_defines_the_terms_and_pages_link_them(docs_build):
    _built(docs_build)
    glossary = html.unescape((HTML / "glossary.html").read_text())
    for term in ("opt_gap", "G_R", "G_C", "push", "pull", "latest queue", "straggler"):
        assert re.search(rf'<dt id="term-[^"]*">{re.escape(term)}', glossary) or \
            f">{term}<" in glossary, term
    for page in ("getting_started", "reference/outputs"):
        assert "glossary.html#term-" in (HTML / f"{page}.html").read_text(), page
