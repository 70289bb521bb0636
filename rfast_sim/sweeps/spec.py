"""Sweep files: validation, dotted scenario keys, and expansion into content-hashed points.

A sweep file names a base scenario and the keys to vary::

    base: compare_stragglers.yaml        # relative to the sweep file
    grid: {timing.drop_prob: [0.0, 0.1], nodes: [8, 16]}   # cartesian product
    zip: {algorithm.step_size: [0.05, 0.02], problem.batch_size: [16, 64]}  # varied together
    seeds: 5

Every point (grid x zip x seed) is a fully resolved scenario whose hash is its run id.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rfast_sim.scenario import Scenario, ScenarioError
from rfast_sim.scenario.loading import (
    absolute_files,
    did_you_mean,
    format_validation_error,
    model_in,
    parse_scenario,
    read_yaml,
    resolve_scenario_path,
    scenario_to_dict,
    set_path,
)
from rfast_sim.scenario.problem_kinds import PROBLEM_KINDS
from rfast_sim.scenario.tracefiles import digest

Executor = Literal["local", "dask"]


class SweepSpec(BaseModel):
    """A sweep file, validated (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | None = Field(None, description="scenario file, relative to the sweep file, "
                             "or a shipped scenario's name (rfast-sim list)")
    scenario: dict[str, Any] | None = Field(None, description="inline base scenario")
    grid: dict[str, list[Any]] = Field({}, description="dotted scenario key: values; the "
                                       "cartesian product of all")
    zip: dict[str, list[Any]] = Field({}, description="dotted scenario key: values, varied "
                                      "together (equal lengths)")
    seeds: int = Field(1, ge=1, description="replicates of every point")
    name: str | None = Field(None, description="the sweep's name (default: the scenario's)")

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"{key}: an empty list of values gives no points")
        return v


# ---------------------------------------------------------------------------------------------
# keys


def schema_keys(model: type[BaseModel] = Scenario, prefix: str = "") -> list[str]:
    """Every dotted key of the scenario schema; `KEY.*` marks a free-form mapping (e.g.
    `compare.target.*`), whose entries the schema checks when the point is validated."""
    keys = []
    for name, f in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        sub = model_in(f.annotation)
        if sub is not None:
            keys.extend(schema_keys(sub, dotted + "."))
        elif getattr(f.annotation, "__origin__", None) is dict:
            keys.append(dotted + ".*")
    return keys


def check_key(key: str, valid: list[str]) -> None:
    parts = key.split(".")
    if key in valid or any(".".join(parts[:k]) + ".*" in valid for k in range(1, len(parts))):
        return
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    raise ScenarioError(f"grid key {key!r} is not a scenario key{hint}")


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key; `algorithm.X` sets X in every entry of an `algorithms` list."""
    if key.startswith("algorithm.") and isinstance(data.get("algorithms"), list):
        for entry in data["algorithms"]:
            set_path(entry, key.split(".", 1)[1], copy.deepcopy(value))
    else:
        set_path(data, key, copy.deepcopy(value))


# ---------------------------------------------------------------------------------------------
# expansion


@dataclass
class Point:
    """One run of a sweep: the swept values, the seed and the resolved scenario (or why not)."""

    params: dict[str, Any]
    seed: int
    run_id: str
    scenario: Scenario | None
    error: str | None = None


def content_hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_hash(sc: Scenario) -> str:
    """A point's run id: the resolved scenario's hash, and its trace files', data files' and
    model source's contents (and a generated set's: MNIST-1D's arrays)."""
    files = {d.file: digest(d.file) for d in sc.laws().values() if d.file is not None}
    files.update({f: digest(f) for f in (sc.problem.files() if sc.problem else [])})
    p = sc.problem
    if p is not None and p.kind == "dataset" and p.source == "mnist1d":
        from rfast_sim.maths.problems import mnist1d

        files["source mnist1d"] = mnist1d.content_hash(
            mnist1d.Mnist1dOptions(**p.mnist1d.model_dump()))
    data = scenario_to_dict(sc)
    return content_hash({"scenario": data, "files": files} if files else data)


def load_spec(spec: str | Path | dict[str, Any] | SweepSpec) -> SweepSpec:
    """Validate a sweep spec (file, dict or SweepSpec) and inline its base scenario, so the
    spec alone (as stored in the manifest) defines every point."""
    where = Path(".")
    if isinstance(spec, str | Path):
        spec = resolve_scenario_path(spec)  # a shipped sweep by name, too
        where = spec.resolve().parent
        raw = read_yaml(spec)
        if not isinstance(raw, dict):
            raise ScenarioError(f"{spec}: a sweep file must be a YAML mapping")
        spec = raw
    if isinstance(spec, dict):
        try:
            spec = SweepSpec.model_validate(spec)
        except ValidationError as err:
            raise ScenarioError("sweep " + format_validation_error(err)) from None
    if (spec.base is None) == (spec.scenario is None):
        raise ScenarioError("sweep: give exactly one of 'base' (a scenario file) or 'scenario'")
    if spec.base is not None:
        spec = spec.model_copy(update={"base": None, "scenario": _read_base(spec.base, where)})
    elif isinstance(spec.scenario, dict):
        spec = spec.model_copy(update={"scenario": absolute_files(spec.scenario, where)})
    _check_axes(spec)
    return spec


def _read_base(name: str, where: Path) -> dict[str, Any]:
    """The base scenario: a file next to the sweep file, else a shipped scenario by name
    (`base: quickstart`), its relative files made absolute."""
    path = where / name
    if not path.is_file():
        path = resolve_scenario_path(name)
    if not path.is_file():
        raise ScenarioError(f"base: {name}: no such scenario file next to the sweep file nor a "
                            f"shipped scenario{did_you_mean(name)}")
    base = read_yaml(path)
    if not isinstance(base, dict):
        raise ScenarioError(f"base: {name} is not a scenario mapping")
    return absolute_files(base, path.resolve().parent)


def _check_axes(spec: SweepSpec) -> None:
    if not spec.grid and not spec.zip and spec.seeds == 1:
        raise ScenarioError("grid: the sweep is empty; give 'grid', 'zip' or 'seeds' > 1")
    valid = schema_keys()
    for key in [*spec.grid, *spec.zip]:
        check_key(key, valid)
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in spec.zip.items())
        raise ScenarioError(f"zip: all lists must have the same length (got {sizes})")


def _share_data_seed(data: dict[str, Any], base_seed: int) -> None:
    """A problem drawn from a data seed gets the base scenario's, so a sweep's seeds share
    the split and partition as a scenario's replicates do."""
    problem = data.get("problem")
    if isinstance(problem, dict) and "data_seed" not in problem and \
            problem.get("kind") in PROBLEM_KINDS.names() and \
            "data_seed" in PROBLEM_KINDS.entries[problem["kind"]].keys:
        problem["data_seed"] = base_seed


def expand(spec: str | Path | dict[str, Any] | SweepSpec) -> list[Point]:
    """All points: cartesian product of `grid` x the rows of `zip` x seeds, in a fixed order."""
    spec = load_spec(spec)
    base = spec.scenario or {}
    grid_keys = list(spec.grid)
    zip_rows: list[dict[str, Any]] = (
        [dict(zip(spec.zip, row, strict=True)) for row in zip(*spec.zip.values(), strict=True)]
        if spec.zip else [{}])
    base_seed = int(base.get("seed", 0)) if isinstance(base.get("seed", 0), int) else 0
    points = []
    for combo in itertools.product(*spec.grid.values()):
        for zrow in zip_rows:
            params = {**dict(zip(grid_keys, combo, strict=True)), **zrow}
            for k in range(spec.seeds):
                data = copy.deepcopy(base)
                for key, value in params.items():
                    set_key(data, key, value)
                data["seed"] = base_seed + k
                data["seeds"] = 1
                _share_data_seed(data, base_seed)
                try:
                    valid = parse_scenario(data)
                    sc: Scenario | None = valid
                    error = None
                    run_id = run_hash(valid)
                except ScenarioError as err:
                    sc, error, run_id = None, str(err), content_hash(data)
                points.append(Point(params, base_seed + k, run_id, sc, error))
    return points
