"""Hypothesis strategies of *valid* scenarios: plain dicts that satisfy the schema's cross-field
rules by construction (graph conditions per algorithm, exclusive keys, node ids in range, laws
allowed per field, the vector builder only where it covers the run, faults with a finite
`run.until`), so a draw that is refused points at a rule the generator does not know or at a
bug.

Files (durations and latency matrices) are drawn as :class:`DataFile` values; `materialize`
writes them into a folder and puts their names in place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from hypothesis import strategies as st

from rfast_sim import register_problem

ALGORITHMS = ("rfast", "rfast_nonrobust", "osgp", "adpsgd", "allreduce_sgd", "dpsgd", "sync_gt")
PULL_PUSH = {"rfast", "rfast_nonrobust", "sync_gt"}  # a common root of G_R and G_C
PUSH_STRONG = {"osgp"}  # a strongly connected G_C
GOSSIP = {"adpsgd", "dpsgd"}  # a connected undirected graph
ASYNC = {"rfast", "rfast_nonrobust", "osgp", "adpsgd"}
# graph kinds strongly connected on every n >= 2, and those that are symmetric too
STRONG_KINDS = ("ring", "directed_ring", "exponential", "star", "complete", "grid")
SYMMETRIC_KINDS = ("ring", "star", "complete", "grid")
PLAIN_LAWS = ("constant", "uniform", "exponential", "shifted_exponential", "lognormal", "gamma",
              "pareto")
TARGETS = ("opt_gap", "loss", "grad_norm", "accuracy")


@dataclass(frozen=True)
class DataFile:
    """A CSV file to write: `rows` of values under `header` (None: no header line)."""

    header: tuple[str, ...] | None
    rows: tuple[tuple[float, ...], ...]

    def text(self) -> str:
        lines = [",".join(self.header)] if self.header else []
        lines += [",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row)
                  for row in self.rows]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Table:
    """A dataset file to write: named columns (or arrays) as .csv, .parquet or .npz."""

    suffix: str
    columns: tuple[tuple[str, tuple[float, ...]], ...]

    def write(self, path: Path) -> None:
        data = {k: np.asarray(v) for k, v in self.columns}
        if self.suffix == ".npz":
            np.savez(path, **data)
        elif self.suffix == ".csv":
            pd.DataFrame(data).to_csv(path, index=False)
        else:
            pd.DataFrame(data).to_parquet(path, index=False)


@dataclass(frozen=True)
class Module:
    """A Python module to write (a model's `python:` entry); `name` is made unique."""

    source: str


class Folder:
    """The folder files are written to (a python model's `path`; dropped where relative)."""


MODEL_SOURCE = """
import jax, jax.numpy as jnp

def make(outputs, width=4):
    def init(key, example):
        f = example.reshape(example.shape[0], -1).shape[1]
        k1, k2 = jax.random.split(key)
        return {"hidden": jax.random.normal(k1, (f, width)) / f,
                "out": {"w": jax.random.normal(k2, (width, outputs)) / width,
                        "b": jnp.zeros(outputs)}}
    def apply(params, inputs):
        z = jnp.tanh(inputs.reshape(inputs.shape[0], -1) @ params["hidden"])
        return z @ params["out"]["w"] + params["out"]["b"]
    return init, apply
"""


def materialize(data: Any, folder: Path, *, absolute: bool = True) -> Any:
    """`data` with every file written into `folder` (a fresh name each: file reads are cached
    by path, size and time, modules by name) and replaced by its path (relative to `folder`
    unless `absolute`)."""
    if isinstance(data, DataFile | Table):
        suffix = data.suffix if isinstance(data, Table) else ".csv"
        path = folder / f"data_{uuid.uuid4().hex[:12]}{suffix}"
        if isinstance(data, Table):
            data.write(path)
        else:
            path.write_text(data.text())
        return str(path) if absolute else path.name
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if isinstance(v, Module):
                name = f"gen_model_{uuid.uuid4().hex[:12]}"
                (folder / f"{name}.py").write_text(v.source)
                out[k] = f"{name}:make"
            elif isinstance(v, Folder):
                if absolute:
                    out[k] = str(folder)
            else:
                out[k] = materialize(v, folder, absolute=absolute)
        return out
    if isinstance(data, list):
        return [materialize(v, folder, absolute=absolute) for v in data]
    return data


# --- laws -------------------------------------------------------------------------------------

def _num(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 6))


@st.composite
def plain_law(draw: st.DrawFn, mean_low: float, mean_high: float,
              kinds: tuple[str, ...] = PLAIN_LAWS, continuous: bool = False) -> dict[str, Any]:
    """A law by its mean, with a positive mean in [mean_low, mean_high]; `continuous`: no point
    mass (no constant, no degenerate width, shift or sigma), so draws tie with probability 0."""
    kind = draw(st.sampled_from(tuple(k for k in kinds if k != "constant") if continuous
                                else kinds))
    mean = draw(_num(mean_low, mean_high))
    law: dict[str, Any] = {"dist": kind, "mean": mean}
    # the largest width, shift or sigma that still leaves a continuous law
    edge = 0.9 if continuous else 1.0
    if kind == "uniform" and draw(st.booleans()):
        low = draw(_num(0.0, edge * mean))
        law.update(low=low, high=round(2 * mean - low, 6))
    elif kind == "shifted_exponential" and draw(st.booleans()):
        law["shift"] = draw(_num(0.0, edge * mean))
    elif kind == "lognormal":
        law["sigma"] = draw(_num(0.1 if continuous else 0.0, 1.5))
    elif kind == "gamma":
        law["shape"] = draw(_num(0.3, 5.0))
    elif kind == "pareto":
        law["shape"] = draw(_num(1.5, 5.0))
    return law


def _durations(draw: st.DrawFn, n: int, mean: float, per_node: bool) -> DataFile:
    values = st.floats(0.05 * mean, 3 * mean).map(lambda v: round(v, 6))
    if not per_node:
        rows = draw(st.lists(values, min_size=1, max_size=8))
        return DataFile(("duration",), tuple((v,) for v in rows))
    out: list[tuple[Any, ...]] = []
    for i in range(n):
        out += [(i, v) for v in draw(st.lists(values, min_size=1, max_size=4))]
    return DataFile(("node", "duration"), tuple(out))


@st.composite
def compute_law(draw: st.DrawFn, n: int) -> dict[str, Any]:
    source = draw(st.sampled_from(("plain", "plain", "plain", "empirical", "trace")))
    if source == "plain":
        return draw(plain_law(0.2, 2.0))
    per_node = source == "trace" or draw(st.booleans())
    law: dict[str, Any] = {"dist": source, "file": _durations(draw, n, 1.0, per_node)}
    if source == "trace":
        law["loop"] = draw(st.booleans())
    return law


@st.composite
def latency_law(draw: st.DrawFn, n: int, matrix: bool = True,
                continuous: bool = False) -> dict[str, Any]:
    if continuous:
        return draw(plain_law(0.001, 0.5, continuous=True))
    source = draw(st.sampled_from(("plain",) * 4 + ("empirical",) + (("matrix",) if matrix
                                                                      else ())))
    if source == "plain":
        if draw(st.integers(0, 9)) == 0:
            return {"dist": "constant", "mean": 0.0}  # no latency at all
        return draw(plain_law(0.001, 0.5))
    if source == "empirical":
        return {"dist": "empirical", "file": _durations(draw, n, 0.05, draw(st.booleans()))}
    cells = draw(st.lists(st.floats(0.0, 0.3).map(lambda v: round(v, 6)), min_size=n * n,
                          max_size=n * n))
    rows = tuple(tuple(cells[r * n:(r + 1) * n]) for r in range(n))
    header = tuple(f"n{j}" for j in range(n)) if draw(st.booleans()) else None
    return {"dist": "matrix", "file": DataFile(header, rows)}


@st.composite
def period_law(draw: st.DrawFn, mean_low: float, mean_high: float) -> float | dict[str, Any]:
    """An up or down period: a mean (exponential) or a law."""
    if draw(st.booleans()):
        return draw(_num(mean_low, mean_high))
    return draw(plain_law(mean_low, mean_high, ("constant", "exponential", "uniform", "gamma")))


# --- graphs -----------------------------------------------------------------------------------

def _tree_edges(draw: st.DrawFn, n: int, root: int, toward: bool) -> list[tuple[int, int]]:
    """A random spanning tree of 0..n-1 at `root` (edges away from it, or toward it), plus a
    few random extra edges."""
    order = draw(st.permutations([i for i in range(n) if i != root]))
    placed, edges = [root], []
    for v in order:
        parent = draw(st.sampled_from(placed))
        edges.append((v, parent) if toward else (parent, v))
        placed.append(v)
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n))
    edges += [(a, b) for a, b in extra if a != b]
    return sorted(set(edges))


def _connected_p(n: int, p: float, seed: int) -> float:
    """`p` if G(n, p) with this seed is connected (as topology builds it), else 1."""
    return p if nx.is_connected(nx.erdos_renyi_graph(n, p, seed=seed)) else 1.0


@st.composite
def graph_spec(draw: st.DrawFn, n: int, role: str, root: int, seed: int, *,
               tree_ok: bool, time_varying_ok: bool, symmetric: bool = False) -> dict[str, Any]:
    """A graph for `role` (pull, push, undirected) valid with common root `root`: strongly
    connected kinds; trees and edge lists rooted at `root` where `tree_ok` (away from it for
    pull, toward it for push); symmetric kinds only where `symmetric`."""
    kinds = [*(SYMMETRIC_KINDS if symmetric else STRONG_KINDS), "erdos_renyi", "edges"]
    if tree_ok and not symmetric:
        kinds += ["tree", "binary_tree"]
    if time_varying_ok and not symmetric:
        kinds.append("one_peer_exponential")
    kind = draw(st.sampled_from(kinds))
    spec: dict[str, Any] = {"kind": kind}
    if kind == "star":
        spec["root"] = draw(st.integers(0, n - 1))
    elif kind == "erdos_renyi":
        # topology seeds pull with the scenario seed, push with seed + 1, gossip with seed
        spec["p"] = _connected_p(n, draw(_num(0.3, 1.0)), seed + (role == "push"))
    elif kind in ("tree", "binary_tree"):
        spec["root"] = root
        if kind == "tree":
            spec["arity"] = draw(st.integers(1, 4))
        if draw(st.booleans()):
            spec["direction"] = "away" if role == "pull" else "toward"
    elif kind == "edges":
        if symmetric:
            tree = _tree_edges(draw, n, draw(st.integers(0, n - 1)), toward=False)
            edges = sorted({e for a, b in tree for e in ((a, b), (b, a))})
        elif tree_ok:
            edges = _tree_edges(draw, n, root, toward=role == "push")
        else:  # strongly connected: a directed cycle through every node, plus extras
            cycle = draw(st.permutations(range(n)))
            edges = sorted({(cycle[k], cycle[(k + 1) % n]) for k in range(n)}
                           | set(_tree_edges(draw, n, root, toward=False)))
        spec["edges"] = [list(e) for e in edges]
    return spec


@st.composite
def graphs_block(draw: st.DrawFn, n: int, names: list[str], seed: int,
                 time_varying_ok: bool) -> dict[str, Any]:
    used = set(names)
    tree_ok = not (used & PUSH_STRONG)  # push-sum needs a strongly connected push graph
    gossip_from_pull = bool(used & GOSSIP) and draw(st.booleans())
    root = draw(st.integers(0, n - 1))

    def pair(tv: bool) -> dict[str, Any]:
        sym = gossip_from_pull
        return {"pull": draw(graph_spec(n, "pull", root, seed, tree_ok=tree_ok and not sym,
                                        time_varying_ok=tv and not sym, symmetric=sym)),
                "push": draw(graph_spec(n, "push", root, seed, tree_ok=tree_ok,
                                        time_varying_ok=tv))}

    out = pair(time_varying_ok)
    if used & GOSSIP and not gossip_from_pull:
        out["undirected"] = draw(graph_spec(n, "undirected", root, seed, tree_ok=False,
                                            time_varying_ok=False, symmetric=True))
    if time_varying_ok and not gossip_from_pull and draw(st.integers(0, 3)) == 0:
        times = sorted(set(draw(st.lists(_num(0.0, 20.0), min_size=1, max_size=3))))
        entries = []
        for at in times:
            entry: dict[str, Any] = {"at": at}
            both = pair(True)
            for role in draw(st.sampled_from((("pull",), ("push",), ("pull", "push")))):
                entry[role] = both[role]
            entries.append(entry)
        out["schedule"] = entries
    return out


# --- timing -----------------------------------------------------------------------------------

def _pairs(draw: st.DrawFn, n: int, max_size: int) -> list[tuple[int, int]]:
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=max_size, unique=True))
    return [(a, b) for a, b in pairs if a != b]


@st.composite
def link_timing(draw: st.DrawFn, n: int, continuous: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["latency"] = draw(latency_law(n, matrix=False, continuous=continuous))
    if draw(st.booleans()):
        out["bandwidth"] = draw(_num(1e5, 1e9))
    return out


@st.composite
def timing_block(draw: st.DrawFn, n: int, faults: bool, ties_free: bool = False
                 ) -> dict[str, Any]:
    """`ties_free`: simultaneous events have probability zero (what `engine: auto` needs to
    pick the vector builder, `vector.ties_unlikely`): continuous compute times, and without a
    NIC (whose queue orders the packets of one computation) continuous latencies."""
    compute = (plain_law(0.2, 2.0, ("exponential", "lognormal", "gamma", "uniform",
                                    "shifted_exponential"), continuous=True) if ties_free
               else compute_law(n))
    t: dict[str, Any] = {"compute": draw(compute), "latency": draw(latency_law(n))}
    if draw(st.booleans()):
        t["speed"] = draw(plain_law(0.5, 1.5))
    if draw(st.booleans()):
        st_: dict[str, Any] = {}
        if draw(st.booleans()):
            st_["count"] = draw(st.integers(0, n))
        elif draw(st.booleans()):
            st_["nodes"] = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3,
                                         unique=True))
        if draw(st.booleans()):
            st_["prob"] = draw(_num(0.0, 0.3))
        st_["slowdown"] = draw(_num(1.0, 10.0))
        t["stragglers"] = st_
    if draw(st.booleans()):
        t["bandwidth"] = draw(_num(1e5, 1e10))
    t["message_bytes"] = draw(st.one_of(st.just("auto"), _num(8.0, 1e7)))
    loss = draw(st.sampled_from(("none", "bernoulli", "gilbert_elliott")))
    if loss == "bernoulli":
        t["drop_prob"] = draw(_num(0.0, 0.5))
    elif loss == "gilbert_elliott":
        t["loss"] = {"model": "gilbert_elliott", "p_good_bad": draw(_num(0.01, 0.5)),
                     "p_bad_good": draw(_num(0.05, 1.0)), "loss_good": draw(_num(0.0, 0.2)),
                     "loss_bad": draw(_num(0.3, 1.0))}
    if loss != "gilbert_elliott" and draw(st.integers(0, 3)) == 0:
        t["link_drop_prob"] = [{"src": a, "dst": b, "drop_prob": draw(_num(0.0, 0.9))}
                               for a, b in _pairs(draw, n, 3)]
    if draw(st.integers(0, 3)) == 0:
        t["links"] = [{"src": a, "dst": b, **draw(link_timing(n))} for a, b in _pairs(draw, n, 3)]
    if draw(st.integers(0, 3)) == 0:
        nodes = draw(st.permutations(range(n)))
        cut = draw(st.integers(1, n))
        groups = [list(nodes[:cut]), list(nodes[cut:])]
        t["clusters"] = {"groups": [g for g in groups if g], "intra": draw(link_timing(n)),
                         "inter": draw(link_timing(n))}
    if draw(st.booleans()):
        nic: dict[str, Any] | None = None
        if draw(st.integers(0, 3)):
            nic = {}
            if draw(st.booleans()):
                nic["egress"] = draw(_num(1e5, 1e10))
            nic["queue"] = draw(st.sampled_from(("fifo", "latest")))
            if draw(st.booleans()):
                nic["ingress"] = draw(_num(1e5, 1e10))
        t["nic"] = nic
    if draw(st.booleans()):
        t["barrier"] = draw(st.sampled_from(("neighbour", "global")))
    if draw(st.booleans()):
        t["barrier_timeout"] = draw(_num(0.05, 5.0))
    if draw(st.booleans()):
        t["retransmit_timeout"] = draw(_num(0.01, 2.0))
    if faults:
        t.update(draw(faults_block(n)))
    if ties_free and not t.get("nic"):
        t["latency"] = draw(latency_law(n, continuous=True))
        for link in t.get("links", []) + [t["clusters"][k] for k in ("intra", "inter")
                                           if "clusters" in t]:
            if "latency" in link:
                link["latency"] = draw(latency_law(n, continuous=True))
    return t


@st.composite
def faults_block(draw: st.DrawFn, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    which = draw(st.sets(st.sampled_from(("churn", "rejoin_only", "link_churn", "outages")),
                         min_size=1))
    if "churn" in which:
        out["churn"] = {"mtbf": draw(period_law(2.0, 30.0)), "mttr": draw(period_law(0.2, 5.0))}
        if draw(st.booleans()):
            out["churn"]["rejoin"] = draw(st.sampled_from(("keep", "reset")))
    elif "rejoin_only" in which:
        out["churn"] = {"rejoin": "reset"}
    if "link_churn" in which:
        out["link_churn"] = {"mtbf": draw(period_law(2.0, 30.0)),
                             "mttr": draw(period_law(0.2, 5.0))}
    if "outages" in which:
        outages = []
        for _ in range(draw(st.integers(1, 3))):
            start = draw(_num(0.0, 10.0))
            o: dict[str, Any] = {"start": start}
            if draw(st.booleans()):
                o["node"] = draw(st.integers(0, n - 1))
            else:
                a, b = draw(st.permutations(range(n)))[:2]
                o.update(src=a, dst=b)
            if draw(st.integers(0, 3)):
                o["end"] = round(start + draw(_num(0.1, 10.0)), 6)
            outages.append(o)
        out["outages"] = outages
    return out


# --- problem, algorithms, run -----------------------------------------------------------------

def _generated(spec: Any, n: int, seed: int, dtype: str = "float64") -> Any:
    """A registered problem kind (least squares of `options.dim` features)."""
    import jax.numpy as jnp

    from rfast_sim.maths.problems import ProblemOps, problem_data

    d = int(spec.options.get("dim", 2))
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, spec.samples_per_node, d))
    targets = feats @ rng.standard_normal(d)

    def loss(x: Any, f: Any, t: Any, mask: Any) -> Any:
        r = f @ x - t
        return 0.5 * jnp.mean(r * r)

    ops = ProblemOps("generated", d, spec.batch_size, classify=False, key=("generated", d),
                     data_loss=loss)
    return ops, problem_data(feats, targets, np.zeros(d), spec.l2, dtype=dtype)


REGISTERED = "generated_least_squares"
register_problem(REGISTERED, _generated, "the valid-scenario generator's own kind")


@st.composite
def dataset_problem(draw: st.DrawFn, n: int) -> dict[str, Any]:
    """A dataset problem: a bundled set or a generated file, a model, a loss that fits the
    labels, a split and a partition."""
    p: dict[str, Any] = {"kind": "dataset"}
    source = draw(st.sampled_from(("file", "file", "file", "digits", "iris", "wine",
                                   "breast_cancer", "mnist1d")))
    loss = draw(st.sampled_from(("cross_entropy", "binary_cross_entropy", "mse")))
    if source != "file":
        p["source"] = source
        if loss == "binary_cross_entropy" and source != "breast_cancer":
            loss = "cross_entropy"
        features = {"digits": 64, "iris": 4, "wine": 13, "breast_cancer": 30,
                    "mnist1d": 40}[source]
        if source == "mnist1d" and draw(st.booleans()):
            # a small set keeps a draw cheap: >= 10 samples per class, enough for every node
            p["mnist1d"] = {"samples": 10 * draw(st.integers(max(2, n), 40)),
                            "scale": draw(_num(0.0, 1.0)),
                            "max_translation": draw(st.integers(1, 72)),
                            "corr_noise": draw(_num(0.0, 0.5)),
                            "iid_noise": draw(_num(0.0, 0.1)),
                            "shear": draw(_num(0.0, 1.0)),
                            "seed": draw(st.integers(0, 1000))}
    else:
        features = draw(st.integers(1, 5))
        rows = draw(st.integers(2 * n, 6 * n + 20))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = np.round(rng.standard_normal((rows, features)), 4)
        classes = 2 if loss == "binary_cross_entropy" else draw(st.integers(2, 4))
        y = (np.round(x @ rng.standard_normal(features), 4) if loss == "mse"
             else rng.integers(0, classes, rows).astype(float))
        suffix = draw(st.sampled_from((".csv", ".parquet", ".npz")))
        names = [f"f{j}" for j in range(features)]
        label = "y" if suffix == ".npz" else draw(st.sampled_from(("label", "target")))
        cols = [*((c, tuple(x[:, j])) for j, c in enumerate(names)), (label, tuple(y))]
        partition_key = "site" if draw(st.booleans()) else None
        if partition_key:
            cols.append((partition_key, tuple(float(v) for v in rng.integers(0, n, rows))))
        if suffix == ".npz":  # arrays, not columns
            cols = [("inputs", tuple(map(tuple, x))), ("y", tuple(y)),
                    *([(partition_key, cols[-1][1])] if partition_key else [])]
            p.update(x_key="inputs", y_key="y")
        else:
            p["label"] = label
            if draw(st.booleans()):
                p["features"] = sorted(draw(st.sets(st.sampled_from(names), min_size=1)))
                features = len(p["features"])
        p["file"] = Table(suffix, tuple(cols))
        held = draw(st.sampled_from(("none", "fraction", "file")))
        if held == "file":
            p["test_file"] = Table(suffix, tuple((c, v[: max(2, rows // 4)]) for c, v in cols))
        elif held == "fraction":
            p["test_fraction"] = draw(_num(0.05, 0.3))
        if partition_key:
            p["partition"] = {"kind": "by_key", "key": partition_key}
    if source != "file" and draw(st.booleans()):
        p["test_fraction"] = draw(_num(0.05, 0.3))
    p["loss"] = loss
    if "partition" not in p and draw(st.integers(0, 3)) > 0:
        # class-based partitions need class labels
        kind = draw(st.sampled_from(("iid",) if loss == "mse" else ("iid", "dirichlet", "shards")))
        part: dict[str, Any] = {"kind": kind}
        if kind == "dirichlet":
            part["alpha"] = draw(_num(0.1, 5.0))
        elif kind == "shards":
            part["classes_per_node"] = draw(st.integers(1, 3))
        p["partition"] = part
    # the cnn fits image-shaped inputs only (digits 8x8, MNIST-1D 40x1): there it is drawn half
    # the time, or it is rare
    images = source in ("digits", "mnist1d")
    model = draw(st.sampled_from(("cnn",) * 3 + ("linear", "mlp", "python") if images
                                 else ("linear", "mlp", "python")))
    spec: dict[str, Any] = {"kind": model}
    if model in ("linear", "mlp") and draw(st.booleans()):
        spec["bias"] = draw(st.booleans())
    if model in ("mlp", "cnn"):
        spec["hidden"] = draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))
        spec["activation"] = draw(st.sampled_from(("relu", "tanh", "gelu", "sigmoid", "elu",
                                                   "softplus", "identity")))
    if model == "cnn":
        p["input_shape"] = [8, 8, 1] if source == "digits" else [40, 1]
        spec["channels"] = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
        spec["kernel"] = draw(st.integers(1, 3))
    elif model == "python":
        spec["entry"] = Module(MODEL_SOURCE)
        spec["options"] = {"width": draw(st.integers(1, 5))}
        spec["path"] = Folder()
    elif draw(st.integers(0, 3)) == 0:
        p["input_shape"] = [features]
    p["model"] = spec
    if draw(st.booleans()):
        p["standardize"] = draw(st.booleans())
    if draw(st.booleans()):
        p["data_seed"] = draw(st.integers(0, 2**31))
    if draw(st.booleans()):
        p["batch_size"] = draw(st.integers(1, 16))
    if draw(st.booleans()):
        p["l2"] = draw(_num(0.0, 0.1))
    return p


@st.composite
def problem_block(draw: st.DrawFn, n: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(("least_squares", "logistic", "mlp", "dataset", "dataset",
                                 REGISTERED)))
    if kind == "dataset":
        return draw(dataset_problem(n))
    if kind == REGISTERED:
        return {"kind": kind, "samples_per_node": draw(st.integers(1, 12)),
                "options": {"dim": draw(st.integers(1, 4))}}
    p: dict[str, Any] = {"kind": kind, "samples_per_node": draw(st.integers(1, 24))}
    if kind != "mlp":
        p["dim"] = draw(st.integers(1, 12))
    else:
        p["hidden"] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        het = draw(st.sampled_from(("none", "shift", "label_skew")))
        p["heterogeneity"] = {"kind": het, "scale": draw(_num(0.0, 3.0)),
                              "alpha": draw(_num(0.05, 5.0))}
    if draw(st.booleans()):
        p["batch_size"] = draw(st.integers(1, 16))
    for key, (low, high) in {"l2": (0.0, 0.1), "noise": (0.0, 1.0)}.items():
        if draw(st.booleans()):
            p[key] = draw(_num(low, high))
    return p


def _step_sizes(draw: st.DrawFn, tunable: bool) -> Any:
    """A step, a grid, or (where there is a problem) a search: mostly a small one, sometimes
    `auto` with its default budget."""
    if tunable and draw(st.integers(0, 7)) == 0:
        if draw(st.integers(0, 3)) == 0:
            return "auto"
        low = draw(_num(0.001, 0.5))
        points = draw(st.integers(2, 3))
        return {"auto": {"low": low, "high": round(low * draw(st.floats(1.5, 100.0)), 6),
                         "points": points, "budget": draw(st.integers(points, 5))}}
    steps = draw(st.lists(_num(0.005, 0.5), min_size=1, max_size=3, unique=True))
    return steps[0] if len(steps) == 1 and draw(st.booleans()) else steps


@st.composite
def scenarios(draw: st.DrawFn, max_nodes: int = 32, max_algorithms: int = 2,
              vector_scope: bool = False) -> dict[str, Any]:
    """A valid scenario as a plain dict (DataFile values still to `materialize`).
    `vector_scope`: only what the vector builder covers, with continuous compute times (so
    simultaneous events have probability zero and both engines must agree)."""
    n = draw(st.integers(2, max_nodes))
    seed = draw(st.integers(0, 2**40))
    names = draw(st.lists(st.sampled_from(sorted(ASYNC) if vector_scope else ALGORITHMS),
                          min_size=1, max_size=max_algorithms, unique=True))
    faults = not vector_scope and draw(st.integers(0, 4)) == 0
    time_varying_ok = "sync_gt" not in names and not vector_scope
    timing = draw(timing_block(n, faults, ties_free=vector_scope))
    if vector_scope and timing.get("nic"):
        timing["nic"] = {k: v for k, v in timing["nic"].items() if k != "ingress"} | {
            "queue": "fifo"}
    sc: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)),
        "seed": seed, "seeds": draw(st.integers(1, 3)), "nodes": n,
        "dtype": draw(st.sampled_from(("float64", "float32"))),
        "graphs": draw(graphs_block(n, names, seed, time_varying_ok)),
        "timing": timing,
        # a timing-only run (the engine alone) needs packet sizes given in bytes
        "problem": None if draw(st.integers(0, 7)) == 0 else draw(problem_block(n)),
    }
    if sc["problem"] is None and timing["message_bytes"] == "auto":
        timing["message_bytes"] = draw(_num(8.0, 1e7))
    tunable = sc["problem"] is not None
    if len(names) == 1 and draw(st.booleans()):
        sc["algorithm"] = {"name": names[0], "step_size": _step_sizes(draw, tunable)}
    else:
        sc["algorithms"] = [{"name": a, "step_size": _step_sizes(draw, tunable)} for a in names]
    if draw(st.booleans()):
        metric = draw(st.sampled_from(TARGETS))
        sc["compare"] = {"baseline": draw(st.sampled_from(names)),
                         "target": {metric: draw(_num(1e-4, 1.0))}}
    sc["run"] = draw(run_block(sc, faults, vector_scope))
    # drawn last, so that the draws before it stay those of the derandomized runs
    if sc["problem"] is not None and _scalable(timing["compute"]) and draw(st.integers(0, 4)) == 0:
        timing["compute"] = {k: v for k, v in timing["compute"].items()
                             if k not in ("shift", "low", "high")} | {"mean": "model"}
        sc["devices"] = draw(devices_block(n))
    return sc


DEVICE_TABLE = ("v100", "a100_40gb", "a100_80gb", "h100_sxm", "t4", "cpu", "a100", "h100")


def _scalable(law: dict[str, Any]) -> bool:
    """A compute law `mean: model` may scale: a parametric one (not from a file)."""
    return law["dist"] in PLAIN_LAWS


@st.composite
def devices_block(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    """Device classes giving every node one: segments of a permutation of the nodes, each
    by count or by explicit nodes (the last one maybe the default). Step times stay on the
    scale the run's length was drawn for (0.2..2 s): table classes get a per-step overhead
    of that order, custom ones slow peaks."""
    k = draw(st.integers(1, min(3, n)))
    names = draw(st.lists(st.sampled_from((*DEVICE_TABLE, "mine", "yours")), min_size=k,
                          max_size=k, unique=True))
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1)))
    segments = [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    out = []
    for j, (name, nodes) in enumerate(zip(names, segments, strict=True)):
        way = draw(st.sampled_from(("count", "nodes", "default") if j == k - 1
                                   else ("count", "nodes")))
        e: dict[str, Any] = {"name": name}
        if way == "count":
            e["count"] = len(nodes)
        elif way == "nodes":
            e["nodes"] = nodes
        else:
            e["default"] = True
        if name not in DEVICE_TABLE:
            e["peak_flops"] = {"float32": draw(_num(1e7, 1e9)), "float64": draw(_num(1e7, 1e9))}
            e["memory_bandwidth"] = draw(_num(1e7, 1e9))
        elif draw(st.booleans()):
            e["memory_bandwidth"] = draw(_num(1e9, 1e12))
        if name in DEVICE_TABLE or draw(st.booleans()):
            e["overhead_s"] = draw(_num(0.2, 2.0))
        if draw(st.booleans()):
            e["efficiency"] = draw(_num(0.1, 1.0))
        if draw(st.integers(0, 2)) == 0:  # continuous latencies: the vector scope allows them
            e["nic"] = draw(link_timing(n, continuous=True))
        out.append(e)
    return out


def _covered_by_vector(sc: dict[str, Any]) -> bool:
    """The vector builder's scope, as its documentation states it: asynchronous methods on
    static graphs without faults, a modelled ingress, or a `latest` queue."""
    t, g = sc["timing"], sc["graphs"]
    names = [a["name"] for a in sc.get("algorithms") or [sc["algorithm"]]]
    nic = t.get("nic", {})
    kinds = {g["pull"]["kind"], g["push"]["kind"]}
    return (set(names) <= ASYNC and not g.get("schedule") and "one_peer_exponential" not in kinds
            and not {"churn", "link_churn", "outages"} & set(t)
            and not (nic and (nic.get("ingress") or nic.get("queue") == "latest")))


@st.composite
def run_block(draw: st.DrawFn, sc: dict[str, Any], faults: bool,
              vector_scope: bool = False) -> dict[str, Any]:
    # from a fraction of one compute time to many
    until = round(10 ** draw(st.floats(-1.5, 1.5)), 6)
    run: dict[str, Any] = {}
    compute = sc["timing"]["compute"]
    ends = compute["dist"] == "trace" and not compute.get("loop", True)  # nodes stop computing
    stops = ("until", "both") if faults or ends else ("until", "until", "updates", "both")
    stop = draw(st.sampled_from(stops))
    if stop in ("until", "both"):
        run["until"] = until
    else:
        run["until"] = None
    if stop in ("updates", "both"):
        run["max_updates"] = draw(st.integers(1, 40 * sc["nodes"]))
    # sometimes longer than the run itself
    run["sample_every"] = round(until * 10 ** draw(st.floats(-1.3, 0.5)), 6) or 0.01
    # online fires the maths at every event: a step search there (16 steps x seeds, each run
    # alone) takes minutes, so a search stays in replay (the draw is made either way, so the
    # other draws do not shift)
    searched = any(isinstance(a["step_size"], dict) or a["step_size"] == "auto"
                   for a in sc.get("algorithms") or [sc["algorithm"]])
    if (draw(st.integers(0, 4)) == 0 and not vector_scope and sc["problem"] is not None
            and not searched):
        run["mode"] = "online"
    engines = ["auto", "simpy"] + (["vector"] if _covered_by_vector(sc) else [])
    run["engine"] = "auto" if vector_scope else draw(st.sampled_from(engines))
    # the replay driver from the seed already drawn: a new draw would shift every later
    # choice of the derandomized runs (and the schema-coverage test's fixed sample)
    pick = sc["seed"] % 5
    if pick < 3:
        run["replay"] = ("auto", "sequential", "waves")[pick]
    return run
