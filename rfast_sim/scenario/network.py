"""The schema of the network: NICs, per-link timing and clusters, loss models, link faults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rfast_sim.scenario.base import Dist, Strict
from rfast_sim.scenario.kinds import LOSS_MODELS


class LinkDrop(Strict):
    src: int = Field(ge=0, description="sending node")
    dst: int = Field(ge=0, description="receiving node")
    drop_prob: float = Field(ge=0, lt=1, description="Bernoulli loss per packet on src -> dst")


class Loss(Strict):
    """Bursty packet loss per link (Gilbert-Elliott): a two-state Markov chain advanced once
    per packet; a packet is lost with probability loss_good or loss_bad by the link's state.
    Stationary loss rate: (p_bad_good loss_good + p_good_bad loss_bad) / (p_good_bad +
    p_bad_good); with loss_good 0 and loss_bad 1, bursts last 1 / p_bad_good packets on average.
    """

    model: str = Field("gilbert_elliott", description="a registered loss model set by this "
                       "block (rfast-sim list)")
    p_good_bad: float = Field(0.01, gt=0, le=1, description="P(good -> bad) per packet")
    p_bad_good: float = Field(0.2, gt=0, le=1, description="P(bad -> good) per packet")
    loss_good: float = Field(0.0, ge=0, le=1, description="loss probability in the good state")
    loss_bad: float = Field(1.0, ge=0, le=1, description="loss probability in the bad state")

    @field_validator("model")
    @classmethod
    def _known(cls, model: str) -> str:
        LOSS_MODELS.check(model)
        if LOSS_MODELS[model].key != "timing.loss":
            raise ValueError(f"{model} is set by {LOSS_MODELS[model].key}, not timing.loss")
        return model

    def stationary_loss(self) -> float:
        p, r = self.p_good_bad, self.p_bad_good
        return (r * self.loss_good + p * self.loss_bad) / (p + r)


class LinkTiming(Strict):
    """A link's own latency law and bandwidth (null: the scenario's)."""

    latency: Dist | None = Field(None, description="the link's latency law (null: the "
                                 "scenario's)")
    bandwidth: float | None = Field(None, gt=0, description="bytes/s")


class Link(LinkTiming):
    src: int = Field(ge=0, description="sending node")
    dst: int = Field(ge=0, description="receiving node")


class Clusters(Strict):
    """Groups of nodes: links inside a group use `intra`, links between groups `inter`."""

    groups: list[list[int]] = Field(min_length=1, description="lists of node ids, a node in "
                                    "one group at most")
    intra: LinkTiming = Field(LinkTiming(), description="timing of links inside a group")
    inter: LinkTiming = Field(LinkTiming(), description="timing of links between groups")

    @model_validator(mode="after")
    def _check(self) -> Clusters:
        seen = [i for g in self.groups for i in g]
        if len(seen) != len(set(seen)):
            raise ValueError("groups: a node may be in one group only")
        return self


class UpDown(Strict):
    """Alternating up and down periods: a number is the mean of an exponential law, or give a
    law."""

    mtbf: float | Dist | None = Field(None, description="mean up time (s) or its law")
    mttr: float | Dist | None = Field(None, description="mean down time (s) or its law")

    @model_validator(mode="after")
    def _check_periods(self) -> UpDown:
        if (self.mtbf is None) != (self.mttr is None):
            raise ValueError("mtbf: give mtbf and mttr together")
        for name in ("mtbf", "mttr"):
            v = getattr(self, name)
            mean = v.expected() if isinstance(v, Dist) else v
            if mean is not None and not mean > 0:
                raise ValueError(f"{name}: must be > 0 (got {mean})")
        return self

    @property
    def random(self) -> bool:
        return self.mtbf is not None

    def law(self, name: str) -> Dist:
        v = getattr(self, name)
        assert v is not None
        return v if isinstance(v, Dist) else Dist(dist="exponential", mean=v)


class LinkChurn(UpDown):
    """Random link failures: every link alternates up and down periods, independently."""

    @model_validator(mode="after")
    def _check(self) -> LinkChurn:
        if not self.random:
            raise ValueError("mtbf: link_churn needs mtbf and mttr")
        return self


class Churn(UpDown):
    """Random node failures: every node alternates up and down periods, independently (all
    start up). A rejoining node keeps its state (`keep`) or restarts from the initial one
    (`reset`: its variables, its receive buffers and its outgoing running sums); `rejoin` also
    applies to node outages, and may be given alone (`churn: {rejoin: reset}`: no random
    failures)."""

    rejoin: Literal["keep", "reset"] = Field(
        "keep", description="a node back up keeps its state, or restarts from the initial one")


class Outage(Strict):
    """Node `node`, or link src->dst, is down from `start` to `end` (omitted: it never comes
    back)."""

    node: int | None = Field(None, ge=0, description="the node that is down (or give src, dst)")
    src: int | None = Field(None, ge=0, description="a down link's sending node")
    dst: int | None = Field(None, ge=0, description="a down link's receiving node")
    start: float = Field(ge=0, description="simulated time it goes down")
    end: float | None = Field(None, description="simulated time it comes back (null: never)")

    @model_validator(mode="after")
    def _check(self) -> Outage:
        link = (self.src, self.dst) != (None, None)
        if (self.node is not None) == link or (link and None in (self.src, self.dst)):
            raise ValueError("node: an outage names either a node ({node, start, end}) or a "
                             "link ({src, dst, start, end})")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end: must be > start (got {self.end} <= {self.start})")
        return self


class Nic(Strict):
    """Each node's network interface: the alpha-beta model with contention, per node."""

    egress: float | None = Field(
        None, gt=0, description="bytes/s out of a node (default: timing.bandwidth); a node's "
        "transfers serialise through it in send order")
    queue: Literal["fifo", "latest"] = Field(
        "fifo", description="latest: keep only the newest unsent packet per channel, for "
        "algorithms whose packets supersede older ones (others stay fifo)")
    ingress: float | None = Field(
        None, gt=0, description="bytes/s into a node, shared max-min fairly by the transfers "
        "into it (default: not modelled)")
