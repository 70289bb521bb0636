"""Communication graphs, their mixing weights and the common-root condition.

Convention: an edge ``j -> i`` means a packet travels from ``j`` to ``i``. In ``G_R`` (pull) node
``i`` then mixes ``j``'s parameters with row-stochastic weights; in ``G_C`` (push) ``j`` sends
tracker mass to ``i`` with column-stochastic weights.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from rfast_sim.scenario import GRAPH_KINDS, Graphs, GraphSpec, ScenarioError

ROLE_PULL, ROLE_PUSH, ROLE_GOSSIP = 0, 1, 2



# what seeds a random graph kind: the scenario seed plus its role's offset (so the pull and push
# graphs of erdos_renyi differ)
_SEED_OFFSET = {"pull": 0, "push": 1}


def role_graphs(spec: GraphSpec, n: int, *, role: str, seed: int = 0) -> list[nx.DiGraph]:
    """The graph of `spec` on nodes 0..n-1 (no self-loops), or for a time-varying kind its
    graphs in turn, from the kind's registered builder (`GRAPH_KINDS`). `seed` is the
    scenario's; the role adds its offset. Undirected graphs give both directions of each edge."""
    built = GRAPH_KINDS[spec.kind].build()(spec, n, role, seed + _SEED_OFFSET.get(role, 0))
    graphs = built if isinstance(built, list) else [built]
    out = []
    for g in graphs:
        g = g if g.is_directed() else nx.DiGraph(g)
        g.add_nodes_from(range(n))
        g.remove_edges_from(list(nx.selfloop_edges(g)))
        out.append(g)
    return out


def build_graph(spec: GraphSpec, n: int, *, role: str, seed: int = 0) -> nx.DiGraph:
    """The graph of `spec` (a time-varying kind: the union over its period)."""
    graphs = role_graphs(spec, n, role=role, seed=seed)
    return graphs[0] if len(graphs) == 1 else _union(graphs)


def _union(graphs: list[nx.DiGraph] | tuple[nx.DiGraph, ...]) -> nx.DiGraph:
    g = nx.DiGraph()
    for h in graphs:
        g.add_nodes_from(h)
        g.add_edges_from(h.edges)
    return g


# ---- the built-in graph kinds' builders (registered in rfast_sim.scenario.kinds) ----------

def _relabel_root(g: nx.Graph, root: int) -> nx.Graph:
    """Swap labels 0 and `root` (generators put the root / centre at 0)."""
    return g if root == 0 else nx.relabel_nodes(g, {0: root, root: 0})


def _period(n: int) -> int:
    return max(1, math.ceil(math.log2(n)))


def _hops(n: int, hops: list[int]) -> nx.DiGraph:
    """i -> i + h (mod n) for each hop h (no networkx generator for these)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops if h % n)
    return g


def ring(spec: GraphSpec, n: int, role: str, seed: int) -> nx.Graph:
    return nx.cycle_graph(n)


def directed_ring(spec: GraphSpec, n: int, role: str, seed: int) -> nx.DiGraph:
    return nx.cycle_graph(n, create_using=nx.DiGraph)


def exponential(spec: GraphSpec, n: int, role: str, seed: int) -> nx.DiGraph:
    return _hops(n, [2**k for k in range(_period(n))])


def one_peer_exponential(spec: GraphSpec, n: int, role: str, seed: int) -> list[nx.DiGraph]:
    """At a node's k-th update: i -> i + 2^(k mod ceil(log2 n)) (mod n)."""
    return [_hops(n, [2**m]) for m in range(_period(n))]


def tree(spec: GraphSpec, n: int, role: str, seed: int, arity: int | None = None) -> nx.DiGraph:
    """Heap-ordered B-ary tree (node k's parent is (k-1)//B), the root label swapped to
    `spec.root`, pointing away from the root for pull and toward it for push by default."""
    t = _relabel_root(nx.full_rary_tree(arity or spec.arity, n, create_using=nx.DiGraph),
                      spec.root)
    direction = spec.direction or ("away" if role == "pull" else "toward")
    return t if direction == "away" else t.reverse(copy=True)


def binary_tree(spec: GraphSpec, n: int, role: str, seed: int) -> nx.DiGraph:
    return tree(spec, n, role, seed, arity=2)


def star(spec: GraphSpec, n: int, role: str, seed: int) -> nx.Graph:
    return _relabel_root(nx.star_graph(n - 1), spec.root)


def complete(spec: GraphSpec, n: int, role: str, seed: int) -> nx.Graph:
    return nx.complete_graph(n)


def erdos_renyi(spec: GraphSpec, n: int, role: str, seed: int) -> nx.Graph:
    return nx.erdos_renyi_graph(n, spec.p, seed=seed)


def grid(spec: GraphSpec, n: int, role: str, seed: int) -> nx.Graph:
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, n // rows),
                                              ordering="sorted")


def edge_list(spec: GraphSpec, n: int, role: str, seed: int) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_edges_from((a, b) for a, b in spec.edges or [] if a != b)
    return g


@dataclass(frozen=True)
class Phases:
    """Time-varying graphs as a list of phases, each a (pull, push) graph pair.

    Schedule entry e (from time ``starts[e]``) has ``periods[e]`` phases starting at index
    ``offsets[e]``; a node's k-th update at time t uses phase ``offsets[e] + k % periods[e]``.
    """

    starts: tuple[float, ...]
    offsets: tuple[int, ...]
    periods: tuple[int, ...]
    pull: tuple[nx.DiGraph, ...]
    push: tuple[nx.DiGraph, ...]

    def __len__(self) -> int:
        return len(self.pull)

    def phase(self, k: int, t: float) -> int:
        e = bisect.bisect_right(self.starts, t) - 1
        return self.offsets[e] + k % self.periods[e]

    def union(self, role: str) -> nx.DiGraph:
        return _union(self.pull if role == "pull" else self.push)

    def entry_unions(self) -> list[tuple[nx.DiGraph, nx.DiGraph]]:
        """Each schedule entry's pull and push graphs over one period (for the root check)."""
        out = []
        for off, per in zip(self.offsets, self.periods, strict=True):
            part = Phases((0.0,), (0,), (per,), self.pull[off:off + per], self.push[off:off + per])
            out.append((part.union("pull"), part.union("push")))
        return out


def graph_phases(graphs: Graphs, n: int, seed: int) -> Phases | None:
    """The phases of time-varying pull/push graphs (a `schedule`, or a one_peer_exponential
    kind); None for static graphs."""
    entries = [(0.0, graphs.pull, graphs.push)]
    for e in graphs.schedule:
        pull, push = e.pull or entries[-1][1], e.push or entries[-1][2]
        if e.at == 0.0:
            entries = []
        entries.append((e.at, pull, push))
    if not graphs.time_varying:
        return None
    starts, offsets, periods = [], [], []
    pulls: list[nx.DiGraph] = []
    pushes: list[nx.DiGraph] = []
    for at, pull, push in entries:
        gr = role_graphs(pull, n, role="pull", seed=seed)
        gc = role_graphs(push, n, role="push", seed=seed)
        per = max(len(gr), len(gc))
        starts.append(at)
        offsets.append(len(pulls))
        periods.append(per)
        pulls += [gr[m % len(gr)] for m in range(per)]
        pushes += [gc[m % len(gc)] for m in range(per)]
    return Phases(tuple(starts), tuple(offsets), tuple(periods), tuple(pulls), tuple(pushes))


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
    """C[j, i] = 1/(out_deg(i)+1) for j in N_out(i) and j = i: node i splits what it pushes
    (the row-stochastic weights of the reversed graph, transposed)."""
    return row_stochastic(g.reverse(copy=False)).T


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
    # time-varying graphs: per phase, which channels are in its graphs and their weights
    phases: Phases | None = None
    phase_active: np.ndarray = field(default_factory=lambda: np.ones((1, 0), bool))  # [P, E]
    phase_weight: np.ndarray = field(default_factory=lambda: np.ones((1, 0)))  # [P, E]
    phase_self: np.ndarray = field(default_factory=lambda: np.ones((1, 3, 0)))  # [P, 3, n]

    @property
    def num(self) -> int:
        return len(self.src)

    def phase(self, k: int, t: float) -> int:
        """The phase of a node's k-th update at time t (0 for static graphs)."""
        return 0 if self.phases is None else self.phases.phase(k, t)


def _padded(lists: list[list[int]]) -> np.ndarray:
    width = max(1, max((len(x) for x in lists), default=1))
    out = -np.ones((len(lists), width), dtype=np.int32)
    for i, row in enumerate(lists):
        out[i, : len(row)] = row
    return out


def _weights(g: nx.DiGraph, role: int, src: np.ndarray, dst: np.ndarray,
             n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel weights of `g` on channels src -> dst (0 where the edge is not in g) and
    the self weights, in O(n + m): R (pull: 1/(in-degree + 1)), C (push: 1/(out-degree + 1)),
    Metropolis (gossip). The same numbers as row_stochastic / column_stochastic / metropolis."""
    deg_in = np.array([g.in_degree(i) if i in g else 0 for i in range(n)], dtype=np.float64)
    deg_out = np.array([g.out_degree(i) if i in g else 0 for i in range(n)], dtype=np.float64)
    has = np.array([g.has_edge(int(a), int(b)) for a, b in zip(src, dst, strict=True)], bool)
    w: np.ndarray
    self_w: np.ndarray
    if role == ROLE_PULL:
        w, self_w = 1.0 / (deg_in[dst] + 1), 1.0 / (deg_in + 1)
    elif role == ROLE_PUSH:
        w, self_w = 1.0 / (deg_out[src] + 1), 1.0 / (deg_out + 1)
    else:
        w = 1.0 / (1 + np.maximum(deg_out[src], deg_out[dst]))
        self_w = 1.0 - np.bincount(src[has], weights=w[has], minlength=n)
    return np.where(has, w, 0.0), self_w


def make_channels(
    n: int,
    pull: nx.DiGraph | None = None,
    push: nx.DiGraph | None = None,
    gossip: nx.DiGraph | None = None,
    phases: Phases | None = None,
) -> Channels:
    """Channels of the given graphs with their weights (pull: R, push: C, gossip: Metropolis).
    With `phases`, pull and push must be the unions of the phases' graphs (`Phases.union`) and
    each phase gets its own weights (a channel not in a phase's graph has weight 0 and sends
    nothing then)."""
    src: list[int] = []
    dst: list[int] = []
    role: list[int] = []
    for r, g in ((ROLE_PULL, pull), (ROLE_PUSH, push), (ROLE_GOSSIP, gossip)):
        if g is not None:
            for a, b in sorted(g.edges):
                src.append(a)
                dst.append(b)
                role.append(r)
    src_a, dst_a, role_a = (np.asarray(x, dtype=np.int32) for x in (src, dst, role))
    phase_graphs = [(pull, push)] if phases is None else [
        (p if pull is not None else None, q if push is not None else None)
        for p, q in zip(phases.pull, phases.push, strict=True)]
    P, E = len(phase_graphs), len(src)
    pw, ps = np.zeros((P, E)), np.ones((P, 3, n))
    for k, (gp, gq) in enumerate(phase_graphs):
        for r, g in ((ROLE_PULL, gp), (ROLE_PUSH, gq), (ROLE_GOSSIP, gossip)):
            if g is not None:
                mine = role_a == r
                w, self_w = _weights(g, r, src_a[mine], dst_a[mine], n)
                pw[k, mine] = w
                ps[k, r] = self_w
    outs: list[list[int]] = [[] for _ in range(n)]
    ins: list[list[int]] = [[] for _ in range(n)]
    for c, (a, b) in enumerate(zip(src, dst, strict=True)):
        outs[a].append(c)
        ins[b].append(c)
    return Channels(
        n=n, src=src_a, dst=dst_a, role=role_a, weight=pw[0], self_weight=ps[0],
        out_ch=_padded(outs), in_ch=_padded(ins), phases=phases,
        phase_active=pw > 0, phase_weight=pw, phase_self=ps,
    )
