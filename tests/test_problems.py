"""The problem interface: built-ins unchanged, registered kinds, pytree models, compile sharing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rfast_sim
import rfast_sim.scenario.loading
from rfast_sim.maths.problems import ProblemOps, make_problem, problem_data

DATA = Path(__file__).parent / "data"


def _builtin_cases():
    spec = importlib.util.spec_from_file_location("make_builtin_values",
                                                  DATA / "make_builtin_values.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["least_squares", "least_squares_exact", "logistic", "mlp"])
def test_builtin_results_bit_for_bit_as_before_the_interface(name):
    """builtin_values.npz holds these runs' metrics from the code before the problem interface
    (tests/data/make_builtin_values.py); the re-expressed kinds give the very same bits."""
    cases = _builtin_cases()
    before = np.load(DATA / "builtin_values.npz")[name]
    now = rfast_sim.run(cases.scenario(cases.CASES[name])).metrics[cases.COLUMNS].to_numpy()
    # dist_opt measures against the optimum numpy's LAPACK solves for, whose kernels OpenBLAS
    # picks by CPU (an ulp apart on AVX-512 machines): that column to 4 ulp, the rest bit for bit
    dist = cases.COLUMNS.index("dist_opt")
    np.testing.assert_array_equal(np.delete(now, dist, axis=1), np.delete(before, dist, axis=1))
    np.testing.assert_allclose(now[:, dist], before[:, dist], rtol=4 * np.finfo(float).eps)


# --- a problem kind registered from this test module -------------------------------------------


def _quadratic_loss(x, feats, targets, mask):
    r = feats @ x - targets
    return 0.5 * jnp.mean(r * r)


def quadratic(spec, n, seed, dtype="float64"):
    """Heterogeneous least squares with its own generator (a registered kind)."""
    d = int(spec.options.get("dim", 3))
    rng = np.random.default_rng(spec.data_seed)
    feats = rng.standard_normal((n, 12, d))
    targets = feats @ rng.standard_normal(d) + rng.standard_normal((n, 12))
    ops = ProblemOps("quadratic", d, spec.batch_size, classify=False, key=("quadratic", d),
                     data_loss=_quadratic_loss)
    return ops, problem_data(feats, targets, np.zeros(d), spec.l2, dtype=dtype)


rfast_sim.register_problem("quadratic", quadratic, "a test's own least squares")

TWO_LAYER = '''
import jax, jax.numpy as jnp

def two_layer(outputs, hidden=5):
    def init(key, example):
        k1, k2 = jax.random.split(key)
        f = example.reshape(example.shape[0], -1).shape[1]
        return {"l1": {"w": jax.random.normal(k1, (f, hidden)) / f, "b": jnp.zeros(hidden)},
                "l2": {"w": jax.random.normal(k2, (hidden, outputs)), "b": jnp.ones(outputs)}}
    def apply(params, inputs):
        z = jnp.tanh(inputs.reshape(inputs.shape[0], -1) @ params["l1"]["w"] + params["l1"]["b"])
        return z @ params["l2"]["w"] + params["l2"]["b"]
    return init, apply
'''


def _write_dataset(folder: Path, n: int = 120, classes: int = 3, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.standard_normal((n, 4)) + y[:, None]
    np.savez(folder / "data.npz", x=x, y=y)


def _python_scenario(folder: Path, **extra) -> rfast_sim.Scenario:
    import yaml

    (folder / "my_models.py").write_text(TWO_LAYER)
    _write_dataset(folder)
    data = {"name": "own", "nodes": 4, "seeds": 2,
            "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
            "problem": {"kind": "dataset", "file": "data.npz", "test_fraction": 0.25,
                        "model": {"kind": "python", "entry": "my_models:two_layer",
                                  "options": {"hidden": 5}},
                        "partition": {"kind": "dirichlet", "alpha": 0.5}, "batch_size": 8},
            "algorithm": {"name": "rfast", "step_size": [0.1, 0.2]},
            "run": {"until": 12.0, "sample_every": 2.0}, **extra}
    (folder / "own.yaml").write_text(yaml.safe_dump(data))
    return rfast_sim.load_scenario(folder / "own.yaml")


def _quadratic_scenario() -> rfast_sim.Scenario:
    return rfast_sim.parse_scenario({
        "nodes": 4, "seeds": 2, "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
        "problem": {"kind": "quadratic", "options": {"dim": 3}, "batch_size": 4},
        "algorithm": {"name": "rfast", "step_size": [0.05, 0.1]},
        "run": {"until": 12.0, "sample_every": 2.0}})


@pytest.mark.parametrize("which", ["registered", "python"])
def test_replay_and_online_agree_on_registered_and_python_problems(which, tmp_path):
    sc = _quadratic_scenario() if which == "registered" else _python_scenario(tmp_path)
    replay = rfast_sim.run(sc).metrics
    online = rfast_sim.run(sc, mode="online").metrics
    cols = ["loss", "grad_norm", "consensus", "accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(online[cols].to_numpy(), replay[cols].to_numpy(), rtol=1e-9,
                               atol=1e-12)
    assert np.isfinite(replay["loss"]).all()
    if which == "python":
        assert replay["test_accuracy"].notna().all()


def _compiles(caplog, fn: str) -> int:
    return sum(f"Finished XLA compilation of {fn}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("which", ["registered", "python"])
def test_seeds_and_step_sizes_compile_once(which, tmp_path, caplog):
    import logging

    from rfast_sim.experiment.plan import prepare
    from rfast_sim.maths.replay import compiled_replay, run_replay

    sc = _quadratic_scenario() if which == "registered" else _python_scenario(tmp_path)
    compiled_replay.cache_clear()
    with jax.log_compiles(), caplog.at_level(logging.WARNING, logger="jax"):
        for seed in (0, 1):
            for step in (0.05, 0.2):  # a problem rebuilt per seed shares the compiled code
                run_replay([prepare(sc, "rfast", seed)], [step])
    assert _compiles(caplog, "jit(replay_fn)") <= 2  # the two seeds' traces: <= 2 shapes
    assert compiled_replay.cache_info().misses == 1


@pytest.mark.parametrize("which", ["registered", "python"])
def test_a_sweep_with_two_workers_runs_them(which, tmp_path):
    from rfast_sim.sweeps import run_sweep

    sc = _quadratic_scenario() if which == "registered" else _python_scenario(tmp_path)
    base = rfast_sim.scenario.loading.scenario_to_dict(sc)
    spec = {"scenario": base, "grid": {"algorithm.step_size": [0.05, 0.1]}, "seeds": 2}
    frame = run_sweep(spec, tmp_path / "sweep", workers=2)
    assert frame["run_id"].nunique() == 4
    assert np.isfinite(frame["loss"]).all()
    direct = rfast_sim.run(sc.model_copy(update={"algorithm": sc.algorithm.model_copy(
        update={"step_size": 0.05})})).metrics
    mine = frame[frame["algorithm.step_size"] == 0.05].sort_values(["seed", "time"])
    np.testing.assert_allclose(mine["loss"].to_numpy(),
                               direct.sort_values(["seed", "time"])["loss"].to_numpy(),
                               rtol=1e-12)


@pytest.mark.long
def test_a_pytree_model_has_the_gradients_of_the_same_model_on_a_flat_vector(tmp_path):
    sc = _python_scenario(tmp_path, seeds=1)
    sc = sc.model_copy(update={"problem": sc.problem.model_copy(update={"batch_size": None})})
    ops, data = make_problem(sc.problem, sc.nodes, sc.seed)
    f, h, c = 4, 5, 3
    assert ops.dim == f * h + h + h * c + c

    def flat_loss(x, feats, targets):  # ravel order: l1 (b, w), l2 (b, w); keys sorted
        b1, w1 = x[:h], x[h:h + f * h].reshape(f, h)
        o = h + f * h
        b2, w2 = x[o:o + c], x[o + c:].reshape(h, c)
        logits = jnp.tanh(feats @ w1 + b1) @ w2 + b2
        picked = jnp.take_along_axis(logits, targets.astype(int)[:, None], 1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(logits, 1) - picked) + 0.5 * sc.problem.l2 * x @ x

    x = data.x0 + 0.01 * jnp.arange(ops.dim)
    for i in range(sc.nodes):
        k = int(data.counts[i])
        want = jax.grad(flat_loss)(x, data.feats[i, :k], data.targets[i, :k])
        got = ops.local_grad(x, data, jnp.int32(i), jax.random.PRNGKey(0))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    res = rfast_sim.run(sc.model_copy(update={"run": sc.run.model_copy(update={"until": 2.0})}))
    assert res.runs[0].message_bytes == ops.dim * 8


def test_rfast_list_names_the_problem_registries():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "rfast_sim.cli", "list"], capture_output=True,
                         text=True, timeout=120).stdout
    for name in ("dataset", "least_squares", "cnn", "python", "cross_entropy", "mse",
                 "dirichlet", "by_key", "shards"):
        assert name in out, name
