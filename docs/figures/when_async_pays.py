"""Regenerate docs/_static/when_async_pays.png, the README's and the docs' figure, and the
sweep's summary beside it (when_async_pays.csv), which notebook 02 reads.

    python docs/figures/when_async_pays.py                 # runs the sweep (a few minutes)
    python docs/figures/when_async_pays.py --from runs/async_pays   # replots a finished sweep

The sweep is ``scenarios/sweep_when_async_pays.yaml`` (12 points x 3 seeds); notebook 02
reads its summary and asserts what the figure shows, and a slow test
(``tests/test_shipped_results.py``) runs the sweep again and compares it with the summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt

import rfast_sim
from rfast_sim.plotting import plot_async_pays
from rfast_sim.sweeps import summarize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "when_async_pays.png"
SUMMARY = OUT.with_suffix(".csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="folder", type=Path, default=None,
                        help="a finished sweep's --out folder (default: run the sweep)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = args.folder or ROOT / "runs" / "async_pays"
    if args.folder is None:
        rfast_sim.sweep(ROOT / "scenarios" / "sweep_when_async_pays.yaml", folder,
                        workers=args.workers, resume=True)
    summary = summarize(folder)
    summary.to_csv(SUMMARY, index=False)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    plot_async_pays(summary, ax=ax)
    fig.tight_layout()
    fig.savefig(OUT, dpi=120)
    print(f"written to {OUT.relative_to(ROOT)} and {SUMMARY.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
