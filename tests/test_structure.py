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


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, lazy ones (inside functions) included."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


# the modules that may name the whole Scenario: the export, the loader, the schema command,
# the plan builder and its memory estimate, the runner's entry, the results writer, the sweep
# spec and executors, the timeline command (it re-derives a saved run's plan)
SCENARIO_READERS = {"__init__.py", "scenario/loading.py", "cli/schema.py",
                    "cli/timeline_command.py", "experiment/plan.py", "experiment/budget.py",
                    "experiment/runner.py", "experiment/results.py", "sweeps/spec.py",
                    "sweeps/executors.py"}


def test_below_the_plan_nothing_imports_the_scenario():
    found = {str(p.relative_to(PACKAGE)) for p in MODULES
             if p.parent.name != "scenario" or p.name == "loading.py"
             if any(mod.startswith("rfast_sim") and "Scenario" in names
                    for mod, names in _imports(p))}
    assert found == SCENARIO_READERS, (sorted(found - SCENARIO_READERS),
                                       sorted(SCENARIO_READERS - found))
    assert len(found) <= 10


def test_the_root_holds_few_modules_and_nothing_climbs_back():
    assert len(list(PACKAGE.glob("*.py"))) <= 10, sorted(p.name for p in PACKAGE.glob("*.py"))
    for path in (PACKAGE / "sweeps").glob("*.py"):  # the package root is the faces' entry
        assert not any(mod == "rfast_sim" for mod, _ in _imports(path)), path.name
    base = _imports(PACKAGE / "maths" / "problems" / "base.py")
    assert not any("builtin" in mod for mod, _ in base)  # builtin imports base, not back


def test_the_quickstart_compiles_into_a_plan_that_holds_no_scenario():
    import dataclasses

    import networkx as nx
    from pydantic import BaseModel

    from rfast_sim import Scenario, load_scenario
    from rfast_sim.experiment.plan import Plan, build_plan

    sc = load_scenario("quickstart")
    plan = build_plan(sc)
    seen: list[type] = []

    def walk(value: object) -> None:
        assert not isinstance(value, Scenario), "a plan holds no Scenario"
        seen.append(type(value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, BaseModel):  # a sub-spec: the leaf's vocabulary
            for name in type(value).model_fields:
                walk(getattr(value, name))

    walk(plan)
    assert isinstance(plan, Plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.dim = 1  # type: ignore[misc]
    assert plan.timing.nodes == sc.nodes == 8
    assert plan.seeds == tuple(sc.seed_list)
    assert [a.name for a in plan.algorithms] == ["rfast", "allreduce_sgd", "dpsgd"]
    assert set(plan.graphs) == {"pull", "push", "gossip"}  # D-PSGD's undirected graph
    assert plan.graphs.phases is None
    assert all(isinstance(g, nx.DiGraph) and g.number_of_nodes() == 8
               for g in plan.graphs.values())
    assert plan.target == {k: float(v) for k, v in sc.compare.target.items()}
    assert plan.memory.total > 0
    assert plan.dim > 0
    setup = plan.setup("rfast", plan.seeds[0])
    assert setup.plan is plan.timing
    assert setup.ops.dim == plan.dim
    ring = plan.timing_setup("allreduce_sgd", plan.seeds[-1])
    assert ring.message_bytes == plan.timing.message_bytes(plan.dim) == setup.message_bytes
