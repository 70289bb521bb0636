"""Censored statistics of time to target: reached k/n, medians that count misses, bootstrap CIs.

A seed that never reaches the target (or diverges) has time +inf: it is *censored*, not missing.
Averaging only the seeds that made it would flatter the algorithm, so every summary here counts
the misses: the median is +inf once half or more of the seeds miss. Confidence intervals are
percentile bootstraps over seeds (quantiles that pick sample values, so +inf is handled
exactly); speed-ups resample the *same* seeds for both algorithms, since the same seed means the
same timing draws (a paired comparison). CI quantiles use "inverted_cdf", which returns one of
the resampled medians: no interpolation between a time and +inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000


@dataclass(frozen=True)
class Censored:
    """Summary of one algorithm's (at one step size) times to target over its seeds."""

    seeds: int
    reached: int
    median: float
    ci_low: float
    ci_high: float

    @property
    def fraction(self) -> float:
        return self.reached / self.seeds if self.seeds else float("nan")


def reached_text(fraction: float, seeds: int) -> str:
    """`reached` as a reader wants it: k/n seeds."""
    return f"{round(fraction * seeds)}/{seeds}"


def as_censored(times: np.ndarray) -> np.ndarray:
    """Times to target with every miss (NaN) as +inf."""
    t = np.asarray(times, dtype=float)
    return np.where(np.isnan(t), np.inf, t)


def _medians(t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.median(t[idx], axis=-1)  # (a + inf) / 2 = inf: exact with misses


def _resamples(n: int, rng: np.random.Generator, resamples: int) -> np.ndarray:
    return rng.integers(0, n, size=(resamples, n))


def median(t: np.ndarray) -> float:
    """The median counting +inf: +inf as soon as half of the values are."""
    return float(np.median(t)) if len(t) else float("nan")


def summarize_times(times: np.ndarray, rng: np.random.Generator,
                    resamples: int = RESAMPLES) -> Censored:
    """reached k/n, median and percentile-bootstrap 95% CI of censored times."""
    t = as_censored(times)
    n = len(t)
    if n == 0:
        return Censored(0, 0, *(float("nan"),) * 3)
    meds = _medians(t, _resamples(n, rng, resamples))
    low, high = np.quantile(meds, [0.025, 0.975], method="inverted_cdf")
    return Censored(n, int(np.isfinite(t).sum()), median(t), float(low), float(high))


def _ratio(base: np.ndarray, alg: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(base, dtype=float) / np.asarray(alg, dtype=float)
    # both missed: no speed-up can be stated; a miss against a finite time is 0 or +inf
    return np.where(np.isinf(base) & np.isinf(alg), np.nan, r)


def paired_speedup(base_times: np.ndarray, alg_times: np.ndarray, rng: np.random.Generator,
                   resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """Speed-up = baseline median / algorithm median over the same seeds, with a paired
    percentile-bootstrap 95% CI (each resample draws seeds, both algorithms keep them)."""
    b, a = as_censored(base_times), as_censored(alg_times)
    if len(b) == 0 or len(b) != len(a):
        return (float("nan"),) * 3
    point = float(_ratio(np.array(median(b)), np.array(median(a))))
    idx = _resamples(len(b), rng, resamples)
    ratios = _ratio(_medians(b, idx), _medians(a, idx))
    ratios = ratios[~np.isnan(ratios)]
    if not len(ratios):
        return point, float("nan"), float("nan")
    low, high = np.quantile(ratios, [0.025, 0.975], method="inverted_cdf")
    return point, float(low), float(high)
