"""Regenerate docs/_static/paper_test_accuracy.png from a finished ``rfast-sim reproduce``.

    rfast-sim reproduce --out runs/paper          # 16 CPU-minutes
    python docs/figures/paper.py --from runs/paper

Test accuracy (held-out digits) against simulated time, each algorithm at the step size its
comparison picks, median over the seeds, one panel per MLP scenario of the paper's claims.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from rfast_sim.plotting import best_step_runs, plot_metric

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "paper_test_accuracy.png"
PANELS = {"mlp_homogeneous": "homogeneous devices", "mlp_straggler": "one 5x straggler",
          "mlp_packet_loss": "20% of packets lost", "mlp_heterogeneity": "label skew alpha 0.1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="folder", type=Path, default=ROOT / "runs" / "paper",
                        help="the --out folder of rfast-sim reproduce")
    folder = parser.parse_args().folder
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6), sharey=True)
    for ax, (name, title) in zip(axes, PANELS.items(), strict=True):
        run = folder / name
        target = yaml.safe_load((run / "scenario.yaml").read_text())["compare"]["target"]
        frame = best_step_runs(pd.read_parquet(run / "metrics.parquet"), target)
        plot_metric(frame, "test_accuracy", ax=ax)
        ax.axhline(target.get("test_accuracy", 0.9), color="k", lw=0.8, ls=":")
        ax.set_title(title)
        ax.set_ylim(0.0, 1.0)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
