"""A real install works like the checkout: the wheel, in a fresh venv, from an empty folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _install_wheel(tmp_path: Path) -> tuple[Path, str]:
    """Build the wheel and install it into a fresh venv; return (empty folder, CLI path)."""
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
          str(ROOT)], tmp_path)
    (wheel,) = dist.glob("rfast_sim-*.whl")
    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--quiet",
          str(wheel)], tmp_path)
    # the dependencies come from this environment (read-only, after the wheel on sys.path), so
    # the test needs no download; the package itself is the wheel's copy
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   tmp_path).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([str(py), "-c", "import rfast_sim.cli as c; print(c.__file__)"], empty).stdout
    assert str(venv) in where, "the wheel's copy must be the one imported"
    return empty, str(venv / "bin" / "rfast-sim")


@pytest.mark.long
def test_wheel_runs_shipped_scenarios_by_name_from_an_empty_folder(tmp_path):
    empty, cli = _install_wheel(tmp_path)
    listing = _run([cli, "list"], empty).stdout
    assert "quickstart" in listing
    assert "paper/mlp_straggler" in listing
    _run([cli, "run", "quickstart", "--set", "run.until=5", "--set", "seeds=1", "--out", "q"],
         empty)
    assert (empty / "q" / "metrics.parquet").exists()
    # what reproduce reads, a scenario whose trace files must ship with the wheel, and a
    # shipped scenario written out to edit, then checked as a file of one's own
    (empty / "quick.yaml").write_text(_run([cli, "show", "quickstart"], empty).stdout)
    names = ["paper/mlp_homogeneous", "paper/linear_convergence", "faults_trace_cluster",
             "quick.yaml"]
    checked = _run([cli, "validate", *names], empty).stdout.splitlines()
    assert [line.split(": ok (")[0] for line in checked] == names
    assert _run([cli, "--version"], empty).stdout.startswith("rfast-sim ")
    # a shipped sweep by name, and a sweep of one's own on a shipped base scenario
    assert "36 points" in _run([cli, "sweep", "sweep_when_async_pays", "--dry-run"],
                               empty).stdout
    (empty / "mine.yaml").write_text("base: paper/mlp_straggler\ngrid: {nodes: [8, 16]}\n")
    listed = _run([cli, "sweep", "mine.yaml", "--dry-run"], empty).stdout
    assert "2 points" in listed
    assert "no:" not in listed


@pytest.mark.slow
def test_wheel_reproduces_the_paper_claims_from_an_empty_folder(tmp_path):
    empty, cli = _install_wheel(tmp_path)
    _run([cli, "reproduce", "--set", "run.until=2", "--set", "seeds=1", "--out", "paper"],
         empty)
    assert (empty / "paper" / "claims.md").exists()
