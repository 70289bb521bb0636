"""The code's shape: short modules and functions, a JAX-free engine and schema, typed algorithms."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rfast_sim"
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_short_and_functions_shorter(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= 400, f"{path.name}: {len(lines)} lines; split it by responsibility"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 75, f"{path.name}:{node.lineno} {node.name}: {length} lines"


def test_algorithms_are_fully_typed():
    for path in (PACKAGE / "maths" / "algorithms").glob("*.py"):
        assert "type: ignore" not in path.read_text(), path.name


@pytest.mark.parametrize("module", ["rfast_sim.timing.engine", "rfast_sim.timing.traces",
                                    "rfast_sim.scenario", "rfast_sim.scenario.loading",
                                    "rfast_sim"])
def test_engine_and_schema_import_no_jax_and_no_algorithm(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in sys.modules if m == 'jax' "
            "or m.startswith('rfast_sim.maths.algorithms')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scenario_validates_algorithm_names_without_importing_them():
    code = ("import sys\nfrom rfast_sim.scenario.loading import parse_scenario\n"
            "parse_scenario({'algorithm': {'name': 'osgp'}})\n"
            "try:\n    parse_scenario({'algorithm': {'name': 'rfsat'}})\n"
            "except ValueError as e:\n    assert 'did you mean rfast' in str(e), e\n"
            "else:\n    sys.exit(2)\n"
            "sys.exit(1 if 'jax' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_subpackage_ships_in_the_wheel():
    """pyproject lists the packages by hand: a new folder of modules must be in the list."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"][
        "setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts)
             for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
