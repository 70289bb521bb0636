"""Reading scenarios: YAML in and out, `--set` overrides, shipped scenarios by name, and
error messages that name the field and the fix."""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rfast_sim.scenario import Scenario, ScenarioError
from rfast_sim.scenario.algorithm import STEP_FORMS

# A YAML alias bomb ("billion laughs") is small on disk and shares references when loaded,
# but expands when copied or validated: refuse documents that expand past this many nodes.
MAX_EXPANDED_NODES = 200_000
MAX_FILE_BYTES = 10_000_000
SWEEP_KEYS = {"base", "grid", "zip"}  # keys of a sweep file that no scenario has



def _model_at(loc: tuple[Any, ...]) -> Any:
    """The pydantic model that validates the value at `loc` (None if it is not a model)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return None
        model = model_in(fields[part].annotation)
        if model is None:
            return None
    return model


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at the parent of `loc` (for unknown-key messages)."""
    return list(getattr(_model_at(loc[:-1]), "model_fields", {}))


def _block_hint(loc: tuple[Any, ...], field: str, got: Any) -> str | None:
    """A scalar given where a block (a model) is expected: the block's deciding key, the
    first required one or else the first (kind, dist, name come first), with `got` as its
    value: `graphs.pull=ring` -> `graphs.pull.kind=ring`."""
    model = _model_at(loc)
    if model is None or isinstance(got, dict | list):
        return None
    fields = model.model_fields
    key = next((k for k, f in fields.items() if f.is_required()), next(iter(fields)))
    return (f"{field}: expects a block of keys ({', '.join(fields)}), not a value; did you "
            f"mean {field}.{key}={got}? (got {_shown(got)})")


def model_in(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()):
        found = model_in(arg)
        if found is not None:
            return found
    return None


_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_error(e: Any) -> str:
    """One pydantic error as `field.path: what is wrong (got X)`."""
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # Unions put the member type name in loc; drop those to keep the user's path.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
    # a tagged union (step_size) puts its tag after the field's name
    loc = tuple(p for k, p in enumerate(loc) if not (k and loc[k - 1] == "step_size"
                                                     and p in STEP_FORMS))
    field = ".".join(str(p) for p in loc) or "scenario"
    typ, ctx, got = e["type"], e.get("ctx", {}), e.get("input")
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        hint = _block_hint(loc, field, got)
        if hint:
            return hint
    if typ == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{field}: unknown key{hint} (allowed: {', '.join(allowed)})"
    if typ == "value_error":
        text = str(ctx.get("error", e["msg"]))
        # Model validators say 'subfield: message'; fold the subfield into the path.
        if ": " in text and " " not in text.split(": ", 1)[0]:
            sub, text = text.split(": ", 1)
            if not sub.startswith(field):
                field = f"{field}.{sub}" if field != "scenario" else sub
        return f"{field}: {text}"
    if typ in _BOUNDS:
        bound = next(iter(ctx.values()))
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
        msg = f"must be {_BOUNDS[typ]} {shown}"
    elif typ == "literal_error":
        msg = f"must be one of {ctx.get('expected', '')}"
    elif typ == "missing":
        msg, got = "is required", None
    else:
        msg = e["msg"][0].lower() + e["msg"][1:]
    return f"{field}: {msg}" + (f" (got {_shown(got)})" if got is not None else "")


def format_validation_error(err: ValidationError) -> str:
    """Turn pydantic's report into `field.path: what is wrong (got X)` lines joined by '; '."""
    # Unions report one error per member; keep each distinct message once.
    return "; ".join(dict.fromkeys(_one_error(e) for e in err.errors()))


_TYPE_TAGS = {"float", "int", "str", "list", "dict", "bool", "literal", "none", "constrained-float"}


def parse_scenario(data: Any, *, source: str = "scenario") -> Scenario:
    """Validate a plain dict as a Scenario, raising ScenarioError with a readable message."""
    if data is None:
        raise ScenarioError(
            f"{source}: the scenario is empty; it needs at least 'name' and 'nodes'")
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: a scenario must be a YAML mapping (got {type(data).__name__})")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err)) from None


def _expanded_size(data: Any, memo: dict[int, int] | None = None) -> int:
    """Number of nodes `data` has once every shared (aliased) reference is copied out."""
    memo = {} if memo is None else memo
    if not isinstance(data, dict | list):
        return 1
    if id(data) in memo:
        return memo[id(data)]
    memo[id(data)] = MAX_EXPANDED_NODES + 1  # a reference cycle (recursive alias) is too big
    items = list(data.items()) if isinstance(data, dict) else [(None, v) for v in data]
    total = 1
    for _key, value in items:
        total += _expanded_size(value, memo)
        if total > MAX_EXPANDED_NODES:
            break
    memo[id(data)] = total
    return total


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing, binary, huge, malformed or alias-bomb file is a
    ScenarioError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: no such scenario file{did_you_mean(str(path))} (check the "
                            "path; `rfast-sim list` shows the shipped scenarios)")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ScenarioError(f"{p}: {p.stat().st_size} bytes is too large for a scenario file "
                            f"(at most {MAX_FILE_BYTES})")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not a text file (a scenario is UTF-8 YAML)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(f"{p}:{where} malformed YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{p}: nested too deeply to be a scenario") from None
    try:
        too_big = _expanded_size(data) > MAX_EXPANDED_NODES
    except RecursionError:
        too_big = True
    if too_big:
        raise ScenarioError(f"{p}: expands to more than {MAX_EXPANDED_NODES} values (YAML "
                            "aliases nested into a bomb?); write the scenario out plainly")
    return data


def shipped_dir() -> Path:
    """The folder of the scenarios shipped with the package (inside the wheel, too)."""
    return Path(str(resources.files("rfast_sim.scenarios")))


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios, e.g. ``quickstart`` and ``paper/mlp_straggler``."""
    root = shipped_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _shipped_name(path: str | Path) -> str:
    return str(path).removesuffix(".yaml").removeprefix("scenarios/")


def did_you_mean(path: str) -> str:
    """'; did you mean NAME?' for the shipped scenario closest to `path`'s name, or ''."""
    names = shipped_scenarios()
    close = difflib.get_close_matches(_shipped_name(path), names, n=1, cutoff=0.6) or \
        difflib.get_close_matches(Path(_shipped_name(path)).name, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def shipped_file(name: str) -> Path:
    """The file of a shipped scenario or sweep by name (``quickstart``,
    ``paper/mlp_straggler``, ``sweep_stragglers``)."""
    name = _shipped_name(name)
    candidate = shipped_dir() / f"{name}.yaml"
    if ".." in Path(name).parts or not candidate.is_file():
        raise ScenarioError(f"{name}: no shipped scenario or sweep of that name"
                            f"{did_you_mean(name)} (`rfast-sim list` shows them)")
    return candidate


def resolve_scenario_path(path: str | Path) -> Path:
    """A scenario file by path, or a shipped scenario by name (``quickstart``)."""
    p = Path(path)
    if p.is_file():
        return p
    try:
        return shipped_file(str(path))
    except ScenarioError:
        return p  # reading it says what is missing


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c = value` in a nested dict, creating mappings on the way."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ScenarioError(f"{dotted}: {k!r} is not a mapping, cannot set {dotted}")
        node = nxt
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` strings (values parsed as YAML) to a copy of `data`."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"--set {item}: expected KEY=VALUE, e.g. timing.drop_prob=0.3")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        set_path(out, key.strip(), value)
    return out


def absolute_files(data: Any, base: Path) -> Any:
    """`data` with every relative ``file:`` of a law and of the problem (and its
    ``test_file``) made absolute against `base`, and a ``python`` model's import folder set to
    `base` (a scenario's files are relative to the scenario file, not to the working folder)."""
    if isinstance(data, list):
        return [absolute_files(v, base) for v in data]
    if not isinstance(data, dict):
        return data
    out = {k: absolute_files(v, base) for k, v in data.items()}
    problem = out.get("problem")
    if isinstance(problem, dict):
        out["problem"] = problem = dict(problem)
        for key in ("file", "test_file"):
            if isinstance(problem.get(key), str) and not Path(problem[key]).is_absolute():
                problem[key] = str((base / problem[key]).resolve())
        model = problem.get("model")
        if isinstance(model, dict) and model.get("kind") == "python":
            path = model.get("path")
            if path is None or (isinstance(path, str) and not Path(path).is_absolute()):
                problem["model"] = {**model, "path": str((base / (path or ".")).resolve())}
    f = out.get("file")
    if isinstance(f, str) and "dist" in out and not Path(f).is_absolute():
        out["file"] = str((base / f).resolve())
    return out


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Load and validate a scenario YAML file, applying `--set`-style overrides.

    `path` is a file or a shipped scenario's name (``rfast-sim list``); each override is
    ``dotted.key=value``, the value read as YAML. A bad key or value raises ScenarioError
    naming it.

        >>> import rfast_sim
        >>> sc = rfast_sim.load_scenario("quickstart", ["nodes=16", "timing.drop_prob=0.3"])
        >>> sc.nodes, sc.timing.drop_prob, [a.name for a in sc.algorithm_list]
        (16, 0.3, ['rfast', 'allreduce_sgd', 'dpsgd'])
        >>> rfast_sim.load_scenario("quickstart", ["nodez=16"])
        Traceback (most recent call last):
        ...
        rfast_sim.scenario.base.ScenarioError: nodez: unknown key; did you mean 'nodes'? ...
    """
    given, path = path, resolve_scenario_path(path)
    data = read_yaml(path)
    sweep_keys = sorted(SWEEP_KEYS & set(data)) if isinstance(data, dict) else []
    if sweep_keys:
        raise ScenarioError(f"{given}: this is a sweep file (it has {', '.join(sweep_keys)}): "
                            f"use rfast-sim sweep {given}")
    if data is not None and overrides:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: a scenario must be a YAML mapping")
        data = apply_overrides(data, overrides)
    return parse_scenario(absolute_files(data, path.resolve().parent), source=str(path))


def scenario_to_dict(sc: Scenario) -> dict[str, Any]:
    """The fully resolved scenario as plain data (re-loadable to an identical Scenario). Of the
    two loss keys it holds only the one in use."""
    data = sc.model_dump(mode="json")
    data["problem"] = sc.problem.dumped() if sc.problem is not None else None
    for key in ("drop_prob", "loss"):
        if data["timing"][key] is None:
            del data["timing"][key]
    return data


def dump_scenario(sc: Scenario, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(scenario_to_dict(sc), sort_keys=False))
