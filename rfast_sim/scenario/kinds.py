"""One registry per kind family: graph kinds, laws and loss models.

Each entry names its builder (``"module:function"``, imported on first use, or a callable),
says what the memory estimate needs to know of it and gives its one-line description. The
schema validates names against these registries, :mod:`rfast_sim.experiment.budget` reads the graph
kinds' edge bounds, and ``rfast-sim list`` prints the descriptions: adding a kind is one
:func:`Registry.register` call plus its builder. A leaf module: no JAX, no networkx, no scipy.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class Kind:
    """A named variant: its builder (lazily imported) and its one-line description."""

    name: str
    description: str
    builder: str | Callable[..., Any] | None = field(default=None, compare=False)

    def build(self) -> Callable[..., Any]:
        """The builder itself (a ``"module:function"`` name is imported now)."""
        if self.builder is None:
            raise KeyError(f"{self.name!r} has no builder")
        if isinstance(self.builder, str):
            module, attr = self.builder.split(":")
            return getattr(importlib.import_module(module), attr)
        return self.builder


K = TypeVar("K", bound=Kind)


class Registry(Generic[K]):
    """The kinds of one family, in registration order (built-in ones first)."""

    def __init__(self, family: str, field_name: str, entries: list[K]) -> None:
        self.family, self.field_name = family, field_name
        self._entries: dict[str, K] = {e.name: e for e in entries}

    def register(self, entry: K) -> K:
        """Add (or replace) an entry; scenarios may then name it."""
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> K:
        return self._entries[name]

    def check(self, name: str) -> str:
        """`name` if registered, else a ValueError naming the known ones (and close matches)."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(repr(k) for k in self.names())
            raise ValueError(f"must be one of {known} (a registered {self.family}; got "
                             f"{name!r}){hint}")
        return name

    def json_schema(self, schema: dict[str, Any]) -> None:
        """For a pydantic field's ``json_schema_extra``: the names known now, as an enum."""
        schema["enum"] = self.names()


# ---- graph kinds --------------------------------------------------------------------------

# (spec: GraphSpec, n) -> (edges, largest out-degree)
SizeFn = Callable[[Any, int], tuple[float, float]]


@dataclass(frozen=True)
class GraphKind(Kind):
    """A graph kind. ``builder(spec, n, role, seed)`` returns an ``nx.Graph`` / ``nx.DiGraph``
    (undirected graphs give both directions of each edge), or for a time-varying kind its list
    of graphs in turn (a node's k-th update uses graph k mod the list's length).
    ``size(spec, n)`` bounds (edges, largest out-degree) for the memory estimate (of the union
    over a period for a time-varying kind)."""

    size: SizeFn = field(default=lambda spec, n: (n * (n - 1), n - 1), compare=False)
    time_varying: bool = False


def _hops(n: int) -> int:
    return max(1, math.ceil(math.log2(n)))


_TOPOLOGY = "rfast_sim.timing.topology"

GRAPH_KINDS: Registry[GraphKind] = Registry("graph kind", "kind", [
    GraphKind("ring", "undirected cycle i <-> i+1", f"{_TOPOLOGY}:ring",
              lambda s, n: (2 * n, 2)),
    GraphKind("directed_ring", "directed cycle i -> i+1", f"{_TOPOLOGY}:directed_ring",
              lambda s, n: (n, 1)),
    GraphKind("exponential", "i -> i + 2^k (mod n), k < ceil(log2 n)", f"{_TOPOLOGY}:exponential",
              lambda s, n: (n * _hops(n), _hops(n))),
    GraphKind("one_peer_exponential",
              "time-varying: at its k-th update node i sends to i + 2^(k mod ceil(log2 n))",
              f"{_TOPOLOGY}:one_peer_exponential", lambda s, n: (n * _hops(n), _hops(n)),
              time_varying=True),
    GraphKind("binary_tree", "heap-ordered binary tree (away from the root for pull, toward "
              "it for push)", f"{_TOPOLOGY}:binary_tree", lambda s, n: (n, 3)),
    GraphKind("tree", "heap-ordered B-ary tree (arity; direction; root)", f"{_TOPOLOGY}:tree",
              lambda s, n: (n, s.arity + 1)),
    GraphKind("star", "undirected star around root", f"{_TOPOLOGY}:star",
              lambda s, n: (2 * n, n)),
    GraphKind("complete", "every ordered pair", f"{_TOPOLOGY}:complete",
              lambda s, n: (n * (n - 1), n - 1)),
    GraphKind("erdos_renyi", "undirected G(n, p) from the scenario seed (p)",
              f"{_TOPOLOGY}:erdos_renyi",
              lambda s, n: (s.p * n * (n - 1), s.p * n + 3 * math.sqrt(n) + 1)),
    GraphKind("grid", "undirected 2-D grid, as square as n allows", f"{_TOPOLOGY}:grid",
              lambda s, n: (4 * n, 4)),
    GraphKind("edges", "explicit directed edges [[src, dst], ...]", f"{_TOPOLOGY}:edge_list",
              lambda s, n: (len(s.edges or []), len(s.edges or []))),
])


# ---- laws ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Law(Kind):
    """A law of durations or factors. ``builder(dist)`` returns its frozen ``scipy.stats``
    law, or None for a point mass at its mean; a law that reads a file (``reads_file``) is
    drawn from the file's values instead (no builder)."""

    reads_file: bool = False


_LAWS = "rfast_sim.timing.laws"

LAWS: Registry[Law] = Registry("law", "dist", [
    Law("constant", "a point mass at mean", None),
    Law("uniform", "low..high (default 0..2*mean)", f"{_LAWS}:uniform_law"),
    Law("exponential", "exponential with mean", f"{_LAWS}:exponential_law"),
    Law("shifted_exponential", "shift + Exp(mean - shift) (shift default mean/2)",
        f"{_LAWS}:shifted_exponential_law"),
    Law("lognormal", "lognormal with mean and sigma of the log", f"{_LAWS}:lognormal_law"),
    Law("gamma", "gamma with mean and shape", f"{_LAWS}:gamma_law"),
    Law("pareto", "Pareto with mean and shape (> 1)", f"{_LAWS}:pareto_law"),
    Law("empirical", "draws from a durations CSV (file; a node's own rows with a node column)",
        reads_file=True),
    Law("trace", "compute only: each node replays its rows of a durations CSV in order (loop)",
        reads_file=True),
    Law("matrix", "latency only: link i->j takes entry (i, j) of an n x n CSV", reads_file=True),
])


# ---- loss models --------------------------------------------------------------------------

@dataclass(frozen=True)
class LossModel(Kind):
    """A packet-loss model. ``builder(link, spec, k)`` returns whether each of a link's next k
    departing packets is lost, drawing from the link's loss stream (and advancing its state);
    ``key`` is the scenario key that selects it."""

    key: str = ""


LOSS_MODELS: Registry[LossModel] = Registry("loss model", "model", [
    LossModel("bernoulli", "each packet lost independently with drop_prob (per link: "
              "link_drop_prob)", "rfast_sim.timing.links:bernoulli_losses",
              key="timing.drop_prob"),
    LossModel("gilbert_elliott", "a two-state chain per link, one step per packet, loss_good / "
              "loss_bad by state", "rfast_sim.timing.links:gilbert_elliott_losses",
              key="timing.loss"),
])
