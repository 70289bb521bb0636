"""Bad problem input exits 2 with one line naming the file / field / entry, before any run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

rng = np.random.default_rng(0)
X, Y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)


def _files(folder: Path) -> None:
    np.savez(folder / "ok.npz", x=X, y=Y)
    np.savez(folder / "short.npz", x=X, y=Y[:30])
    np.savez(folder / "nan.npz", x=np.where(np.arange(40)[:, None] == 7, np.nan, X), y=Y)
    np.savez(folder / "real.npz", x=X, y=Y + 0.5)
    np.savez(folder / "keys.npz", x=X, y=Y, node=np.arange(40) % 5)
    np.savez(folder / "gap.npz", x=X, y=Y, node=np.arange(40) % 2)
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": Y}).to_csv(folder / "t.csv", index=False)
    (folder / "wrong.py").write_text("def pair(outputs):\n    return 3\n")
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    (folder / "badshape.py").write_text(
        "import jax.numpy as jnp\n"
        "def pair(outputs):\n"
        "    return (lambda key, x: {'w': jnp.zeros((7, outputs))},\n"
        "            lambda p, x: x @ p['w'])\n")


CASES = [  # (problem keys, nodes, words the message must hold)
    ({"file": "missing.npz"}, 4, ["problem.file", "missing.npz", "no such file"]),
    ({"file": "ok.npz", "x_key": "features"}, 4, ["ok.npz", "no array 'features'", "x_key"]),
    ({"file": "t.csv", "label": "target"}, 4, ["t.csv", "no column 'target'", "label"]),
    ({"file": "short.npz"}, 4, ["short.npz", "40 samples but 30 labels"]),
    ({"file": "nan.npz"}, 4, ["nan.npz", "NaN or inf", "sample 7"]),
    ({"file": "real.npz"}, 4, ["real.npz", "integer class label", "mse"]),
    ({"file": "ok.npz", "model": {"kind": "python", "entry": "broken:pair"}}, 4,
     ["problem.model.entry", "cannot import 'broken'"]),
    ({"file": "ok.npz", "model": {"kind": "python", "entry": "nowhere:pair"}}, 4,
     ["problem.model.entry", "cannot import 'nowhere'"]),
    ({"file": "ok.npz", "model": {"kind": "python", "entry": "wrong:pair"}}, 4,
     ["problem.model.entry", "wrong:pair", "must return a pair"]),
    ({"file": "ok.npz", "model": {"kind": "python", "entry": "badshape:pair"}}, 4,
     ["problem.model", "badshape:pair", "apply failed", "[8, 4]"]),
    ({"file": "ok.npz", "model": {"kind": "cnn"}}, 4, ["problem.model (cnn)", "input_shape"]),
    ({"file": "ok.npz"}, 41, ["nodes", "41 nodes", "40 training samples"]),
    ({"file": "keys.npz", "partition": {"kind": "by_key"}}, 4,
     ["problem.partition.key", "node id 4", "out of range 0..3"]),
    ({"file": "gap.npz", "partition": {"kind": "by_key"}}, 4,
     ["problem.partition", "node 2 gets no training sample"]),
    ({"file": "ok.npz", "partition": {"kind": "dirichlet", "key": "x"}}, 4,
     ["partition", "key", "not a key of partition 'dirichlet'"]),
    ({"file": "ok.npz", "samples_per_node": 10}, 4,
     ["samples_per_node", "not a key of problem kind 'dataset'"]),
    ({"file": "ok.npz", "model": {"kind": "transformer"}}, 4, ["model.kind", "unknown model"]),
    ({"file": "ok.npz", "loss": "hinge"}, 4, ["problem.loss", "unknown loss"]),
    ({"source": "mnist"}, 4, ["problem.source", "mnist"]),
    ({"file": "ok.npz", "input_shape": [3, 3, 1]}, 4, ["problem.input_shape", "4 features"]),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    f = tmp_path_factory.mktemp("bad_problems")
    _files(f)
    return f


@pytest.mark.parametrize(("problem", "nodes", "words"), CASES,
                         ids=[str(i) for i in range(len(CASES))])
def test_bad_problem_input_exits_2_with_one_line(folder, problem, nodes, words, monkeypatch):
    # in-process (the CLI's own code, without an interpreter start per case); one case runs in a
    # real process below
    from typer.testing import CliRunner

    from rfast_sim.cli import app

    path = _scenario_file(folder, problem, nodes)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(folder / "out")])
    _check_refusal(result.exit_code, result.stderr, result.output, words)
    assert not (folder / "out").exists()


def test_a_bad_problem_input_exits_2_with_one_line_from_a_real_process(folder):
    problem, nodes, words = CASES[6]  # an import error raised inside the user's module
    path = _scenario_file(folder, problem, nodes)
    proc = subprocess.run([sys.executable, "-m", "rfast_sim.cli", "run", str(path),
                           "--out", str(folder / "out-process")], capture_output=True,
                          text=True, timeout=300, cwd=folder)
    _check_refusal(proc.returncode, proc.stderr, proc.stdout + proc.stderr, words)
    assert not (folder / "out-process").exists()


def _scenario_file(folder: Path, problem: dict, nodes: int) -> Path:
    path = folder / f"s{abs(hash(str(problem))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "bad", "nodes": nodes, "problem": {"kind": "dataset", **problem},
        "graphs": {"pull": {"kind": "ring"}, "push": {"kind": "ring"}},
        "algorithm": {"name": "rfast"}, "run": {"until": 2.0}}))
    return path


def _check_refusal(code: int, stderr: str, output: str, words: list[str]) -> None:
    err = " ".join(stderr.split())  # rich may wrap a long line
    assert code == 2, output
    assert "Traceback" not in output
    assert err.startswith("error:"), err
    assert len(stderr.strip().splitlines()) <= 3, stderr  # one (wrapped) line
    for w in words:
        assert w in err, (w, err)
