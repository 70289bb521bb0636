"""The README is a short front page, and every command it and the docs pages show runs.

Marked blocks, in README.md and docs/**/*.md: ``<!-- readme-test -->`` before a ```bash block
(each line runs), ``<!-- scenario-example -->`` before a ```yaml block (it is a valid
scenario); ``<!-- run-command -->`` and ``<!-- test-command -->`` stay in the README (CI reads
the test command there).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from rfast_sim.scenario.loading import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
         if "_build" not in p.parts}


def _blocks(marker: str, text: str, lang: str = "bash") -> list[str]:
    return re.findall(rf"<!-- {marker} -->\n```{lang}\n(.*?)```", text, flags=re.S)


COMMANDS = [(page, line) for page, text in PAGES.items() for block in _blocks("readme-test", text)
            for line in block.splitlines() if line]
EXAMPLES = [(page, block) for page, text in PAGES.items()
            for block in _blocks("scenario-example", text, "yaml")]
RUN = _blocks("run-command", README)[0].split("&&", 1)[1].strip()  # the install part is CI's job


def test_readme_has_its_two_setup_commands():
    assert "pip install -e ." in _blocks("run-command", README)[0]
    assert "pytest" in _blocks("test-command", README)[0]
    assert len(COMMANDS) >= 5
    assert any(page == "README.md" for page, _ in EXAMPLES)


def test_readme_is_a_front_page_linking_every_docs_section():
    assert len(README.splitlines()) < 120
    assert re.search(r"!\[[^\]]*\]\(docs/_static/when_async_pays\.png\)", README)
    assert (ROOT / "docs/_static/when_async_pays.png").is_file()
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    for section in ("getting_started", "concepts", "howto", "results", "reference", "changelog"):
        assert any(section in link for link in links), f"README links no docs page of {section}"
    for link in links:
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"


@pytest.mark.parametrize(("page", "text"), EXAMPLES, ids=[p for p, _ in EXAMPLES])
def test_scenario_examples_are_valid(page, text):
    parse_scenario(yaml.safe_load(text), source=page)


# each block runs as one test, its lines in order, in a folder of its own: a later line reads
# what an earlier one wrote (`plot runs/cmp` after `run ... --out runs/cmp`). A module-scoped
# folder shared by one test per line broke under xdist: a worker that interleaves another
# module's tests tears the module fixture down, so the reader found a new, empty folder
BLOCKS = [("README.md: run-command", [RUN])] + [
    (f"{page}: {block.splitlines()[0]}", [line for line in block.splitlines() if line])
    for page, text in PAGES.items() for block in _blocks("readme-test", text)]


def _simulates(lines: list[str]) -> bool:
    """A block that runs a simulation with the maths (it compiles replays: 5-30 s cold)."""
    return any(re.search(r"rfast-sim (run|reproduce)\b", c) and "problem=null" not in c
               for c in lines)


@pytest.mark.parametrize("lines", [
    pytest.param(lines, id=i, marks=[pytest.mark.long] if _simulates(lines) else [])
    for i, lines in BLOCKS])
def test_readme_command_runs(lines, tmp_path):
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    for command in lines:
        out = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=1800)
        assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
