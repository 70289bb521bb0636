"""The schema of the communication graphs: static kinds, time-varying ones, schedules."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rfast_sim.scenario.base import Strict
from rfast_sim.scenario.kinds import GRAPH_KINDS


class GraphSpec(Strict):
    """A directed graph on the nodes. Undirected kinds contain both directions of each edge."""

    kind: str = Field("exponential", description="a registered graph kind (rfast-sim list)",
                      json_schema_extra=GRAPH_KINDS.json_schema)
    p: float = Field(0.3, gt=0, le=1, description="edge probability (erdos_renyi)")
    arity: int = Field(2, ge=1, description="children per node (tree)")
    direction: Literal["away", "toward"] | None = Field(
        None, description="tree edges point away from / toward the root (default by role)"
    )
    root: int = Field(0, ge=0, description="tree / star centre")
    edges: list[tuple[int, int]] | None = Field(None, description="edges: [[src, dst], ...]")

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        return GRAPH_KINDS.check(kind)

    @property
    def time_varying(self) -> bool:
        return GRAPH_KINDS[self.kind].time_varying

    @model_validator(mode="after")
    def _check(self) -> GraphSpec:
        if self.kind == "edges" and not self.edges:
            raise ValueError("edges: kind 'edges' needs a list of [src, dst] pairs")
        if self.kind != "edges" and self.edges is not None:
            raise ValueError(f"edges: only allowed with kind 'edges' (kind is {self.kind!r})")
        return self


class ScheduleEntry(Strict):
    """From simulated time `at` on, the pull and/or push graph is this one (omitted: as
    before)."""

    at: float = Field(ge=0, description="simulated time the entry takes effect")
    pull: GraphSpec | None = Field(None, description="the pull graph from then on")
    push: GraphSpec | None = Field(None, description="the push graph from then on")


class Graphs(Strict):
    pull: GraphSpec = Field(GraphSpec(kind="exponential"), description="G_R: a node pulls "
                            "its in-neighbours' parameters (row-stochastic weights)")
    push: GraphSpec = Field(GraphSpec(kind="exponential"), description="G_C: a node pushes "
                            "tracker mass to its out-neighbours (column-stochastic weights)")
    undirected: GraphSpec | None = Field(
        None, description="graph for D-PSGD / AD-PSGD (default: pull, which must then be symmetric)"
    )
    schedule: list[ScheduleEntry] = Field(
        [], description="switch the pull / push graphs at given simulated times")

    @model_validator(mode="after")
    def _check(self) -> Graphs:
        times = [e.at for e in self.schedule]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError(f"schedule: the 'at' times must increase (got {times})")
        if self.undirected is not None and self.undirected.time_varying:
            raise ValueError(f"undirected.kind: {self.undirected.kind} is time-varying; the "
                             "gossip graph must be undirected and static")
        return self

    @property
    def time_varying(self) -> bool:
        return bool(self.schedule) or self.pull.time_varying or self.push.time_varying
