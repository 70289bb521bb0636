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


def _relabel_root(g: nx.Graph, root: int) -> nx.Graph:
    """Swap labels 0 and `root` (generators put the root / centre at 0)."""
    return g if root == 0 else nx.relabel_nodes(g, {0: root, root: 0})


def build_graph(spec: GraphSpec, n: int, *, role: str, seed: int = 0) -> nx.DiGraph:
    """Build the directed graph described by `spec` on nodes 0..n-1 (no self-loops).

    Undirected kinds (ring, star, complete, erdos_renyi, grid) contain both directions of each
    edge. Trees are heap-ordered B-ary trees (node k's parent is (k-1)//B) with the root label
    swapped to `spec.root`, pointing away from the root for pull and toward it for push.
    """
    kind = spec.kind
    if kind == "exponential":  # i -> i + 2^k (mod n): no networkx generator for this one
        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        hops = [2**k for k in range(max(1, math.ceil(math.log2(n))))]
        g.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops if h % n)
        return g
    if kind == "directed_ring":
        g = nx.cycle_graph(n, create_using=nx.DiGraph)
    elif kind in ("tree", "binary_tree"):
        arity = 2 if kind == "binary_tree" else spec.arity
        tree = _relabel_root(nx.full_rary_tree(arity, n, create_using=nx.DiGraph), spec.root)
        direction = spec.direction or ("away" if role == "pull" else "toward")
        g = tree if direction == "away" else tree.reverse(copy=True)
    elif kind == "edges":
        g = nx.DiGraph()
        g.add_edges_from((a, b) for a, b in spec.edges or [] if a != b)
    else:
        g = nx.DiGraph(_undirected(spec, n, seed))
    g.add_nodes_from(range(n))
    g.remove_edges_from(nx.selfloop_edges(g))
    return g


def _undirected(spec: GraphSpec, n: int, seed: int) -> nx.Graph:
    if spec.kind == "ring":
        return nx.cycle_graph(n)
    if spec.kind == "star":
        return _relabel_root(nx.star_graph(n - 1), spec.root)
    if spec.kind == "complete":
        return nx.complete_graph(n)
    if spec.kind == "erdos_renyi":
        return nx.erdos_renyi_graph(n, spec.p, seed=seed)
    if spec.kind == "grid":
        rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
        return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, n // rows),
                                                  ordering="sorted")
    raise ScenarioError(f"graph kind {spec.kind!r} is not known")  # pragma: no cover


def _end_component(g: nx.DiGraph, *, source: bool) -> set[int]:
    """Nodes of the strongly connected component every other one is reachable from (source) or
    reaches (sink), if there is exactly one such component; else the empty set. O(n + m)."""
    dag = nx.condensation(g)
    degree = dag.in_degree if source else dag.out_degree
    ends = [c for c in dag.nodes if degree(c) == 0]
    return set(dag.nodes[ends[0]]["members"]) if len(ends) == 1 else set()


def pull_roots(g: nx.DiGraph) -> set[int]:
    """Nodes from which every node is reachable (roots of a spanning out-tree)."""
    return _end_component(g, source=True)


def push_roots(g: nx.DiGraph) -> set[int]:
    """Nodes reachable from every node (roots of a spanning in-tree)."""
    return _end_component(g, source=False)


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
