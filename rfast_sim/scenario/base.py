"""The schema's base: strict models, the user-facing error, and random laws by their mean."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rfast_sim.scenario.kinds import LAWS
from rfast_sim.scenario.tracefiles import Durations, TraceFileError, read_durations, read_matrix


class ScenarioError(ValueError):
    """A user-facing configuration error: one line naming the field and what is allowed."""


class Strict(BaseModel):
    # NaN and infinities are refused everywhere: no field of a scenario means them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)




class Dist(Strict):
    """A positive random duration (seconds) or factor, parameterised by its mean.

    constant: mean. uniform: low..high (default 0..2*mean). exponential: mean.
    shifted_exponential: shift + Exp(mean - shift). lognormal: mean and sigma of log.
    gamma: mean and shape. pareto: mean and shape (> 1).
    From data (`file`, relative to the scenario file): empirical: draws from a durations CSV
    (a node's own rows with a ``node`` column); trace (compute only): each node replays its
    rows in order (`loop`: then from the start again; else it stops computing); matrix
    (latency only): link i->j takes entry (i, j) of an n x n CSV matrix.
    """

    dist: str = Field("constant", description="a registered law (rfast-sim list)",
                      json_schema_extra=LAWS.json_schema)
    mean: float = Field(1.0, ge=0, description="the mean, seconds or factor (every parametric "
                        "law)")
    sigma: float = Field(0.5, ge=0, description="lognormal: standard deviation of the log")
    shape: float = Field(2.0, gt=0, description="gamma: shape; pareto: shape (> 1)")
    shift: float | None = Field(None, ge=0, description="shifted_exponential: the minimum "
                                "(default mean/2)")
    low: float | None = Field(None, ge=0, description="uniform: lower end (default 0)")
    high: float | None = Field(None, ge=0, description="uniform: upper end (default 2*mean)")
    file: str | None = Field(None, description="empirical / trace / matrix: the CSV file")
    loop: bool = Field(True, description="trace: start over at the end of a node's rows")

    @field_validator("dist")
    @classmethod
    def _known(cls, dist: str) -> str:
        return LAWS.check(dist)

    @model_validator(mode="after")
    def _check(self) -> Dist:
        self._check_law()
        return self

    def _check_law(self) -> None:
        if LAWS[self.dist].reads_file != (self.file is not None):
            file_laws = ", ".join(law.name for law in LAWS if law.reads_file)
            raise ValueError(f"file: {self.dist} needs a file" if self.file is None else
                             f"file: only the laws {file_laws} read a file")
        if self.file is not None:
            try:
                self.data()
            except TraceFileError as err:
                raise ValueError(f"file: {err}") from None
        if self.dist == "pareto" and self.shape <= 1:
            raise ValueError(f"shape: pareto needs shape > 1 for a finite mean (got {self.shape})")
        if self.dist == "shifted_exponential" and self.shift is not None and self.shift > self.mean:
            raise ValueError(f"shift: must be <= mean (got shift={self.shift}, mean={self.mean})")
        if self.dist == "uniform" and (self.low is None) != (self.high is None):
            raise ValueError("low/high: give both or neither")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low: must be <= high (got {self.low} > {self.high})")

    def durations(self) -> Durations:
        """A durations file's contents (empirical, trace)."""
        assert self.file is not None
        return read_durations(str(Path(self.file).resolve()))

    def data(self) -> np.ndarray:
        """The file's numbers: every duration (empirical, trace) or the latency matrix."""
        assert self.file is not None
        if self.dist == "matrix":
            return read_matrix(str(Path(self.file).resolve()))
        return self.durations().pooled

    def expected(self) -> float:
        """The distribution's mean (from data: the mean of the file's values)."""
        if self.dist == "matrix":
            m = self.data()
            return float(m[~np.eye(len(m), dtype=bool)].mean()) if len(m) > 1 else 0.0
        if self.file is not None:
            return float(self.data().mean())
        if self.dist == "uniform" and self.low is not None and self.high is not None:
            return 0.5 * (self.low + self.high)
        return self.mean

    def is_point_mass_at_zero(self) -> bool:
        return self.expected() == 0 or (self.dist == "uniform" and self.high == 0)


class ComputeLaw(Dist):
    """A compute-time law: a :class:`Dist`, or ``mean: model``: each node's mean is the
    roofline time of the problem's local step on its device (``devices``), and the law keeps
    its shape around it (its draws are the unit-mean law's times the node's mean)."""

    # a wider type than Dist's: `unit` turns a model law into a plain Dist, and the timing
    # side reads compute laws only through `Timing.compute_law`
    mean: Annotated[float, Field(ge=0)] | Literal["model"] = Field(  # type: ignore[assignment]
        1.0, description="the mean, seconds (every parametric law); model: the roofline time "
        "of the problem's local step on the node's device (devices)")

    @field_validator("mean", mode="before")
    @classmethod
    def _seconds_or_model(cls, mean: object) -> object:
        if isinstance(mean, str) and mean != "model":
            try:
                return float(mean)  # "0.1" as YAML or --set may give it
            except ValueError:
                raise ValueError(f"must be seconds (a number) or model (got {mean!r})") from None
        return mean

    @model_validator(mode="after")
    def _check(self) -> ComputeLaw:
        if not self.from_model:
            self._check_law()
            return self
        if self.file is not None or LAWS[self.dist].reads_file:
            raise ValueError(f"dist: mean: model scales a parametric law to each node's step "
                             f"time; {self.dist} reads its times from a file")
        for key in ("shift", "low", "high"):
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: with mean: model the law is scaled to each node's "
                                 f"step time; leave out {key} (seconds), it follows the mean")
        Dist(dist=self.dist, mean=1.0, sigma=self.sigma, shape=self.shape)  # the shape's checks
        return self

    @property
    def from_model(self) -> bool:
        return self.mean == "model"

    def unit(self) -> Dist:
        """The law with mean 1 (mean: model) or the law itself, as a plain Dist."""
        fields = self.model_dump(exclude_unset=True)
        fields["mean"] = 1.0 if self.from_model else self.mean
        return Dist(**fields)
