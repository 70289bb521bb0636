"""An algorithm's entry in a scenario: its name and its step size (given, or searched)."""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from rfast_sim.scenario import registry
from rfast_sim.scenario.base import Strict


class AutoStep(Strict):
    """How `step_size: auto` searches: a log-spaced bracket, widened while the best step sits
    at an edge, then refined around the best, at most `budget` steps per algorithm."""

    low: float = Field(0.01, gt=0, description="the initial bracket's smallest step")
    high: float = Field(10.0, gt=0, description="the initial bracket's largest step")
    points: int = Field(7, ge=2, le=64, description="steps in the initial bracket (log-spaced); "
                        "each widening adds half as many beyond the edge")
    budget: int = Field(16, ge=2, le=256, description="most steps tried per algorithm (every one "
                        "on every seed, on the same traces)")

    @model_validator(mode="after")
    def _check(self) -> AutoStep:
        if not self.high > self.low:
            raise ValueError(f"high: must be > low (got low {self.low:g}, high {self.high:g})")
        if self.budget < self.points:
            raise ValueError(f"budget: must be >= points ({self.points}; got {self.budget})")
        return self


class AutoStepSpec(Strict):
    auto: AutoStep = Field(default_factory=AutoStep, description="the search's settings")


STEP_FORMS = ("step", "grid", "auto", "search")  # the tags of step_size's union


def _step_form(value: Any) -> str:
    """Which form a step_size value takes, so an error names that form's problem only (not
    every member of the union)."""
    if isinstance(value, dict | AutoStepSpec):
        return "search"
    if isinstance(value, list):
        return "grid"
    return "auto" if value == "auto" else "step"


StepSize = Annotated[
    Annotated[float, Tag("step")] | Annotated[list[float], Tag("grid")]
    | Annotated[Literal["auto"], Tag("auto")] | Annotated[AutoStepSpec, Tag("search")],
    Discriminator(_step_form)]


class AlgorithmSpec(Strict):
    name: str = Field("rfast", description="a registered algorithm (rfast-sim list)")
    step_size: StepSize = Field(
        0.05, description="a step, a list of steps (the best one is reported), or auto (a "
        "search by the comparison's own rule: `auto` or {auto: {low, high, points, budget}})")

    @model_validator(mode="after")
    def _check(self) -> AlgorithmSpec:
        known = registry.names()
        if self.name not in known:
            close = difflib.get_close_matches(self.name, known, n=3)
            hint = f"; did you mean {', '.join(close)}" if close else ""
            raise ValueError(
                f"name: unknown algorithm {self.name!r}{hint} (known: {', '.join(known)})"
            )
        if self.auto is None:
            steps = self.step_sizes
            if not steps or any(not (s > 0 and math.isfinite(s)) for s in steps):
                raise ValueError(f"step_size: must be > 0, a list of such, or auto (got "
                                 f"{self.step_size})")
        return self

    @property
    def auto(self) -> AutoStep | None:
        """The search settings when the step is tuned, else None."""
        if self.step_size == "auto":
            return AutoStep()
        return self.step_size.auto if isinstance(self.step_size, AutoStepSpec) else None

    @property
    def step_sizes(self) -> list[float]:
        """The steps given (none when tuned: the search chooses them)."""
        if isinstance(self.step_size, list):
            return list(self.step_size)
        return [self.step_size] if isinstance(self.step_size, float | int) else []

    @property
    def max_runs_per_seed(self) -> int:
        """Most steps run on one seed: the grid's size, or the search's budget."""
        return self.auto.budget if self.auto is not None else len(self.step_sizes)
