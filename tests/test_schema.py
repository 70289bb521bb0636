"""`rfast-sim schema`: JSON Schemas that editors can use, and that the shipped files meet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from rfast_sim.cli import app
from rfast_sim.cli.schema import scenario_schema, sweep_schema

ROOT = Path(__file__).resolve().parent.parent


class Yaml12(yaml.SafeLoader):
    """YAML as an editor's language server reads it (1.2: `1.25e9` is a float; PyYAML's 1.1
    reads a string, which the scenario's models then convert)."""


Yaml12.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$"
               r"|^\.(nan|NaN|NAN)$"), list("-+0123456789."))


def _load(path: Path) -> object:
    return yaml.load(path.read_text(), Loader=Yaml12)


SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))
SWEEPS = [p for p in SCENARIOS if "base" in (yaml.safe_load(p.read_text()) or {})]
runner = CliRunner()


def _errors(schema: dict, data: object) -> list[str]:
    Draft202012Validator.check_schema(schema)
    return [f"{'.'.join(map(str, e.path))}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(data)]


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p not in SWEEPS],
                         ids=lambda p: p.relative_to(ROOT / "scenarios").as_posix())
def test_shipped_scenarios_meet_the_schema(path):
    assert not _errors(scenario_schema(), _load(path))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_meet_the_sweep_schema(path):
    assert not _errors(sweep_schema(), _load(path))


@pytest.mark.parametrize(("data", "where"), [
    ({"nodez": 3}, "nodez"),
    ({"timing": {"drop_prob": 1.5}}, "timing.drop_prob"),
    ({"timing": {"nic": {"queue": "lifo"}}}, "timing.nic.queue"),
    ({"graphs": {"pull": {"kind": "rign"}}}, "graphs.pull.kind"),
    ({"timing": {"compute": {"dist": "gaussian"}}}, "timing.compute.dist"),
    ({"timing": {"churn": {"mtbf": "often"}}}, "timing.churn.mtbf"),
])
def test_the_schema_flags_what_an_editor_should(data, where):
    # an error at the key, or at the block holding it (a union reports there), naming it
    errors = _errors(scenario_schema(), data)
    paths = [e.split(":", 1)[0] for e in errors]
    assert any(where.startswith(p) and (p or where in e) for p, e in zip(paths, errors,
                                                                        strict=True)), errors


def test_an_inline_sweep_scenario_is_checked_as_a_scenario():
    assert not _errors(sweep_schema(), {"scenario": {"nodes": 4}, "grid": {"nodes": [4, 8]}})
    assert _errors(sweep_schema(), {"scenario": {"nodes": 1}})


@pytest.mark.parametrize("which", ["scenario", "sweep"])
def test_schema_command_prints_and_writes_it(which, tmp_path):
    out = runner.invoke(app, ["schema", which])
    assert out.exit_code == 0
    printed = json.loads(out.stdout)
    assert printed == json.loads(json.dumps(scenario_schema() if which == "scenario"
                                            else sweep_schema()))
    written = tmp_path / "s.json"
    assert runner.invoke(app, ["schema", which, "--out", str(written)]).exit_code == 0
    assert json.loads(written.read_text()) == printed


def test_schema_command_refuses_an_unknown_name():
    out = runner.invoke(app, ["schema", "scenarioz"])
    assert out.exit_code == 2
    assert "give scenario or sweep" in out.output


def test_every_key_has_a_description():
    for schema in (scenario_schema(), sweep_schema()):
        for name, model in [("top", schema), *schema["$defs"].items()]:
            missing = [k for k, p in model.get("properties", {}).items()
                       if not p.get("description")]
            assert not missing, (name, missing)
