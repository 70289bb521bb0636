"""The timing model: distributions' means, stragglers, drops, common random numbers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

from rfast_sim.scenario import DISTRIBUTIONS, Dist
from rfast_sim.seeding import stream
from rfast_sim.timing import TimingModel, sample


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_sample_mean_matches_configured_mean(dist):
    d = Dist(dist=dist, mean=2.0, sigma=0.5, shape=3.0)
    x = sample(d, stream(7, "t"), 200_000)
    assert (x >= 0).all()
    # standard error of the mean, from the sample itself; 5 SE fails only by real bias
    se = x.std() / np.sqrt(len(x)) + 1e-12
    assert abs(x.mean() - d.expected()) < 5 * se + 1e-9


def test_persistent_straggler_is_slowed_by_the_factor():
    sc = scenario(**{"timing.stragglers": {"nodes": [3], "slowdown": 5.0},
                     "timing.compute": {"dist": "exponential", "mean": 1.0}})
    tm = TimingModel(sc, seed=1, message_bytes=8.0)
    draws = np.array([[tm.compute_time(i) for _ in range(20_000)] for i in range(8)])
    means = draws.mean(1)
    assert tm.straggler_nodes == [3]
    others = np.delete(means, 3)
    assert abs(means[3] / others.mean() - 5.0) < 0.15  # SE of the ratio is ~0.04
    assert np.all(np.abs(others - 1.0) < 0.05)


def test_transient_stragglers_raise_the_mean_by_the_expected_factor():
    sc = scenario(**{"timing.stragglers": {"prob": 0.1, "slowdown": 10.0},
                     "timing.compute": {"dist": "constant", "mean": 1.0}})
    tm = TimingModel(sc, seed=2, message_bytes=8.0)
    x = np.array([tm.compute_time(0) for _ in range(50_000)])
    assert set(np.round(x, 9)) == {1.0, 10.0}
    assert abs((x == 10.0).mean() - 0.1) < 0.01  # SE 0.0013


def test_packet_delay_adds_transfer_time_and_drops_follow_probability():
    sc = scenario(**{"timing.latency": {"dist": "constant", "mean": 0.02},
                     "timing.bandwidth": 1e6, "timing.drop_prob": 0.25,
                     "timing.link_drop_prob": [{"src": 1, "dst": 2, "drop_prob": 0.9}]})
    tm = TimingModel(sc, seed=3, message_bytes=5000.0)
    fates = [tm.packet(0, 1) for _ in range(20_000)]
    assert all(abs(d - 0.025) < 1e-12 for d, _ in fates)
    assert abs(np.mean([lost for _, lost in fates]) - 0.25) < 0.015
    assert abs(np.mean([tm.packet(1, 2)[1] for _ in range(5000)]) - 0.9) < 0.02


def test_streams_are_independent_of_each_other():
    sc = scenario()
    a, b = TimingModel(sc, 5, 8.0), TimingModel(sc, 5, 8.0)
    # drawing from other nodes and links in between never shifts node 3's sequence
    seq_a = [a.compute_time(3) for _ in range(10)]
    seq_b = []
    for _ in range(10):
        b.compute_time(1)
        b.packet(2, 3)
        seq_b.append(b.compute_time(3))
    assert seq_a == seq_b
