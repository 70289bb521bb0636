"""Down periods: explicit outages and alternating up / down periods (churn), of nodes and of
links, as pure generators and sorted period lists (no order-dependent queries)."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from rfast_sim.scenario.network import UpDown
from rfast_sim.scenario.seeding import stream
from rfast_sim.timing.laws import Blocked, Draw, sampler
from rfast_sim.timing.plan import TimingPlan


def alternating(up: Blocked, down: Blocked) -> Iterator[tuple[float, float]]:
    """The down periods [start, end) of something that starts up and then alternates up
    periods (drawn from `up`) and down periods (from `down`), in time order, without end."""
    clock = up.next()
    while True:
        end = clock + down.next()
        yield clock, end
        clock = end + up.next()


def churn_laws(churn: UpDown) -> tuple[Draw, Draw]:
    """The samplers of churn's up (mtbf) and down (mttr) periods, made once for all."""
    return sampler(churn.law("mtbf")), sampler(churn.law("mttr"))


def churn_periods(laws: tuple[Draw, Draw], seed: int, what: str,
                  *key: int) -> Iterator[tuple[float, float]]:
    """`alternating` from the named streams `<what>_up` / `<what>_down` of one node or link,
    with the samplers `laws` (`churn_laws`)."""
    return alternating(Blocked(stream(seed, f"{what}_up", *key), laws[0]),
                       Blocked(stream(seed, f"{what}_down", *key), laws[1]))


@dataclass
class Periods:
    """Down periods [starts[k], ends[k]), sorted and disjoint."""

    starts: list[float]
    ends: list[float]

    def spans(self) -> list[tuple[float, float]]:
        return list(zip(self.starts, self.ends, strict=True))

    def covers(self, t: float) -> bool:
        """Is t inside a down period?"""
        k = bisect.bisect_right(self.starts, t) - 1
        return k >= 0 and t < self.ends[k]

    def next_after(self, t: float) -> tuple[float, float] | None:
        """The first period that ends after t (start, end; end = inf: never back)."""
        k = bisect.bisect_right(self.ends, t)
        return (self.starts[k], self.ends[k]) if k < len(self.ends) else None


def merged(spans: list[tuple[float, float]]) -> Periods:
    starts: list[float] = []
    ends: list[float] = []
    for a, b in sorted(spans):
        if starts and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return Periods(starts, ends)


@dataclass
class LazyPeriods:
    """Periods drawn from a generator only as far as a query needs them: a query at any time,
    in any order, gives the same answer (the generator is a pure function of its streams)."""

    source: Iterator[tuple[float, float]]
    periods: Periods = field(default_factory=lambda: Periods([], []))

    def upto(self, t: float) -> Periods:
        """The periods drawn so far, including every one that starts at or before t."""
        starts = self.periods.starts
        while not starts or starts[-1] <= t:
            start, end = next(self.source)
            starts.append(start)
            self.periods.ends.append(end)
        return self.periods

    def covers(self, t: float) -> bool:
        return self.upto(t).covers(t)

    def started_by(self, t: float) -> list[tuple[float, float]]:
        """The periods that start at or before t."""
        return [s for s in self.upto(t).spans() if s[0] <= t]


class NodeFaults:
    """Every node's down periods up to run.until: its explicit outages and, with churn,
    alternating up (law mtbf) and down (law mttr) periods from its own streams."""

    def __init__(self, spec: TimingPlan, seed: int) -> None:
        t = spec.timing
        spans: dict[int, list[tuple[float, float]]] = {}
        for o in t.outages:
            if o.node is not None:
                spans.setdefault(o.node, []).append(
                    (o.start, o.end if o.end is not None else math.inf))
        if t.churn is not None and t.churn.random:
            horizon = spec.run.until if spec.run.until is not None else math.inf
            laws = churn_laws(t.churn)
            for i in range(spec.nodes):
                periods = itertools.takewhile(lambda s: s[0] < horizon,
                                              churn_periods(laws, seed, "node", i))
                spans.setdefault(i, []).extend(periods)
        self.down = {i: merged(s) for i, s in spans.items()}

    def node_up(self, i: int, t: float) -> bool:
        """Is node i up at time t (down periods are [start, end))?"""
        p = self.down.get(i)
        return p is None or not p.covers(t)

    def next_down(self, i: int, t: float) -> tuple[float, float] | None:
        """Node i's first down period that ends after t (start, end; end = inf: never back)."""
        p = self.down.get(i)
        return None if p is None else p.next_after(t)

    def down_between(self, i: int, a: float, b: float) -> bool:
        """Was node i down at any moment of [a, b]?"""
        down = self.next_down(i, a)
        return down is not None and down[0] <= b
