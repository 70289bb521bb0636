"""Every notebook runs top to bottom: the docs build executes each one (myst-nb, from the
notebooks folder, in its own kernel) and caches it; here each notebook's current content must
have a successful execution in that cache, and every cell of it that draws must have left an
image there. A notebook that fails fails the docs build too."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import DOCS
from jupyter_cache import get_cache

sys.path.insert(0, str(DOCS / "_ext"))
from rfast_docs import notebook_cache

# the docs build (a session fixture) runs once, on one xdist worker
pytestmark = pytest.mark.xdist_group("docs")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, docs_build):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit notebooks with outputs stripped"
    cache = get_cache(str(notebook_cache()))
    try:
        cache.match_cache_notebook(nb)
    except KeyError:
        records = [r for r in cache.list_project_records() if Path(r.uri).name == path.name]
        error = records[-1].traceback if records and records[-1].traceback else docs_build[1]
        pytest.fail(f"{path.name} did not run to the end in the docs build:\n{error[-4000:]}")


# a cell draws when it shows pyplot's figures, calls a plot_* function or a .plot( method
DRAWS = re.compile(r"plt\.show\(\)|\bplot_\w+\(|\.plot\(")


def drawing_cells_without_image(nb: nbformat.NotebookNode) -> list[str]:
    """The sources of the executed code cells that draw (comments aside) but hold no PNG."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"
            and DRAWS.search(re.sub(r"#.*", "", cell.source))
            and not any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))]


def test_the_image_check_sees_a_drawing_cell_without_an_image():
    cell = nbformat.v4.new_code_cell("ax = plotting.plot_metric(df, 'loss')  # draws")
    image = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": ""})
    assert drawing_cells_without_image(nbformat.v4.new_notebook(cells=[cell])) == [cell.source]
    cell.outputs = [image]
    assert drawing_cells_without_image(nbformat.v4.new_notebook(cells=[cell])) == []
    quiet = nbformat.v4.new_code_cell("x = 1  # no .plot( here")
    assert drawing_cells_without_image(nbformat.v4.new_notebook(cells=[quiet])) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_that_draws_shows_an_image(path, docs_build):
    nb = nbformat.read(path, as_version=4)
    cache = get_cache(str(notebook_cache()))
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        pytest.fail(f"{path.name}: no execution in the docs build's cache (see "
                    "test_notebook_runs)")
    missing = drawing_cells_without_image(cache.get_cache_bundle(record.pk).nb)
    assert not missing, f"{path.name}: cells that draw but show no figure:\n" + \
        "\n---\n".join(missing)
