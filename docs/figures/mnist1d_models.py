"""Regenerate docs/_static/mnist1d_models.png and its summaries: a 1-D CNN against an MLP on
MNIST-1D over 4 A100s and 4 T4s, R-FAST against Ring-AllReduce SGD and D-PSGD.

    python docs/figures/mnist1d_models.py            # runs both models (about 20 minutes)
    python docs/figures/mnist1d_models.py --replot   # redraws from the shipped summaries

The scenario is ``scenarios/mnist1d_models.yaml`` (the CNN); the MLP is the same scenario with
``problem.model`` swapped. Written beside the figure: ``mnist1d_models.csv`` (the comparison
table of each model, a ``model`` column added) and ``mnist1d_models_curves.csv`` (median test
accuracy over seeds per sample time). ``docs/results/mnist1d_models.md`` quotes them, and a
slow test (``tests/test_shipped_results.py``) runs them again and compares.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import rfast_sim
from rfast_sim.experiment.plan import model_dim

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "mnist1d_models.yaml"
OUT = ROOT / "docs" / "_static" / "mnist1d_models.png"
SUMMARY = OUT.with_suffix(".csv")
CURVES = OUT.with_name("mnist1d_models_curves.csv")
MODELS = {  # the label and the overrides of each model
    "CNN": [],
    "MLP": ["problem.model={kind: mlp, hidden: [100, 100]}", "problem.input_shape=null"],
}
PAPER = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94}  # Greydanus (2020), Table 1


def run_models(seeds: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both models' comparison tables and median test-accuracy curves."""
    tables, curves = [], []
    for label, overrides in MODELS.items():
        extra = [f"seeds={seeds}"] if seeds is not None else []
        sc = rfast_sim.load_scenario(SCENARIO, [*overrides, *extra])
        res = rfast_sim.run(sc)
        table = res.comparison().reset_index(drop=True)
        tables.append(table.assign(model=label, parameters=model_dim(sc)))
        m = res.metrics
        curve = (m.groupby(["algorithm", "time"], as_index=False)["test_accuracy"].median()
                 .assign(model=label))
        curves.append(curve)
    return pd.concat(tables, ignore_index=True), pd.concat(curves, ignore_index=True)


def figure(summary: pd.DataFrame, curves: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    styles = {"CNN": "-", "MLP": "--"}
    colours = {"rfast": "C0", "allreduce_sgd": "C1", "dpsgd": "C2"}
    for (model, alg), g in curves.groupby(["model", "algorithm"]):
        axes[0].plot(g["time"] * 1e3, g["test_accuracy"], styles[model],
                     color=colours.get(alg), label=f"{model}, {alg}")
    for name, acc in PAPER.items():
        axes[0].axhline(acc, color="grey", lw=0.6, ls=":")
        axes[0].text(0, acc, f" paper: {name}", fontsize=7, va="bottom", color="grey")
    axes[0].set(xlabel="simulated time (ms)", ylabel="test accuracy (median of seeds)",
                ylim=(0, 1))
    axes[0].legend(fontsize=7, loc="lower right")
    rows = summary.sort_values(["model", "algorithm"]).reset_index(drop=True)
    t, lo, hi = (rows[c] * 1e3 for c in ("time_to_target", "time_to_target_ci_low",
                                          "time_to_target_ci_high"))
    finite = t.where(t < float("inf"))
    axes[1].barh(range(len(rows)), finite, xerr=[finite - lo.where(lo < float("inf")),
                                                 hi.where(hi < float("inf")) - finite],
                 color=[colours.get(a) for a in rows["algorithm"]])
    axes[1].set_yticks(range(len(rows)),
                       [f"{m}, {a} ({r})" for m, a, r in zip(rows["model"], rows["algorithm"],
                                                             rows["reached"], strict=True)])
    target = SCENARIO.read_text().split("target: {test_accuracy: ")[1].split("}")[0]
    axes[1].set(xlabel=f"time to test accuracy {target} (ms, median, 95% CI)")
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replot", action="store_true", help="redraw the shipped summaries")
    args = parser.parse_args()
    if args.replot:
        summary, curves = pd.read_csv(SUMMARY), pd.read_csv(CURVES)
    else:
        summary, curves = run_models()
        summary.to_csv(SUMMARY, index=False)
        curves.to_csv(CURVES, index=False)
    figure(summary, curves).savefig(OUT, dpi=120)
    print(f"written to {OUT.relative_to(ROOT)}, {SUMMARY.name} and {CURVES.name}")


if __name__ == "__main__":
    main()
