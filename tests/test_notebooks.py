"""Every notebook runs top to bottom: the docs build executes each one (myst-nb, from the
notebooks folder, in its own kernel) and caches it; here each notebook's current content must
have a successful execution in that cache. A notebook that fails fails the docs build too."""

from __future__ import annotations

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
