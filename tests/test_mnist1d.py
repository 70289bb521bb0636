"""MNIST-1D generated here, and the 1-D CNN: the paper's shapes, balance and model ordering."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rfast_sim
from rfast_sim.maths.problems import make_problem
from rfast_sim.maths.problems.mnist1d import Mnist1dOptions, content_hash, generate, templates
from rfast_sim.scenario.loading import scenario_to_dict


def _scenario(problem: dict, **extra) -> rfast_sim.Scenario:
    return rfast_sim.parse_scenario({
        "nodes": 4, "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
        "problem": {"kind": "dataset", "source": "mnist1d", **problem},
        "algorithm": {"name": "rfast", "step_size": 0.1},
        "run": {"until": 1.0, "sample_every": 1.0}, **extra})


def test_the_set_is_deterministic_from_its_seed():
    a, b = generate(Mnist1dOptions()), generate(Mnist1dOptions(seed=42))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    other = generate(Mnist1dOptions(seed=7))
    assert not np.array_equal(a[0], other[0])
    assert content_hash(Mnist1dOptions()) != content_hash(Mnist1dOptions(seed=7))
    assert content_hash(Mnist1dOptions(iid_noise=0.05)) != content_hash(Mnist1dOptions())


def test_shapes_and_class_balance_are_the_papers():
    x, y, tx, ty = generate(Mnist1dOptions())
    assert x.shape == (4000, 40)
    assert tx.shape == (1000, 40)
    assert np.bincount(np.concatenate([y, ty])).tolist() == [500] * 10
    # a random 80/20 split of a balanced set: each class near 400 / 100
    assert np.all(np.abs(np.bincount(y) - 400) < 40)
    whole = np.concatenate([x, tx])
    assert abs(whole.mean()) < 1e-9
    assert abs(whole.std() - 1) < 1e-9
    t = templates()
    np.testing.assert_allclose(t[:, 0], 0)  # each template starts at zero
    assert t.shape == (10, 12)


def test_the_problem_holds_out_the_generators_test_set_unless_a_fraction_is_given():
    ops, data = make_problem(_scenario({}).problem, 4, 0)
    assert int(data.counts.sum()) == 4000
    assert data.test_feats.shape == (1000, 40)
    assert ops.has_test
    sc = _scenario({"test_fraction": 0.1, "mnist1d": {"samples": 1000}})
    _, data = make_problem(sc.problem, 4, 0)
    assert int(data.counts.sum()) == 900
    assert len(data.test_feats) == 100
    assert _scenario({}).problem.default_target() == {"test_accuracy": 0.9}


def test_options_are_checked_and_only_for_mnist1d():
    with pytest.raises(rfast_sim.ScenarioError, match="mnist1d: options of source mnist1d"):
        rfast_sim.parse_scenario({"problem": {"kind": "dataset", "source": "digits",
                                              "mnist1d": {"samples": 100}}})
    with pytest.raises(rfast_sim.ScenarioError, match=r"problem.mnist1d.samples.*>= 10"):
        _scenario({"mnist1d": {"samples": -5}})
    with pytest.raises(rfast_sim.ScenarioError, match=r"problem\.mnist1d\.nosie"):
        _scenario({"mnist1d": {"nosie": 0.1}})
    # other sources dump (and hash into run ids) the keys they always had
    digits = scenario_to_dict(_scenario({"source": "digits"}))["problem"]
    assert "mnist1d" not in digits
    assert scenario_to_dict(_scenario({}))["problem"]["mnist1d"]["seed"] == 42


def test_run_ids_hold_the_generated_sets_hash():
    from rfast_sim.sweeps import expand

    base = {"nodes": 4, "problem": {"kind": "dataset", "source": "mnist1d",
                                    "mnist1d": {"samples": 200}},
            "algorithm": {"name": "rfast"}, "run": {"until": 1.0}}
    first = expand({"scenario": base, "seeds": 2})
    assert [p.run_id for p in first] == [p.run_id for p in expand({"scenario": base,
                                                                    "seeds": 2})]
    base["problem"]["mnist1d"] = {"samples": 200, "seed": 1}
    assert not {p.run_id for p in first} & {p.run_id for p in expand({"scenario": base,
                                                                      "seeds": 2})}


def test_a_1d_cnn_has_the_expected_parameters():
    sc = _scenario({"input_shape": [40, 1], "model": {"kind": "cnn", "channels": [4, 6],
                                                      "kernel": 5, "hidden": [8]}})
    ops, data = make_problem(sc.problem, 4, 0)
    # conv 5x1x4 + 4, conv 5x4x6 + 6, two poolings: 40 -> 10 positions x 6 channels
    assert ops.dim == (5 * 4 + 4) + (5 * 4 * 6 + 6) + (60 * 8 + 8) + (8 * 10 + 10)
    assert data.feats.shape[2:] == (40, 1)


def _trained_accuracy(model: dict, shape: list[int] | None, steps: int, lr: float) -> float:
    """Plain minibatch SGD on one node (the whole training set), then held-out accuracy."""
    spec = _scenario({"model": model, "batch_size": 32, "l2": 0.0,
                      **({"input_shape": shape} if shape else {})}).problem
    ops, data = make_problem(spec, 1, 0, "float32")
    feats, targets = data.feats[0], data.targets[0]
    grad = jax.grad(ops.loss)

    @jax.jit
    def train(x: jax.Array) -> jax.Array:
        def step(x: jax.Array, key: jax.Array) -> tuple[jax.Array, None]:
            idx = jax.random.randint(key, (32,), 0, feats.shape[0])
            return x - lr * grad(x, feats[idx], targets[idx], data.l2), None

        return jax.lax.scan(step, x, jax.random.split(jax.random.PRNGKey(0), steps))[0]

    return float(ops.correct(train(data.x0), data.test_feats, data.test_targets, None))


@pytest.mark.long
def test_a_cnn_beats_the_mlp_on_held_out_accuracy_as_in_the_paper():
    linear = _trained_accuracy({"kind": "linear"}, None, 1500, 0.1)
    mlp = _trained_accuracy({"kind": "mlp", "hidden": [100, 100]}, None, 1500, 0.05)
    cnn = _trained_accuracy({"kind": "cnn", "channels": [16, 16], "kernel": 5, "hidden": []},
                            [40, 1], 1500, 0.05)
    # the paper (Adam, longer): logistic ~32%, MLP ~68%, CNN ~94%
    assert 0.2 < linear < 0.45
    assert mlp > linear + 0.1
    assert cnn > mlp + 0.1
