"""Communication graphs, their mixing weights and the common-root condition.

Convention: an edge ``j -> i`` means a packet travels from ``j`` to ``i``. In ``G_R`` (pull) node
``i`` then mixes ``j``'s parameters with row-stochastic weights; in ``G_C`` (push) ``j`` sends
tracker mass to ``i`` with column-stochastic weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np

from rfast_sim.scenario import GraphSpec, ScenarioError

ROLE_PULL, ROLE_PUSH, ROLE_GOSSIP = 0, 1, 2

# How an algorithm communicates: every out-channel, one random out-channel, or synchronous rounds.
Pattern = Literal["all", "one", "sync_neighbors", "sync_allreduce"]


def _tree_edges(n: int, arity: int, root: int) -> list[tuple[int, int]]:
    # Heap-ordered B-ary tree on labels 0..n-1, then swap labels 0 and `root`.
    def label(k: int) -> int:
        return root if k == 0 else (0 if k == root else k)

    return [(label((k - 1) // arity), label(k)) for k in range(1, n)]


def build_graph(spec: GraphSpec, n: int, *, role: str, seed: int = 0) -> nx.DiGraph:
    """Build the directed graph described by `spec` on nodes 0..n-1 (no self-loops)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    kind = spec.kind
    undirected: list[tuple[int, int]] = []
    if kind == "ring":
        undirected = [(i, (i + 1) % n) for i in range(n)]
    elif kind == "directed_ring":
        g.add_edges_from((i, (i + 1) % n) for i in range(n))
    elif kind == "exponential":
        hops = [2**k for k in range(max(1, math.ceil(math.log2(n))))]
        g.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops if h % n)
    elif kind in ("tree", "binary_tree"):
        arity = 2 if kind == "binary_tree" else spec.arity
        direction = spec.direction or ("away" if role == "pull" else "toward")
        edges = _tree_edges(n, arity, spec.root)
        g.add_edges_from(edges if direction == "away" else [(b, a) for a, b in edges])
    elif kind == "star":
        undirected = [(spec.root, i) for i in range(n) if i != spec.root]
    elif kind == "complete":
        undirected = [(i, j) for i in range(n) for j in range(i + 1, n)]
    elif kind == "erdos_renyi":
        undirected = list(nx.erdos_renyi_graph(n, spec.p, seed=seed).edges())
    elif kind == "grid":
        rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
        grid = nx.grid_2d_graph(rows, n // rows)
        index = {v: k for k, v in enumerate(sorted(grid.nodes()))}
        undirected = [(index[a], index[b]) for a, b in grid.edges()]
    elif kind == "edges":
        g.add_edges_from((a, b) for a, b in spec.edges or [] if a != b)
    else:  # pragma: no cover - guarded by the schema
        raise ScenarioError(f"graph kind {kind!r} is not known")
    for a, b in undirected:
        if a != b:
            g.add_edge(a, b)
            g.add_edge(b, a)
    return g


def pull_roots(g: nx.DiGraph) -> set[int]:
    """Nodes from which every node is reachable (roots of a spanning out-tree)."""
    n = g.number_of_nodes()
    return {r for r in g.nodes if len(nx.descendants(g, r)) == n - 1}


def push_roots(g: nx.DiGraph) -> set[int]:
    """Nodes reachable from every node (roots of a spanning in-tree)."""
    n = g.number_of_nodes()
    return {r for r in g.nodes if len(nx.ancestors(g, r)) == n - 1}


def common_roots(g_pull: nx.DiGraph, g_push: nx.DiGraph) -> set[int]:
    """Roots shared by G_R and G_C; raise ScenarioError naming both root sets if there is none."""
    rp, rc = pull_roots(g_pull), push_roots(g_push)
    common = rp & rc
    if not common:
        raise ScenarioError(
            "graphs: G_R (graphs.pull) and G_C (graphs.push) share no common root: roots of G_R "
            f"(reach every node) = {sorted(rp)}, roots of G_C (reached from every node) = "
            f"{sorted(rc)}; connect the graphs so some node is in both sets"
        )
    return common


def is_symmetric(g: nx.DiGraph) -> bool:
    return all(g.has_edge(b, a) for a, b in g.edges)


def row_stochastic(g: nx.DiGraph) -> np.ndarray:
    """R[i, j] = 1/(in_deg(i)+1) for j in N_in(i) and j = i: node i averages what it pulls."""
    n = g.number_of_nodes()
    R = np.zeros((n, n))
    for i in range(n):
        nbrs = [*g.predecessors(i), i]
        R[i, nbrs] = 1.0 / len(nbrs)
    return R


def column_stochastic(g: nx.DiGraph) -> np.ndarray:
    """C[j, i] = 1/(out_deg(i)+1) for j in N_out(i) and j = i: node i splits what it pushes."""
    n = g.number_of_nodes()
    C = np.zeros((n, n))
    for i in range(n):
        nbrs = [*g.successors(i), i]
        C[nbrs, i] = 1.0 / len(nbrs)
    return C


def metropolis(g: nx.DiGraph) -> np.ndarray:
    """Doubly stochastic Metropolis-Hastings weights of a symmetric graph."""
    n = g.number_of_nodes()
    deg = np.array([g.out_degree(i) for i in range(n)])
    W = np.zeros((n, n))
    for i, j in g.edges:
        W[i, j] = 1.0 / (1 + max(deg[i], deg[j]))
    W[np.arange(n), np.arange(n)] = 1.0 - W.sum(axis=1)
    return W


@dataclass(frozen=True)
class Channels:
    """Directed links an algorithm uses, as padded integer arrays (fixed shapes for JAX).

    Channel ``c`` carries packets ``src[c] -> dst[c]``; ``weight[c]`` is the mixing weight the
    algorithm attaches to it (``r_{dst,src}``, ``c_{dst,src}`` or Metropolis ``w``), ``role[c]``
    says which graph it belongs to. ``out_ch[i]`` / ``in_ch[i]`` list node i's channels, padded
    with -1.
    """

    n: int
    src: np.ndarray
    dst: np.ndarray
    role: np.ndarray
    weight: np.ndarray
    self_weight: np.ndarray  # [n_roles=3, n]: r_ii, c_ii, w_ii
    out_ch: np.ndarray
    in_ch: np.ndarray

    @property
    def num(self) -> int:
        return len(self.src)


def _padded(lists: list[list[int]]) -> np.ndarray:
    width = max(1, max((len(x) for x in lists), default=1))
    out = -np.ones((len(lists), width), dtype=np.int32)
    for i, row in enumerate(lists):
        out[i, : len(row)] = row
    return out


def make_channels(
    n: int,
    pull: nx.DiGraph | None = None,
    push: nx.DiGraph | None = None,
    gossip: nx.DiGraph | None = None,
) -> Channels:
    """Channels of the given graphs with their weights (pull: R, push: C, gossip: Metropolis)."""
    src: list[int] = []
    dst: list[int] = []
    role: list[int] = []
    weight: list[float] = []
    self_w = np.ones((3, n))
    for r, g in ((ROLE_PULL, pull), (ROLE_PUSH, push), (ROLE_GOSSIP, gossip)):
        if g is None:
            continue
        W = (row_stochastic, column_stochastic, metropolis)[r](g)
        self_w[r] = np.diag(W)
        for a, b in sorted(g.edges):
            src.append(a)
            dst.append(b)
            role.append(r)
            weight.append(W[b, a])
    outs: list[list[int]] = [[] for _ in range(n)]
    ins: list[list[int]] = [[] for _ in range(n)]
    for c, (a, b) in enumerate(zip(src, dst, strict=True)):
        outs[a].append(c)
        ins[b].append(c)
    return Channels(
        n=n,
        src=np.asarray(src, dtype=np.int32),
        dst=np.asarray(dst, dtype=np.int32),
        role=np.asarray(role, dtype=np.int32),
        weight=np.asarray(weight, dtype=np.float64),
        self_weight=self_w,
        out_ch=_padded(outs),
        in_ch=_padded(ins),
    )
