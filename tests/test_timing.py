"""The timing model: distributions' means, stragglers, drops, common random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import scenario
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from rfast_sim.experiment.plan import timing_plan
from rfast_sim.scenario import LAWS, Dist
from rfast_sim.scenario.seeding import stream, streams
from rfast_sim.timing import TimingModel
from rfast_sim.timing.laws import sample

# Each law's CDF written out here from the documented parameterisation (mean 2, sigma 0.5,
# shape 3), independently of the scipy.stats objects the code builds.
MEAN, SIGMA, SHAPE = 2.0, 0.5, 3.0


def _lognormal_cdf(x):
    mu = math.log(MEAN) - SIGMA**2 / 2
    return 0.5 * (1 + special.erf((np.log(np.maximum(x, 1e-300)) - mu) / (SIGMA * math.sqrt(2))))


CDFS = {
    "uniform": lambda x: np.clip(x / (2 * MEAN), 0, 1),  # 0 .. 2 * mean
    "exponential": lambda x: 1 - np.exp(-np.maximum(x, 0) / MEAN),
    # shift = mean / 2 by default, then Exp with the rest of the mean
    "shifted_exponential": lambda x: 1 - np.exp(-np.maximum(x - MEAN / 2, 0) / (MEAN / 2)),
    "lognormal": _lognormal_cdf,
    "gamma": lambda x: special.gammainc(SHAPE, np.maximum(x, 0) * SHAPE / MEAN),
    # x_m = mean (shape - 1) / shape
    "pareto": lambda x: 1 - np.minimum(1, (MEAN * (SHAPE - 1) / SHAPE / np.maximum(x, 1e-300))
                                       ** SHAPE),
}


@pytest.mark.parametrize("dist", sorted(CDFS))
def test_each_law_matches_its_documented_cdf(dist):
    x = sample(Dist(dist=dist, mean=MEAN, sigma=SIGMA, shape=SHAPE), stream(7, "t"), 50_000)
    result = stats.kstest(x, CDFS[dist])
    # at a fixed seed: a wrong law (another parameterisation, a wrong mean) gives p ~ 0
    assert result.pvalue > 1e-3, (dist, result)
    assert abs(x.mean() - MEAN) < 5 * x.std() / np.sqrt(len(x))


def test_constant_is_a_point_mass_and_explicit_uniform_bounds_are_used():
    assert (sample(Dist(dist="constant", mean=0.3), stream(1, "t"), 100) == 0.3).all()
    x = sample(Dist(dist="uniform", low=1.0, high=3.0), stream(1, "t"), 50_000)
    assert stats.kstest(x, lambda v: np.clip((v - 1.0) / 2.0, 0, 1)).pvalue > 1e-3


def test_all_distributions_are_covered():
    # the laws from data are tested in test_tracefiles.py
    file_laws = {law.name for law in LAWS if law.reads_file}
    assert set(CDFS) | {"constant"} | file_laws == set(LAWS.names())


def test_persistent_straggler_is_slowed_by_the_factor():
    sc = scenario(**{"timing.stragglers": {"nodes": [3], "slowdown": 5.0},
                     "timing.compute": {"dist": "exponential", "mean": 1.0}})
    tm = TimingModel(timing_plan(sc), seed=1, message_bytes=8.0)
    draws = np.array([[tm.clocks.next_duration(i) for _ in range(20_000)] for i in range(8)])
    means = draws.mean(1)
    assert tm.clocks.straggler_nodes == [3]
    others = np.delete(means, 3)
    assert abs(means[3] / others.mean() - 5.0) < 0.15  # SE of the ratio is ~0.04
    assert np.all(np.abs(others - 1.0) < 0.05)


def test_transient_stragglers_raise_the_mean_by_the_expected_factor():
    sc = scenario(**{"timing.stragglers": {"prob": 0.1, "slowdown": 10.0},
                     "timing.compute": {"dist": "constant", "mean": 1.0}})
    tm = TimingModel(timing_plan(sc), seed=2, message_bytes=8.0)
    x = np.array([tm.clocks.next_duration(0) for _ in range(50_000)])
    assert set(np.round(x, 9)) == {1.0, 10.0}
    assert abs((x == 10.0).mean() - 0.1) < 0.01  # SE 0.0013


def test_link_latency_and_drops_follow_the_configured_laws():
    sc = scenario(**{"timing.latency": {"dist": "constant", "mean": 0.02},
                     "timing.bandwidth": 1e6, "timing.drop_prob": 0.25,
                     "timing.link_drop_prob": [{"src": 1, "dst": 2, "drop_prob": 0.9}]})
    tm = TimingModel(timing_plan(sc), seed=3, message_bytes=5000.0)
    fates = [tm.links.fate(0, 1) for _ in range(20_000)]
    assert all(abs(d - 0.02) < 1e-12 for d, _ in fates)
    assert tm.links.get(0, 1).bandwidth == 1e6
    assert abs(np.mean([lost for _, lost in fates]) - 0.25) < 0.015
    assert abs(np.mean([tm.links.fate(1, 2)[1] for _ in range(5000)]) - 0.9) < 0.02


def test_streams_are_independent_of_each_other():
    sc = scenario()
    a, b = TimingModel(timing_plan(sc), 5, 8.0), TimingModel(timing_plan(sc), 5, 8.0)
    # drawing from other nodes and links in between never shifts node 3's sequence
    seq_a = [a.clocks.next_duration(3) for _ in range(10)]
    seq_b = []
    for _ in range(10):
        b.clocks.next_duration(1)
        b.links.fate(2, 3)
        seq_b.append(b.clocks.next_duration(3))
    assert seq_a == seq_b


@pytest.mark.parametrize(("p", "r", "good", "bad"), [(0.01, 0.2, 0.0, 1.0), (0.05, 0.1, 0.02, 0.6)])
def test_gilbert_elliott_loss_rate_and_burst_length(p, r, good, bad):
    sc = scenario(**{"timing.drop_prob": None, "timing.loss": {
        "model": "gilbert_elliott", "p_good_bad": p, "p_bad_good": r, "loss_good": good,
        "loss_bad": bad}})
    tm = TimingModel(timing_plan(sc), seed=4, message_bytes=8.0)
    n = 200_000
    lost = np.array([tm.links.fate(0, 1)[1] for _ in range(n)])
    pi_bad = p / (p + r)
    rate = (r * good + p * bad) / (p + r)  # the stationary loss rate, written out here
    assert sc.timing.loss.stationary_loss() == pytest.approx(rate)
    # the chain's autocorrelation inflates the variance of the mean by (1 + rho) / (1 - rho)
    rho = 1 - p - r
    var = (pi_bad * (1 - pi_bad) * (bad - good) ** 2 * (1 + rho) / (1 - rho)
           + rate * (1 - rate)) / n
    assert abs(lost.mean() - rate) < 4 * np.sqrt(var)
    if good == 0.0 and bad == 1.0:  # then every bad packet is lost: bursts are bad spells
        edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(int), [0]])))
        bursts = edges[1::2] - edges[::2]
        se = np.sqrt(1 - r) / r / np.sqrt(len(bursts))  # geometric(r) lengths
        assert abs(bursts.mean() - 1 / r) < 4 * se


def test_loss_keys_are_exclusive_and_the_resolved_scenario_keeps_the_one_in_use():
    from rfast_sim.scenario import ScenarioError
    from rfast_sim.scenario.loading import scenario_to_dict

    with pytest.raises(ScenarioError, match="loss: give either drop_prob"):
        scenario(**{"timing.loss": {"p_good_bad": 0.1}})  # the test base sets drop_prob
    sc = scenario(**{"timing.drop_prob": None, "timing.loss": {"p_good_bad": 0.1}})
    timing = scenario_to_dict(sc)["timing"]
    assert "drop_prob" not in timing
    assert timing["loss"]["p_good_bad"] == 0.1
    assert "loss" not in scenario_to_dict(scenario())["timing"]


@pytest.mark.parametrize("dist", sorted(CDFS))
def test_fast_samplers_draw_scipys_values(dist):
    from rfast_sim.timing.laws import law, sampler

    d = Dist(dist=dist, mean=MEAN, sigma=SIGMA, shape=SHAPE)
    for k in (1, 16, 1000):
        fast = sampler(d)(stream(3, "f", k), k)
        ref = law(d).rvs(size=k, random_state=stream(3, "f", k))
        if dist == "lognormal":
            # scipy exponentiates with numpy's vectorized exp (within an ulp of the C
            # library's, but which ulp depends on the CPU); ours is the C library's, each draw
            np.testing.assert_allclose(fast, ref, rtol=4e-16, atol=0)
            z = stream(3, "f", k).standard_normal(k)
            libm = np.array([math.exp(SIGMA * v) for v in z]) * law(d).kwds["scale"]
            np.testing.assert_array_equal(fast, libm)
        elif dist == "pareto":
            # numpy's Lomax draw (C library expm1 per draw) + 1, times the scale: the law is
            # scipy's (its CDF is tested below), the values are not scipy's inverse-CDF draws
            e = stream(3, "f", k).standard_exponential(k)
            x_m = law(d).kwds["scale"]
            lomax = np.array([math.expm1(v / SHAPE) for v in e])
            np.testing.assert_array_equal(fast, (lomax + 1.0) * x_m)
        else:
            np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("dist", sorted(CDFS))
def test_a_chunk_free_law_gives_the_same_values_in_any_chunks(dist):
    # `take` draws what it needs in one call where the law reads the generator value by
    # value; the engine's `next` reads blocks of 16, 32, ...: the values must not differ
    from rfast_sim.timing.laws import Blocked, chunk_free, sampler

    d = Dist(dist=dist, mean=MEAN, sigma=SIGMA, shape=SHAPE)
    one_by_one = Blocked(stream(4, "c"), sampler(d), chunk_free=chunk_free(d))
    in_chunks = Blocked(stream(4, "c"), sampler(d), chunk_free=chunk_free(d))
    expected = [one_by_one.next() for _ in range(3000)]
    got = np.concatenate([in_chunks.take(k) for k in (5, 2000, 1, 994)])
    np.testing.assert_array_equal(got, expected)
    assert chunk_free(d)  # every law has a numpy sampler (scipy's own are not relied on)


@given(seed=st.integers(0, 2**40), tag=st.text(max_size=8),  # 2**32 on: multi-word entropy
       ids=st.lists(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6),
                    min_size=1, max_size=5).filter(lambda r: len({len(x) for x in r}) == 1))
def test_batched_streams_are_the_named_streams(seed, tag, ids):
    made = streams(seed, tag, np.array(ids, dtype=np.int64))
    for rng, row in zip(made, ids, strict=True):
        np.testing.assert_array_equal(rng.random(5), stream(seed, tag, *row).random(5))
