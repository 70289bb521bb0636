"""Datasets: files and bundled sets, the held-out split, partitions, padded shards."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import rfast_sim
import rfast_sim.scenario.loading
from rfast_sim.maths.problems import make_problem
from rfast_sim.maths.problems.dataset import prepare_data
from rfast_sim.maths.problems.partitions import dirichlet_shares
from rfast_sim.scenario import PartitionSpec


def _scenario(problem: dict, **extra) -> rfast_sim.Scenario:
    return rfast_sim.parse_scenario({
        "nodes": 4, "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
        "problem": {"kind": "dataset", **problem},
        "algorithm": {"name": "rfast", "step_size": 0.1},
        "run": {"until": 10.0, "sample_every": 1.0}, **extra})


def _npz(folder: Path, x, y, **more) -> str:
    path = folder / "d.npz"
    np.savez(path, x=x, y=y, **more)
    return str(path)


def _classes(n: int = 200, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return rng.standard_normal((n, 3)) + y[:, None], y


def test_npz_csv_and_parquet_give_the_same_problem(tmp_path):
    x, y = _classes()
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    datas = [make_problem(_scenario({"file": f, "test_fraction": 0.2}).problem, 4, 0)[1]
             for f in (_npz(tmp_path, x, y), str(tmp_path / "t.csv"),
                       str(tmp_path / "t.parquet"))]
    for d in datas[1:]:
        for a, b in zip(datas[0], d, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("source", "size", "classes"), [
    ("digits", 1797, 10), ("iris", 150, 3), ("wine", 178, 3), ("breast_cancer", 569, 2)])
def test_bundled_sets_are_split_and_shared(source, size, classes):
    sc = _scenario({"source": source, "test_fraction": 0.2, "standardize": True})
    ops, data = make_problem(sc.problem, 4, 0)
    assert int(data.counts.sum()) + len(data.test_feats) == size
    assert len(data.test_feats) == round(0.2 * size)
    assert ops.dim == (data.feats.shape[-1] + 1) * classes  # linear with bias
    # the split does not depend on the replicate seed
    other = make_problem(sc.problem, 4, 7)[1]
    np.testing.assert_array_equal(data.test_targets, other.test_targets)


def test_train_and_test_never_share_a_sample(tmp_path):
    x = np.arange(300, dtype=float)[:, None] * np.ones((1, 2))  # each row is unique
    y = np.arange(300) % 3
    p = prepare_data(_scenario({"file": _npz(tmp_path, x, y), "test_fraction": 0.3,
                                "partition": {"kind": "dirichlet", "alpha": 0.3}}).problem, 5)
    train = np.concatenate([p.feats[i, :c, 0] for i, c in enumerate(p.counts)])
    test = p.test_feats[:, 0]
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(300))  # nothing dropped or duplicated


def test_iid_shard_sizes_differ_by_at_most_one(tmp_path):
    x, y = _classes(203)
    p = prepare_data(_scenario({"file": _npz(tmp_path, x, y)}).problem, 7)
    assert p.counts.max() - p.counts.min() <= 1
    assert p.counts.sum() == 203


def test_by_key_places_every_sample_where_its_key_says(tmp_path):
    x, y = _classes(150)
    node = np.random.default_rng(1).integers(0, 4, 150)
    x[:, 0] = np.arange(150)  # identify the rows
    sc = _scenario({"file": _npz(tmp_path, x, y, node=node), "partition": {"kind": "by_key"}})
    p = prepare_data(sc.problem, 4)
    for i in range(4):
        rows = p.feats[i, : p.counts[i], 0].astype(int)
        assert set(rows) == set(np.flatnonzero(node == i))


def test_shards_give_each_node_at_most_k_classes(tmp_path):
    x, y = _classes(400, classes=8)
    sc = _scenario({"file": _npz(tmp_path, x, y),
                    "partition": {"kind": "shards", "classes_per_node": 2}})
    p = prepare_data(sc.problem, 4)
    for i in range(4):
        assert len(set(p.targets[i, : p.counts[i]].astype(int))) <= 2
    assert p.counts.sum() == 400


def test_dirichlet_shares_match_their_expectation_over_many_draws():
    """Each class's share at a node is Dirichlet(alpha 1_n)-distributed: mean 1/n, variance
    (1/n)(1 - 1/n)/(n alpha + 1) (moments of the Dirichlet, computed here, not by the code)."""
    n, alpha, draws = 5, 0.4, 2000
    labels = np.repeat(np.arange(3), 1000)  # 1000 samples of each of 3 classes
    rng = np.random.default_rng(0)
    shares = np.empty((draws, n, 3))
    for k in range(draws):
        parts = dirichlet_shares(labels, n, alpha, rng)
        shares[k] = [[np.mean(labels[p] == c) * len(p) / 1000 for c in range(3)]
                     for p in parts]
    mean, var = 1 / n, (1 / n) * (1 - 1 / n) / (n * alpha + 1)
    np.testing.assert_allclose(shares.mean(0), mean, atol=4 * np.sqrt(var / draws))
    np.testing.assert_allclose(shares.var(0), var, rtol=0.15)
    part = PartitionSpec(kind="dirichlet", alpha=alpha)
    assert part.alpha == alpha


@pytest.mark.long
def test_minibatches_never_read_padding(tmp_path):
    """Unequal shards: the padding rows hold a sentinel; no gradient (exact or minibatch) nor
    metric ever sees it."""
    rng = np.random.default_rng(0)
    node = np.repeat(np.arange(4), [5, 9, 17, 30])
    x = rng.standard_normal((61, 3))
    y = rng.integers(0, 2, 61)
    sc = _scenario({"file": _npz(tmp_path, x, y, node=node), "partition": {"kind": "by_key"},
                    "batch_size": 8})
    ops, data = make_problem(sc.problem, 4, 0)
    assert ops.padded
    pad = jnp.arange(data.feats.shape[1])[None, :] >= data.counts[:, None]
    poisoned = data._replace(feats=jnp.where(pad[..., None], jnp.nan, data.feats),
                             targets=jnp.where(pad, 1e6, data.targets))
    x0 = data.x0 + 0.1
    for i in range(4):
        for k in range(20):
            g = ops.local_grad(x0, poisoned, jnp.int32(i), jax.random.PRNGKey(k))
            assert np.isfinite(g).all()
    exact = ops.__class__(**{**ops.__dict__, "batch_size": None})
    g = exact.local_grad(x0, poisoned, jnp.int32(0), jax.random.PRNGKey(0))
    np.testing.assert_allclose(g, exact.local_grad(x0, data, jnp.int32(0), jax.random.PRNGKey(0)))
    assert np.isfinite(ops.global_loss(x0, poisoned))
    assert np.isfinite(ops.accuracy(x0, poisoned))


def test_held_out_metrics_differ_from_training_metrics_as_constructed(tmp_path):
    """Labels are a clean function of x; only the training file gets label noise: training
    accuracy is capped by the noise, test accuracy is not."""
    rng = np.random.default_rng(0)
    x, tx = rng.standard_normal((400, 2)), rng.standard_normal((200, 2))
    y, ty = (x[:, 0] > 0).astype(int), (tx[:, 0] > 0).astype(int)
    flip = rng.random(400) < 0.3
    y_noisy = np.where(flip, 1 - y, y)
    np.savez(tmp_path / "train.npz", x=x, y=y_noisy)
    np.savez(tmp_path / "test.npz", x=tx, y=ty)
    sc = _scenario({"file": str(tmp_path / "train.npz"), "test_file": str(tmp_path / "test.npz"),
                    "loss": "binary_cross_entropy", "model": {"kind": "linear", "bias": False},
                    "l2": 0.0}, algorithm={"name": "allreduce_sgd", "step_size": 1.0},
                   run={"until": 40.0, "sample_every": 4.0})
    res = rfast_sim.run(sc)
    last = res.metrics.iloc[-1]
    w = np.asarray(res.runs[0].final_state.nodes.x[0])
    want_train = np.mean((x @ w > 0) == (y_noisy > 0.5))
    want_test = np.mean((tx @ w > 0) == (ty > 0.5))
    assert last["accuracy"] == pytest.approx(want_train, abs=1e-12)
    assert last["test_accuracy"] == pytest.approx(want_test, abs=1e-12)
    assert last["test_accuracy"] > last["accuracy"] + 0.15


def test_rfast_reaches_the_closed_form_optimum_with_unequal_shards(tmp_path):
    """Linear model, mse, no L2, exact gradients: F(x) = (1/n) sum_i 0.5 mean_k (a_k x -
    b_k)^2 over node i's samples, minimised by weighted least squares (weights 1/(n m_i))."""
    rng = np.random.default_rng(3)
    sizes = [6, 11, 23, 40]
    node = np.repeat(np.arange(4), sizes)
    x = rng.standard_normal((80, 3)) + 0.3 * node[:, None]  # heterogeneous shards
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(80) + node
    sc = _scenario({"file": _npz(tmp_path, x, y, node=node), "partition": {"kind": "by_key"},
                    "loss": "mse", "model": {"kind": "linear", "bias": True}, "l2": 0.0},
                   graphs={"pull": {"kind": "binary_tree"}, "push": {"kind": "binary_tree"}},
                   timing={"drop_prob": 0.2, "latency": {"dist": "exponential", "mean": 0.1}},
                   algorithm={"name": "rfast", "step_size": 0.03},
                   run={"until": 1000.0, "sample_every": 100.0})
    res = rfast_sim.run(sc)
    A = np.hstack([x, np.ones((80, 1))])
    w = 1.0 / np.array(sizes)[node]
    star = np.linalg.solve(A.T @ (A * w[:, None]), A.T @ (w * y))
    # ravel order of {"w", "b"}: b first
    want = np.concatenate([star[3:], star[:3]])
    models = np.asarray(res.runs[0].final_state.nodes.x)
    assert np.abs(models - want).max() < 1e-8


@pytest.mark.long
def test_a_cnn_trains_on_image_shaped_digits_from_a_csv_by_key_column(tmp_path):
    x, y = _classes(120)
    frame = pd.DataFrame({f"p{k}": np.tile(x[:, k % 3], 1) for k in range(16)})
    frame["label"], frame["owner"] = y, np.arange(120) % 4
    frame.to_csv(tmp_path / "img.csv", index=False)
    sc = _scenario({"file": str(tmp_path / "img.csv"), "input_shape": [4, 4, 1],
                    "model": {"kind": "cnn", "channels": [4], "hidden": [8]},
                    "partition": {"kind": "by_key", "key": "owner"}, "batch_size": 8},
                   run={"until": 3.0, "sample_every": 1.0})
    ops, data = make_problem(sc.problem, 4, 0)
    assert data.feats.shape == (4, 30, 4, 4, 1)
    assert set(np.asarray(data.counts)) == {30}
    res = rfast_sim.run(sc)
    assert res.runs[0].message_bytes == ops.dim * 8
    assert np.isfinite(res.metrics["loss"]).all()


def test_schema_defaults_and_targets_for_datasets():
    sc = _scenario({"source": "iris", "test_fraction": 0.3}, seed=4,
                   compare={"baseline": "rfast"})
    assert sc.problem.data_seed == 4  # the scenario's seed, resolved (and dumped)
    assert sc.compare.target == {"test_accuracy": 0.9}
    assert _scenario({"source": "iris"}).problem.default_target() == {"accuracy": 0.9}
    sc = _scenario({"source": "iris", "test_fraction": 0.3},
                   compare={"baseline": "rfast", "target": {"test_loss": 0.2}})
    assert sc.compare.target == {"test_loss": 0.2}
    with pytest.raises(rfast_sim.ScenarioError, match="unknown problem kind 'datset'"):
        rfast_sim.parse_scenario({"problem": {"kind": "datset"}})
    # built-in scenarios dump the keys they always had
    dumped = rfast_sim.scenario.loading.scenario_to_dict(rfast_sim.parse_scenario({}))
    assert set(dumped["problem"]) == {"kind", "dim", "samples_per_node", "heterogeneity",
                                      "batch_size", "l2", "noise", "hidden"}


def test_a_sweeps_seeds_share_the_split_and_its_run_ids_hash_the_data(tmp_path):
    from rfast_sim.sweeps import expand

    x, y = _classes()
    base = {"nodes": 4, "seed": 2, "problem": {"kind": "dataset", "file": _npz(tmp_path, x, y),
                                               "test_fraction": 0.2},
            "algorithm": {"name": "rfast"}, "run": {"until": 2.0}}
    points = expand({"scenario": base, "seeds": 3})
    assert {p.scenario.problem.data_seed for p in points} == {2}
    before = [p.run_id for p in points]
    np.savez(tmp_path / "d.npz", x=x + 1, y=y)  # same path, new content: new run ids
    assert not set(before) & {p.run_id for p in expand({"scenario": base, "seeds": 3})}


def test_the_memory_estimate_counts_a_datasets_bytes(tmp_path):
    from rfast_sim.experiment import budget

    def est(rows: int) -> float:
        path = tmp_path / f"d{rows}.npz"
        x = np.zeros((rows, 50), dtype=np.float32)
        np.savez_compressed(path, x=x, y=np.zeros(rows, dtype=np.int8))
        return budget.estimate(_scenario({"file": str(path)}), dim=100).parts["problem data"]

    small, large = est(1_000), est(100_000)
    assert small == 4 * 1_000 * 51 * 8  # float64, held about 4 times over while prepared
    assert large == 100 * small
    mnist = _scenario({"source": "mnist1d", "mnist1d": {"samples": 2000}})
    assert budget.data_bytes(mnist) == 4 * 2000 * 41 * 8
    assert budget.data_bytes(_scenario({"source": "digits"})) == 4 * 1797 * 65 * 8
    assert budget.data_bytes(rfast_sim.parse_scenario({})) == 0  # built-in kinds: their own


def test_a_dataset_too_large_for_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rfast_sim.cli import app
    from rfast_sim.maths.problems import datasets

    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((20_000, 40)), y=np.zeros(20_000))  # 6.6 MB as float64
    sc = _scenario({"file": str(path)})

    def never(*args, **kwargs):
        raise AssertionError("the data were read")

    monkeypatch.setattr(datasets, "_read_file", never)
    with pytest.raises(rfast_sim.ScenarioError,
                       match=r"memory: problem data \(.*big.npz\) need about 26.2 MB .*"
                             r"over the limit of 10 MB; use a smaller file"):
        rfast_sim.run(sc, max_memory=1e7)
    result = CliRunner().invoke(app, ["validate", "--set", "problem.mnist1d.samples=1000000",
                                      "--set", "problem.source=mnist1d", "--set",
                                      "problem.file=null", "--max-memory", "100MB",
                                      str(_yaml(tmp_path, sc))])
    assert result.exit_code == 2
    assert "problem.mnist1d.samples" in result.stderr
    assert "Traceback" not in result.output


def _yaml(folder: Path, sc: rfast_sim.Scenario) -> Path:
    import yaml

    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(rfast_sim.scenario.loading.scenario_to_dict(sc)))
    return path
