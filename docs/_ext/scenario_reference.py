"""The scenario reference, generated from the JSON Schema and the kind registries.

Every key of the scenario comes from ``Scenario.model_json_schema()`` (type, default, bounds,
description); blocks used in more than one place (a law, a graph, a link's timing) get one
table of their own that the keys using them link to. The kinds each name field accepts come
from the registries. Nothing here is written by hand, so a new key or kind documents itself.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
          ("exclusiveMaximum", "<"), ("minItems", "items >="), ("maxItems", "items <="))


@dataclass(frozen=True)
class Row:
    key: str          # dotted, list items as `key[].field`
    type: str         # MyST markdown
    default: str
    bounds: str
    description: str
    shared: tuple[str, ...] = ()  # shared blocks this key's value is (documented on their own)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _members(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a union (pydantic writes a tagged union as `oneOf`)."""
    return prop.get("anyOf") or prop.get("oneOf") or [prop]


def _refs(node: Any) -> list[str]:
    """Every `$ref` under a schema node."""
    if isinstance(node, dict):
        own = [_ref_name(node["$ref"])] if "$ref" in node else []
        return own + [r for k, v in node.items() if k != "default" for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def anchor(name: str) -> str:
    return f"block-{name.lower()}"


class Reference:
    """The schema's keys as rows: inline blocks expanded, shared ones kept apart."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})
        counts = Counter(_refs({k: v for k, v in schema.items() if k != "$defs"}))
        for d in self.defs.values():
            counts.update(_refs(d))
        self.shared = sorted(name for name, c in counts.items() if c >= 2)

    # ---- types, defaults, bounds -------------------------------------------------------
    def type_text(self, s: dict[str, Any]) -> str:
        if "$ref" in s:
            name = _ref_name(s["$ref"])
            return f"{{ref}}`{name} <{anchor(name)}>`" if name in self.shared else "block"
        if "anyOf" in s or "oneOf" in s:
            return " or ".join(self.type_text(m) for m in _members(s))
        if "enum" in s:
            return "one of " + ", ".join(f"`{v}`" for v in s["enum"])
        if "const" in s:
            return f"`{s['const']}`"
        kind = s.get("type")
        if kind == "array":
            if "prefixItems" in s:
                return "[" + ", ".join(self.type_text(m) for m in s["prefixItems"]) + "]"
            items = s.get("items") or {}
            return f"list of {self.type_text(items)}" if items else "list"
        if kind == "object":
            keys = s.get("propertyNames", {}).get("enum")
            extra = s.get("additionalProperties")
            value = self.type_text(extra) if isinstance(extra, dict) and extra else "any value"
            return (f"mapping of {', '.join(f'`{k}`' for k in keys)} to {value}" if keys
                    else f"mapping of names to {value}")
        names = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
                 "null": "null"}
        return names.get(kind, "any") if kind else "any"

    @staticmethod
    def bounds_text(prop: dict[str, Any]) -> str:
        found = []
        for m in [prop, *_members(prop)]:
            for key, op in BOUNDS:
                if key in m and f"{op} {fmt(m[key])}" not in found:
                    found.append(f"{op} {fmt(m[key])}")
        return ", ".join(found)

    def default_text(self, prop: dict[str, Any], value: Any, has: bool) -> str:
        if not has:
            return "required"
        block = self._block_of(prop)
        if isinstance(value, dict) and block is not None:
            own = {k: p.get("default") for k, p in self.defs[block]["properties"].items()}
            diff = {k: v for k, v in value.items() if own.get(k, object()) != v}
            if block not in self.shared:
                return "(its keys)"
            return f"`{fmt(diff)}`" if diff else "its defaults"
        return f"`{fmt(value)}`"

    def _block_of(self, prop: dict[str, Any]) -> str | None:
        for m in _members(prop):
            if "$ref" in m:
                return _ref_name(m["$ref"])
        return None

    # ---- rows ----------------------------------------------------------------------------
    def rows(self, model: dict[str, Any] | None = None, prefix: str = "",
             defaults: dict[str, Any] | None = None) -> list[Row]:
        """One row per key of `model` (the whole scenario by default), inline blocks expanded
        beneath their key; `defaults` are the enclosing key's default values."""
        model = self.schema if model is None else model
        required = set(model.get("required", ()))
        out = []
        for name, prop in model.get("properties", {}).items():
            key = prefix + name
            has = name in (defaults or {}) or "default" in prop or name not in required
            value = (defaults or {}).get(name, prop.get("default"))
            desc = prop.get("description", "")
            direct = [_ref_name(m["$ref"]) for m in _members(prop) if "$ref" in m]
            items = [_ref_name(m["items"]["$ref"]) for m in _members(prop)
                     if "$ref" in m.get("items", {})]
            for block in direct + items:
                if not desc:
                    desc = self.defs[block].get("description", "").split("\n\n")[0]
            out.append(Row(key, self.type_text(prop), self.default_text(prop, value, has),
                           self.bounds_text(prop), " ".join(desc.split()),
                           tuple(b for b in direct + items if b in self.shared)))
            for block in direct:
                if block not in self.shared:
                    inner = value if isinstance(value, dict) else None
                    out += self.rows(self.defs[block], key + ".", inner)
            for block in items:
                if block not in self.shared:
                    out += self.rows(self.defs[block], key + "[].")
        return out

    def block_rows(self, name: str) -> list[Row]:
        return self.rows(self.defs[name])

    def documented_keys(self) -> list[str]:
        """Every dotted key the reference documents, shared blocks expanded where used."""
        def expand(rows: list[Row]) -> list[str]:
            found = []
            for r in rows:
                found.append(r.key)
                for block in r.shared:
                    found += [f"{r.key}.{k}" for k in expand(self.block_rows(block))]
            return found
        return expand(self.rows())


def fmt(value: Any) -> str:
    """A value as YAML flow text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}" if abs(value) >= 1e5 else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return value if value and value.strip() == value and ":" not in value else json.dumps(value)
    return str(value)


def table(rows: list[Row], key_prefix: str = "") -> str:
    lines = ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [f"`{key_prefix}{r.key}`", r.type, r.default, r.bounds, r.description]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def registry_markdown() -> str:
    """The registered kinds of every family, from the registries."""
    from rfast_sim.scenario import GRAPH_KINDS, LAWS, LOSS_MODELS, registry
    from rfast_sim.scenario.loading import shipped_scenarios
    from rfast_sim.scenario.problem_kinds import LOSSES, MODELS, PARTITIONS, PROBLEM_KINDS

    def section(title: str, label: str, head: list[str], rows: list[list[str]]) -> str:
        lines = [f"({label})=", f"### {title}", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"

    parts = [
        section("Graph kinds (`graphs.*.kind`)", "kinds-graphs", ["kind", "time-varying", "what"],
                [[f"`{k.name}`", "yes" if k.time_varying else "", k.description]
                 for k in GRAPH_KINDS]),
        section("Laws (`dist` of a law)", "kinds-laws", ["dist", "reads a file", "what"],
                [[f"`{k.name}`", "yes" if k.reads_file else "", k.description] for k in LAWS]),
        section("Loss models", "kinds-loss", ["model", "set by", "what"],
                [[f"`{k.name}`", f"`{k.key}`", k.description] for k in LOSS_MODELS]),
        section("Problem kinds (`problem.kind`)", "kinds-problems",
                ["kind", "what", "the `problem` keys it reads"],
                [[f"`{name}`", e.description, ", ".join(f"`{k}`" for k in e.keys)]
                 for name, e in PROBLEM_KINDS.entries.items()]),
    ]
    for family, key, label in ((MODELS, "problem.model.kind", "kinds-models"),
                               (LOSSES, "problem.loss", "kinds-losses"),
                               (PARTITIONS, "problem.partition.kind", "kinds-partitions")):
        parts.append(section(f"{family.what.capitalize()}s (`{key}`)", label,
                             [family.what, "what"],
                             [[f"`{n}`", d] for n, d in family.describe().items()]))
    parts.append(section("Algorithms (`algorithm.name`, `algorithms[].name`)", "kinds-algorithms",
                         ["name", "communication", "graphs", "what"],
                         [[f"`{n}`", f"`{i.pattern}`", ", ".join(i.graphs) or "-",
                           i.description] for n in registry.names()
                          for i in [registry.info(n)]]))
    parts.append("(kinds-shipped)=\n### Shipped scenarios\n\nRun by name, e.g. "
                 "`rfast-sim run quickstart`: " + ", ".join(f"`{s}`" for s in shipped_scenarios())
                 + ".\n")
    return "\n".join(parts)


def scenario_markdown() -> str:
    """The whole generated part of the scenario reference page."""
    from rfast_sim.cli.schema import scenario_schema, sweep_schema

    ref = Reference(scenario_schema())
    rows = ref.rows()
    top = [r for r in rows if "." not in r.key]
    parts = ["## Keys", "", "Top-level keys; each block's keys follow in its own table.", "",
             table([r for r in top if not _has_children(r, rows)]), ""]
    for r in top:
        children = [c for c in rows if c.key.startswith(r.key + ".") or
                    c.key.startswith(r.key + "[].")]
        if children:
            parts += [f"### `{r.key}`", "", r.description, "", table([r, *children]), ""]
    parts += ["## Shared blocks", "",
              "Blocks used by more than one key; a key of this type takes the block's keys "
              "(e.g. `timing.compute.mean`).", ""]
    for name in ref.shared:
        d = ref.defs[name]
        parts += [f"({anchor(name)})=", f"### {name}", "",
                  " ".join(d.get("description", "").split()), "",
                  table(ref.block_rows(name)), ""]
    sweep = Reference(sweep_schema())
    parts += ["(sweep-files)=", "## Sweep files", "",
              "A sweep file (`rfast-sim sweep SPEC`) names a base scenario and the dotted keys "
              "above to vary.", "",
              table([r for r in sweep.rows() if "." not in r.key]), "",
              "## Registered kinds", "", registry_markdown()]
    return "\n".join(parts)


def _has_children(row: Row, rows: list[Row]) -> bool:
    return any(c.key.startswith((row.key + ".", row.key + "[].")) for c in rows)
