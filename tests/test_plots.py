"""Figures show every value of their frame (or name in the title what they fix), read back
from the Axes' own line data; and they appear in a real Jupyter kernel."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from rfast_sim.plotting import plot_metric, plot_run, run_figure, sweep_figure
from rfast_sim.scenario import ScenarioError

KEYS = ["timing.stragglers.slowdown", "nodes", "timing.drop_prob"]


def _summary() -> pd.DataFrame:
    """A sweep summary where every key changes the value: no two rows share a speed-up."""
    rows = []
    for slow, nodes, drop, alg in itertools.product([1, 2, 5], [8, 16], [0.0, 0.3],
                                                    ["rfast", "allreduce_sgd"]):
        value = slow + nodes / 100 + drop / 10 + (0.001 if alg == "rfast" else 0.0)
        rows.append({"timing.stragglers.slowdown": slow, "nodes": nodes,
                     "timing.drop_prob": drop, "algorithm": alg, "speedup": value,
                     "speedup_ci_low": value - 1e-4, "speedup_ci_high": value + 1e-4})
    summary = pd.DataFrame(rows)
    summary.attrs["keys"] = KEYS
    return summary


def _drawn(fig) -> list[tuple[float, float, str, str]]:
    """Every (x, y, line label, panel title) of the figure's data lines."""
    points = []
    for ax in fig.axes:
        for container in ax.containers:  # errorbar: (data line, caps, bars)
            line = container.lines[0]
            label = container.get_label()
            points += [(float(x), float(y), label, ax.get_title())
                       for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    return points


def _assert_all_drawn(summary: pd.DataFrame, fig, x: str) -> None:
    drawn = {(x_, round(y, 6)) for x_, y, _, _ in _drawn(fig)}
    for r in summary.to_dict("records"):
        assert (float(r[x]), round(r["speedup"], 6)) in drawn, r


def test_sweep_plot_draws_every_combination_of_the_other_keys():
    summary = _summary()
    fig = sweep_figure(summary, x="timing.stragglers.slowdown", y="speedup")
    _assert_all_drawn(summary, fig, "timing.stragglers.slowdown")
    labels = {label for _, _, label, _ in _drawn(fig)}
    assert len(labels) == 2 * 2 * 2  # algorithm x nodes x drop_prob
    assert all("nodes=" in label and "timing.drop_prob=" in label for label in labels)
    plt.close(fig)


def test_sweep_plot_where_fixes_a_key_and_the_title_says_so():
    summary = _summary()
    fig = sweep_figure(summary, x="timing.stragglers.slowdown", y="speedup",
                       where={"nodes": 16})
    assert "nodes=16" in fig._suptitle.get_text()
    _assert_all_drawn(summary[summary.nodes == 16], fig, "timing.stragglers.slowdown")
    assert len(_drawn(fig)) == len(summary[summary.nodes == 16])
    plt.close(fig)


def test_sweep_plot_facets_by_col_and_row():
    summary = _summary()
    fig = sweep_figure(summary, x="timing.stragglers.slowdown", y="speedup",
                       col="nodes", row="timing.drop_prob")
    assert len(fig.axes) == 4
    _assert_all_drawn(summary, fig, "timing.stragglers.slowdown")
    for _, y, _, title in _drawn(fig):  # each point sits in the panel of its own values
        row = summary[np.isclose(summary.speedup, y)].iloc[0]
        assert f"nodes={row.nodes}" in title
        assert f"timing.drop_prob={row['timing.drop_prob']:g}" in title
    plt.close(fig)


def test_sweep_plot_names_a_key_with_one_value_and_a_zip_partner_of_x():
    summary = _summary()
    summary = summary[summary.nodes == 8].copy()
    summary["problem.batch_size"] = summary["timing.stragglers.slowdown"] * 16  # zipped with x
    summary.attrs["keys"] = [*KEYS, "problem.batch_size"]
    fig = sweep_figure(summary, x="timing.stragglers.slowdown", y="speedup")
    title = fig._suptitle.get_text()
    assert "nodes=8" in title
    assert "problem.batch_size varies with timing.stragglers.slowdown" in title
    _assert_all_drawn(summary, fig, "timing.stragglers.slowdown")
    plt.close(fig)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"where": {"nodez": 8}}, "--where nodez: not a swept key"),
    ({"where": {"nodes": 7}}, "--where nodes=7: no such value (values: 8, 16)"),
    ({"col": "seed"}, "--col: 'seed' is not a swept key"),
    ({"col": "nodes", "row": "nodes"}, "give each a different key"),
])
def test_sweep_plot_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep_figure(_summary(), x="timing.stragglers.slowdown", y="speedup", **kwargs)


def test_sweep_plot_refuses_to_mix_points_it_cannot_tell_apart():
    summary = _summary()
    summary.attrs["keys"] = ["timing.stragglers.slowdown"]  # nodes and drop_prob unnamed
    with pytest.raises(ScenarioError, match=r"several rows at one timing\.stragglers\.slowdown"):
        sweep_figure(summary, x="timing.stragglers.slowdown", y="speedup")


def _metrics(shared_updates: bool = False) -> pd.DataFrame:
    """Two step sizes x five seeds; each seed its own values and (unless shared) its own
    update counts at the same sample times."""
    rows = []
    for step, seed, t in itertools.product([0.5, 1.0], range(5), np.linspace(0, 10, 11)):
        rate = 10 if shared_updates else 10 + 3 * seed
        rows.append({"algorithm": "rfast", "seed": seed, "step_size": step, "time": t,
                     "updates": rate * t, "loss": 5 - t / 4 + seed * step / 7})
    return pd.DataFrame(rows)


def _line(ax, label: str):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line.get_xdata(), line.get_ydata()


@pytest.mark.parametrize("x", ["time", "updates"])
def test_metric_plot_draws_the_median_over_seeds_of_each_step_with_its_band(x):
    df = _metrics()
    ax = plot_metric(df, "loss", x=x)
    assert len(ax.get_lines()) == 2  # one per step size, none per seed, none mixed
    assert len(ax.collections) == 2  # an interquartile band each
    for step in (0.5, 1.0):
        xs, ys = _line(ax, f"rfast (step {step:g})")
        runs = [g.sort_values(x) for _, g in df[df.step_size == step].groupby("seed")]
        seeds = np.stack([np.interp(xs, r[x], r["loss"]) for r in runs])
        np.testing.assert_allclose(ys, np.median(seeds, axis=0))
        # every seed is drawn over the whole x range the median covers
        assert xs[-1] == pytest.approx(min(r[x].max() for r in runs))
    plt.close(ax.figure)


def test_metric_plot_of_one_step_is_labelled_by_the_algorithm_alone():
    df = _metrics(shared_updates=True)
    ax = plot_metric(df[df.step_size == 1.0], "loss", x="updates")
    assert [ln.get_label() for ln in ax.get_lines()] == ["rfast"]
    plt.close(ax.figure)


def test_a_timing_only_run_draws_its_counters_without_a_step():
    df = _metrics().drop(columns="loss").assign(step_size=np.nan)
    fig = run_figure(df, "time")
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["rfast"]
    plt.close(fig)


def test_run_files_are_drawn_by_the_drawing_function_and_leave_no_pyplot_figure(tmp_path):
    df = _metrics()
    df["opt_gap"] = df["loss"] - 1
    before = plt.get_fignums()
    files = plot_run(df, tmp_path)
    assert [f.name for f in files] == ["metrics_vs_time.png", "metrics_vs_updates.png"]
    assert plt.get_fignums() == before
    fig = run_figure(df, "updates")
    assert [ax.get_ylabel().split(" ")[0] for ax in fig.axes] == ["opt_gap", "loss"]
    plt.close(fig)


CELLS = [
    "import matplotlib.pyplot as plt\nimport pandas as pd\nfrom rfast_sim import plotting",
    "fig, ax = plt.subplots()\nax.plot([1, 2], [3, 4])\nplt.show()",
    "df = pd.DataFrame({'algorithm': 'a', 'seed': [0, 0, 1, 1], 'step_size': 1.0,\n"
    "                   'time': [0.0, 1.0, 0.0, 1.0], 'loss': [2.0, 1.0, 2.5, 1.5]})\n"
    "plotting.plot_metric(df, 'loss')\nplt.show()",
]


def test_figures_appear_in_a_real_kernel_after_importing_the_plotting_module():
    """`from rfast_sim import plotting` must not switch the session's backend away from
    Jupyter's inline one: every cell that draws leaves an image."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells[1:]:
        assert any("image/png" in out.get("data", {}) for out in cell.outputs), cell.source
