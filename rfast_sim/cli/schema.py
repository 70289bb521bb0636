"""JSON Schemas of the scenario and the sweep file, for editors and for the docs.

Both come from the pydantic models alone (`model_json_schema`); the names a kind field accepts
(graph kinds, laws) are the registries' at call time, so a registered kind is in the schema.
The sweep file's ``scenario`` (an inline base scenario) points at the scenario's schema, so an
editor checks it too. Point an editor's YAML support at a saved copy with a first line
``# yaml-language-server: $schema=scenario.schema.json``.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from rfast_sim.scenario import Scenario

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def scenario_schema() -> dict[str, Any]:
    """The scenario file's JSON Schema (draft 2020-12)."""
    schema = _with_factory_defaults(Scenario, Scenario.model_json_schema())
    return {"$schema": SCHEMA_DIALECT, **_untitled(schema), "title": "rfast-sim scenario"}


def sweep_schema() -> dict[str, Any]:
    """The sweep file's JSON Schema; its inline ``scenario`` is checked as a scenario."""
    from rfast_sim.sweeps.spec import SweepSpec

    schema = _untitled(_with_factory_defaults(SweepSpec, SweepSpec.model_json_schema()))
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


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """`model` and every model its fields hold (in unions, lists, mappings)."""
    seen: set[type] = set()
    todo: list[Any] = [model]
    while todo:
        ann = todo.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if ann in seen:
                continue
            seen.add(ann)
            yield ann
            todo.extend(f.annotation for f in ann.model_fields.values())
        else:
            todo.extend(typing.get_args(ann))


def _with_factory_defaults(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the defaults of `default_factory` fields, which pydantic leaves out (an
    editor shows a default; the docs list it)."""
    defs = schema.get("$defs", {})
    for m in _models(model):
        target = schema if m is model else defs.get(m.__name__)
        props = (target or {}).get("properties", {})
        for name, f in m.model_fields.items():
            if f.default_factory is not None and name in props:
                props[name]["default"] = to_jsonable_python(f.default_factory())  # type: ignore[call-arg]
    return schema


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
