"""Scenario schema (pydantic) and YAML loading; every error names its field and the fix."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ScenarioError(ValueError):
    """A user-facing configuration error: one line naming the field and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DistName = Literal[
    "constant", "uniform", "exponential", "shifted_exponential", "lognormal", "gamma", "pareto"
]
DISTRIBUTIONS: tuple[str, ...] = DistName.__args__  # type: ignore[attr-defined]


class Dist(_Strict):
    """A positive random duration (seconds) or factor, parameterised by its mean.

    constant: mean. uniform: low..high (default 0..2*mean). exponential: mean.
    shifted_exponential: shift + Exp(mean - shift). lognormal: mean and sigma of log.
    gamma: mean and shape. pareto: mean and shape (> 1).
    """

    dist: DistName = "constant"
    mean: float = Field(1.0, ge=0)
    sigma: float = Field(0.5, ge=0)
    shape: float = Field(2.0, gt=0)
    shift: float | None = Field(None, ge=0)
    low: float | None = Field(None, ge=0)
    high: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Dist:
        if self.dist == "pareto" and self.shape <= 1:
            raise ValueError(f"shape: pareto needs shape > 1 for a finite mean (got {self.shape})")
        if self.dist == "shifted_exponential" and self.shift is not None and self.shift > self.mean:
            raise ValueError(f"shift: must be <= mean (got shift={self.shift}, mean={self.mean})")
        if self.dist == "uniform" and (self.low is None) != (self.high is None):
            raise ValueError("low/high: give both or neither")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low: must be <= high (got {self.low} > {self.high})")
        return self

    def expected(self) -> float:
        """The distribution's mean."""
        if self.dist == "uniform" and self.low is not None and self.high is not None:
            return 0.5 * (self.low + self.high)
        return self.mean


GraphKind = Literal[
    "ring",
    "directed_ring",
    "exponential",
    "binary_tree",
    "tree",
    "star",
    "complete",
    "erdos_renyi",
    "grid",
    "edges",
]
GRAPH_KINDS: tuple[str, ...] = GraphKind.__args__  # type: ignore[attr-defined]


class GraphSpec(_Strict):
    """A directed graph on the nodes. Undirected kinds contain both directions of each edge."""

    kind: GraphKind = "exponential"
    p: float = Field(0.3, gt=0, le=1, description="edge probability (erdos_renyi)")
    arity: int = Field(2, ge=1, description="children per node (tree)")
    direction: Literal["away", "toward"] | None = Field(
        None, description="tree edges point away from / toward the root (default by role)"
    )
    root: int = Field(0, ge=0, description="tree / star centre")
    edges: list[tuple[int, int]] | None = None

    @model_validator(mode="after")
    def _check(self) -> GraphSpec:
        if self.kind == "edges" and not self.edges:
            raise ValueError("edges: kind 'edges' needs a list of [src, dst] pairs")
        if self.kind != "edges" and self.edges is not None:
            raise ValueError(f"edges: only allowed with kind 'edges' (kind is {self.kind!r})")
        return self


class Graphs(_Strict):
    pull: GraphSpec = GraphSpec(kind="exponential")
    push: GraphSpec = GraphSpec(kind="exponential")
    undirected: GraphSpec | None = Field(
        None, description="graph for D-PSGD / AD-PSGD (default: pull, which must then be symmetric)"
    )


class Stragglers(_Strict):
    count: int = Field(0, ge=0, description="persistent slow nodes, chosen from the seed")
    nodes: list[int] | None = Field(None, description="explicit persistent slow nodes")
    prob: float = Field(0.0, ge=0, le=1, description="per-computation transient slowdown prob.")
    slowdown: float = Field(5.0, ge=1)


class LinkDrop(_Strict):
    src: int = Field(ge=0)
    dst: int = Field(ge=0)
    drop_prob: float = Field(ge=0, lt=1)


class Timing(_Strict):
    compute: Dist = Dist(dist="exponential", mean=1.0)
    speed: Dist | None = Field(None, description="per-node persistent compute-time multipliers")
    stragglers: Stragglers = Stragglers()
    latency: Dist = Dist(dist="constant", mean=0.01)
    bandwidth: float = Field(1.25e9, gt=0, description="bytes/s per link")
    message_bytes: float | Literal["auto"] = "auto"
    drop_prob: float = Field(0.0, ge=0, lt=1)
    link_drop_prob: list[LinkDrop] = []
    retransmit_timeout: float = Field(
        0.2, gt=0, description="synchronous methods resend a lost packet after this many seconds"
    )

    @model_validator(mode="after")
    def _check(self) -> Timing:
        if isinstance(self.message_bytes, float | int) and self.message_bytes <= 0:
            raise ValueError(f"message_bytes: must be > 0 or 'auto' (got {self.message_bytes})")
        if self.speed is not None and self.speed.mean <= 0:
            raise ValueError("speed.mean: must be > 0")
        return self


class Heterogeneity(_Strict):
    kind: Literal["none", "shift", "label_skew"] = "shift"
    scale: float = Field(1.0, ge=0, description="least squares: spread of local optima")
    alpha: float = Field(0.5, gt=0, description="label_skew: Dirichlet concentration")


ProblemKind = Literal["least_squares", "logistic", "mlp"]
PROBLEM_KINDS: tuple[str, ...] = ProblemKind.__args__  # type: ignore[attr-defined]


class Problem(_Strict):
    kind: ProblemKind = "least_squares"
    dim: int = Field(10, ge=1, description="features (mlp: ignored, set by the dataset)")
    samples_per_node: int = Field(50, ge=1)
    heterogeneity: Heterogeneity = Heterogeneity()
    batch_size: int | None = Field(None, ge=1, description="null = exact local gradient")
    l2: float = Field(1e-3, ge=0)
    noise: float = Field(0.1, ge=0, description="least squares: label noise std")
    hidden: int = Field(16, ge=1, description="mlp: hidden units")


class AlgorithmSpec(_Strict):
    name: str = "rfast"
    step_size: float | list[float] = 0.05

    @model_validator(mode="after")
    def _check(self) -> AlgorithmSpec:
        from rfast_sim.algorithms import ALGORITHMS

        if self.name not in ALGORITHMS:
            close = difflib.get_close_matches(self.name, list(ALGORITHMS), n=3)
            hint = f"; did you mean {', '.join(close)}" if close else ""
            raise ValueError(
                f"name: unknown algorithm {self.name!r}{hint} (known: {', '.join(ALGORITHMS)})"
            )
        steps = self.step_size if isinstance(self.step_size, list) else [self.step_size]
        if not steps or any(not (s > 0 and math.isfinite(s)) for s in steps):
            raise ValueError(f"step_size: must be > 0 (got {self.step_size})")
        return self

    @property
    def step_sizes(self) -> list[float]:
        return list(self.step_size) if isinstance(self.step_size, list) else [self.step_size]


class Compare(_Strict):
    baseline: str = "allreduce_sgd"
    target: dict[Literal["opt_gap", "loss", "grad_norm", "accuracy"], float] = {"opt_gap": 1e-3}


class RunSpec(_Strict):
    until: float | None = Field(100.0, gt=0, description="simulated seconds")
    max_updates: int | None = Field(None, ge=1, description="stop after this many computations")
    sample_every: float = Field(1.0, gt=0, description="metric grid, simulated seconds")
    mode: Literal["replay", "online"] = "replay"

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        if self.until is None and self.max_updates is None:
            raise ValueError("until: give run.until or run.max_updates")
        return self


class Scenario(_Strict):
    """A whole simulated experiment."""

    name: str = "scenario"
    seed: int = Field(0, ge=0)
    seeds: int = Field(1, ge=1, description="replicates: seeds seed, seed+1, ...")
    nodes: int = Field(8, ge=2)
    dtype: Literal["float64", "float32"] = "float64"
    graphs: Graphs = Graphs()
    timing: Timing = Timing()
    problem: Problem = Problem()
    algorithm: AlgorithmSpec | None = None
    algorithms: list[AlgorithmSpec] | None = None
    compare: Compare | None = None
    run: RunSpec = RunSpec()

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        n = self.nodes
        for role in ("pull", "push", "undirected"):
            g = getattr(self.graphs, role)
            if g is None:
                continue
            if g.edges and any(not (0 <= a < n and 0 <= b < n) for a, b in g.edges):
                raise ValueError(f"graphs.{role}.edges: node ids must be in 0..{n - 1}")
            if g.root >= n:
                raise ValueError(f"graphs.{role}.root: must be < nodes={n} (got {g.root})")
        st = self.timing.stragglers
        if st.count > n:
            raise ValueError(f"timing.stragglers.count: must be <= nodes={n} (got {st.count})")
        if st.nodes and any(not 0 <= i < n for i in st.nodes):
            raise ValueError(f"timing.stragglers.nodes: node ids must be in 0..{n - 1}")
        for k, ld in enumerate(self.timing.link_drop_prob):
            if ld.src >= n or ld.dst >= n:
                raise ValueError(f"timing.link_drop_prob.{k}: node ids must be in 0..{n - 1}")
        if self.algorithm is not None and self.algorithms is not None:
            raise ValueError("algorithms: give either 'algorithm' or 'algorithms', not both")
        if self.compare is not None:
            names = [a.name for a in self.algorithm_list]
            if self.compare.baseline not in names:
                raise ValueError(
                    f"compare.baseline: {self.compare.baseline!r} is not among the algorithms "
                    f"({', '.join(names)})"
                )
        return self

    @property
    def algorithm_list(self) -> list[AlgorithmSpec]:
        if self.algorithms:
            return list(self.algorithms)
        return [self.algorithm or AlgorithmSpec()]

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds)]

    def message_bytes(self, dim: int) -> float:
        """Bytes per packet: the configured size, or dim * dtype size for 'auto'."""
        mb = self.timing.message_bytes
        if mb == "auto":
            return float(dim * (8 if self.dtype == "float64" else 4))
        return float(mb)


# ---------------------------------------------------------------------------------------------
# loading, overrides, errors


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at the parent of `loc` (for unknown-key messages)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        ann = fields[part].annotation
        model = _model_in(ann)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _model_in(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(err: ValidationError) -> str:
    """Turn pydantic's report into `field.path: what is wrong (got X)` lines joined by '; '."""
    parts = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Unions put the member type name in loc; drop those to keep the user's path.
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
        field = ".".join(str(p) for p in loc) or "scenario"
        typ, ctx, got = e["type"], e.get("ctx", {}), e.get("input")
        if typ == "extra_forbidden":
            allowed = _allowed_keys(loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            parts.append(f"{field}: unknown key{hint} (allowed: {', '.join(allowed)})")
            continue
        if typ in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
                  "less_than": "<"}[typ]
            bound = next(iter(ctx.values()))
            shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
            msg = f"must be {op} {shown}"
        elif typ == "literal_error":
            msg = f"must be one of {ctx.get('expected', '')}"
        elif typ == "value_error":
            text = str(ctx.get("error", e["msg"]))
            # Model validators say 'subfield: message'; fold the subfield into the path.
            if ": " in text and " " not in text.split(": ", 1)[0]:
                sub, text = text.split(": ", 1)
                if not sub.startswith(field):
                    field = f"{field}.{sub}" if field != "scenario" else sub
            parts.append(f"{field}: {text}")
            continue
        elif typ == "missing":
            msg = "is required"
            got = None
        else:
            msg = e["msg"][0].lower() + e["msg"][1:]
        parts.append(f"{field}: {msg}" + (f" (got {got!r})" if got is not None else ""))
    # Unions report one error per member; keep each distinct message once.
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return "; ".join(seen)


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


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; missing files and syntax errors become ScenarioError."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: no such scenario file (check the path; `rfast-sim list` shows "
                            "the shipped scenarios)")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(f"{p}:{where}: malformed YAML: {problem}") from None


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
    import copy

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


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Load and validate a scenario YAML file, applying `--set`-style overrides."""
    data = read_yaml(path)
    if data is not None and overrides:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: a scenario must be a YAML mapping")
        data = apply_overrides(data, overrides)
    return parse_scenario(data, source=str(path))


def scenario_to_dict(sc: Scenario) -> dict[str, Any]:
    """The fully resolved scenario as plain data (re-loadable to an identical Scenario)."""
    return sc.model_dump(mode="json")


def dump_scenario(sc: Scenario, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(scenario_to_dict(sc), sort_keys=False))
