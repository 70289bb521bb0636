"""JSON Schemas of the scenario and the sweep file, for editors and for the docs.

Both come from the pydantic models alone (`model_json_schema`); the names a kind field accepts
(graph kinds, laws) are the registries' at call time, so a registered kind is in the schema.
The sweep file's ``scenario`` (an inline base scenario) points at the scenario's schema, so an
editor checks it too. Point an editor's YAML support at a saved copy with a first line
``# yaml-language-server: $schema=scenario.schema.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from rfast_sim.scenario import Scenario

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def scenario_schema() -> dict[str, Any]:
    """The scenario file's JSON Schema (draft 2020-12)."""
    schema = Scenario.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, **_untitled(schema), "title": "rfast-sim scenario"}


def sweep_schema() -> dict[str, Any]:
    """The sweep file's JSON Schema; its inline ``scenario`` is checked as a scenario."""
    from rfast_sim.sweeps.spec import SweepSpec

    schema = _untitled(SweepSpec.model_json_schema())
    scen = scenario_schema()
    defs = {**scen.pop("$defs", {}), **schema.pop("$defs", {})}
    scen.pop("$schema")
    defs["Scenario"] = scen
    props = schema["properties"]
    props["scenario"] = {"anyOf": [{"$ref": "#/$defs/Scenario"}, {"type": "null"}],
                         "default": None, "description": props["scenario"].get("description")}
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "rfast-sim sweep", "$defs": defs}


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {"scenario": scenario_schema,
                                                     "sweep": sweep_schema}


def _untitled(schema: dict[str, Any]) -> dict[str, Any]:
    """Without the per-property ``title`` pydantic adds (the key already names it); editors
    show the descriptions instead."""
    out = copy.deepcopy(schema)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for prop in props.values():
                    if isinstance(prop, dict):
                        prop.pop("title", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(out)
    return out
