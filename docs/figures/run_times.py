"""Measure how long the things a newcomer runs take here; write docs/_static/run_times.csv,
which Getting started shows (and each notebook page quotes its own row).

    python docs/figures/run_times.py                  # everything, about half an hour on 2 cores
    python docs/figures/run_times.py --only quickstart notebooks   # a part (other rows kept)

Every command runs in a fresh process with an empty JAX compilation cache, as on a first run.
Measured directly: the quickstart, each notebook (executed top to bottom by nbclient, in its
own kernel), and the docs build (with an empty notebook cache, so it runs every notebook).
Extrapolated, because the longest take 7 to 20 minutes here: a full ``rfast-sim reproduce``
and the shipped sweeps (checked once: a full reproduce took 411 s where the line gave 412 s).
Their cost is the replay of events, proportional to the simulated time, plus a fixed part
(set-up, compiling), so each is run twice with every scenario's ``run.until`` cut to two
fractions f1 < f2, and the line through the two wall times is read at f = 1. The sweep of 360
points runs only 6 of its 72 seed groups (one per shape: nodes x batch size; the other keys do
not change the work much), and its time is scaled by 72 / 6, so its fixed part (compiling
included) is counted 12 times: an overestimate. Each row records the load average of this
machine (other jobs share it) before and after, and its core count.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "run_times.csv"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PY = sys.executable
# 0.05 and 0.1 gave implausibly short totals (64 s for a reproduce that takes 411 s): at such
# fractions the fixed part and the load's noise swamp the slope, so larger ones
REPRODUCE_FRACTIONS = (0.2, 0.4)
SWEEP_FRACTIONS = (0.2, 0.4)
STRAGGLER_GROUPS = {"timing.stragglers.slowdown": [5], "timing.drop_prob": [0.1]}  # 6 of 72


def timed(cmd: list[str], cwd: Path = ROOT) -> float:
    """Wall seconds of `cmd` in a fresh process (its own, empty JAX cache); it must succeed."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def _cli(*args: str) -> list[str]:
    return [PY, "-m", "rfast_sim.cli", *args]


def _notebook(path: Path) -> list[str]:
    code = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], as_version=4); "
            "nbclient.NotebookClient(nb, timeout=1800, kernel_name='python3', "
            "resources={'metadata': {'path': sys.argv[2]}}).execute()")
    return [PY, "-c", code, str(path), str(path.parent)]


def _scaled_scenarios(folder: Path, names: list[Path], fraction: float) -> None:
    """Copies of the scenario files `names` in `folder`, `run.until` times `fraction`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in names:
        data = yaml.safe_load(path.read_text())
        data["run"]["until"] = float(data["run"]["until"]) * fraction
        (folder / path.name).write_text(yaml.safe_dump(data, sort_keys=False))


def extrapolate(times: list[float], fractions: tuple[float, float]) -> float:
    """The wall time at f = 1 of the line through (fraction, time)."""
    (f1, f2), (t1, t2) = fractions, times
    return t1 + (t2 - t1) * (1.0 - f1) / (f2 - f1)


def reproduce_times(tmp: Path) -> list[float]:
    """`rfast-sim reproduce` on the paper scenarios cut to each fraction of their time."""
    times = []
    papers = sorted((ROOT / "scenarios" / "paper").glob("*.yaml"))
    for f in REPRODUCE_FRACTIONS:
        folder = tmp / f"paper-{f:g}"
        _scaled_scenarios(folder, papers, f)
        script = ("import sys; from pathlib import Path; from rfast_sim.paper import reproduce; "
                  "reproduce(sys.argv[1], scenario_dir=Path(sys.argv[2]))")
        times.append(timed([PY, "-c", script, str(tmp / f"out-{f:g}"), str(folder)]))
    return times


def sweep_times(tmp: Path, sweep: str, fractions: tuple[float, float],
                grid: dict[str, list[Any]] | None = None) -> list[float]:
    """`rfast-sim sweep --workers 2` of a shipped sweep (its grid narrowed by `grid`), its base
    scenario cut to each fraction of its time."""
    spec = yaml.safe_load((ROOT / "scenarios" / sweep).read_text())
    spec["grid"] = {**spec.get("grid", {}), **(grid or {})}
    times = []
    for f in fractions:
        folder = tmp / f"{Path(sweep).stem}-{f:g}"
        _scaled_scenarios(folder, [ROOT / "scenarios" / spec["base"]], f)
        (folder / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        times.append(timed(_cli("sweep", str(folder / "sweep.yaml"), "--out",
                                str(folder / "out"), "--workers", "2")))
    return times


def _row(what: str, command: str, seconds: float, how: str,
         load: tuple[float, float]) -> dict[str, Any]:
    return {"what": what, "command": command, "seconds": round(seconds, 1), "how": how,
            "load_before": round(load[0], 1), "load_after": round(load[1], 1),
            "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}


def measure(part: str, tmp: Path) -> list[dict[str, Any]]:
    """The rows of one part: quickstart, notebooks, docs, reproduce or sweeps."""
    jobs: list[tuple[str, str, Callable[[], float], str]] = []
    if part == "quickstart":
        jobs.append(("the quickstart", "rfast-sim run quickstart", lambda: timed(
            _cli("run", "quickstart", "--out", str(tmp / "quickstart"))), "measured"))
    if part == "notebooks":
        jobs += [(f"notebook {p.stem}", f"execute notebooks/{p.name}",
                  lambda p=p: timed(_notebook(p)), "measured") for p in NOTEBOOKS]
    if part == "docs":
        jobs.append(("the docs build (every notebook run)", "sphinx-build -W docs docs/_build/html",
                     lambda: timed([PY, "-m", "sphinx", "-q", "-b", "html", "-D",
                                    f"nb_execution_cache_path={tmp / 'nbcache'}",
                                    "docs", str(tmp / "html")]), "measured, empty notebook cache"))
    if part == "reproduce":
        f1, f2 = REPRODUCE_FRACTIONS
        jobs.append(("the paper's claims, in full", "rfast-sim reproduce", lambda: extrapolate(
            reproduce_times(tmp), REPRODUCE_FRACTIONS),
            f"extrapolated from runs at {f1:g} and {f2:g} of each scenario's simulated time"))
    if part == "sweeps":
        f1, f2 = SWEEP_FRACTIONS
        jobs.append(("sweep_when_async_pays (12 points x 3 seeds)",
                     "rfast-sim sweep scenarios/sweep_when_async_pays.yaml --workers 2",
                     lambda: extrapolate(sweep_times(tmp, "sweep_when_async_pays.yaml",
                                                     SWEEP_FRACTIONS), SWEEP_FRACTIONS),
                     f"extrapolated from runs at {f1:g} and {f2:g} of the simulated time"))
        jobs.append(("sweep_stragglers (72 points x 5 seeds: 360)",
                     "rfast-sim sweep scenarios/sweep_stragglers.yaml --workers 2",
                     lambda: 12 * extrapolate(sweep_times(
                         tmp, "sweep_stragglers.yaml", SWEEP_FRACTIONS, STRAGGLER_GROUPS),
                         SWEEP_FRACTIONS),
                     f"extrapolated: 6 of 72 seed groups at {f1:g} and {f2:g} of the "
                     "simulated time, x 12"))
    rows = []
    for what, command, run, how in jobs:
        before = os.getloadavg()[0]
        seconds = run()
        rows.append(_row(what, command, seconds, how, (before, os.getloadavg()[0])))
        print(f"{what}: {seconds:.0f} s ({how})", flush=True)
    return rows


PARTS = ("quickstart", "notebooks", "docs", "reproduce", "sweeps")


def save(new: pd.DataFrame) -> pd.DataFrame:
    """Replace `new`'s rows in the CSV (the others kept, in their order)."""
    old = pd.read_csv(OUT) if OUT.exists() else pd.DataFrame(columns=new.columns)
    order = {what: k for k, what in enumerate([*old["what"], *new["what"]])}
    table = pd.concat([old[~old["what"].isin(new["what"])], new], ignore_index=True)
    table = table.sort_values("what", key=lambda c: c.map(order), kind="stable")
    table.astype({"cores": int}).to_csv(OUT, index=False)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.only:  # saved part by part: a failure keeps what was measured
            table = save(pd.DataFrame(measure(part, Path(tmp))))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
