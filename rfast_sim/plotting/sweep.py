"""A sweep's summary as a figure that shows every swept combination or names what it fixes."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from rfast_sim.plotting.curves import new_figure
from rfast_sim.scenario import ScenarioError


def parse_where(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (values read as YAML, as ``--set`` reads them) as a dict."""
    where = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--where {item}: expected KEY=VALUE, e.g. --where nodes=16")
        key, raw = item.split("=", 1)
        try:
            where[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            where[key.strip()] = raw
    return where


def _same(column: pd.Series, value: Any) -> pd.Series:
    """Rows of `column` equal to `value` (numbers compared as numbers, else as text)."""
    numeric = pd.to_numeric(column, errors="coerce")
    if isinstance(value, int | float) and not isinstance(value, bool) and numeric.notna().all():
        return pd.Series(np.isclose(numeric.to_numpy(dtype=float), float(value)),
                         index=column.index)
    return column.astype(str) == str(value)


def _fix(summary: pd.DataFrame, dims: list[str], where: Mapping[str, Any]) -> pd.DataFrame:
    for key, value in where.items():
        if key not in dims:
            raise ScenarioError(f"--where {key}: not a swept key (swept: {', '.join(dims)})")
        keep = _same(summary[key], value)
        if not keep.any():
            values = ", ".join(map(str, dict.fromkeys(summary[key])))
            raise ScenarioError(f"--where {key}={value}: no such value (values: {values})")
        summary = summary[keep]
        if summary.empty:  # each value exists, but not together (zipped keys)
            fixed = ", ".join(f"{k}={v}" for k, v in where.items())
            raise ScenarioError(f"--where {fixed}: no swept point has all of these values")
    return summary


def _check(summary: pd.DataFrame, dims: list[str], x: str, y: str,
           facets: dict[str, str | None]) -> None:
    if x not in summary:
        raise ScenarioError(f"--x: {x!r} is not a swept key (swept: {', '.join(dims)})")
    if y not in summary:
        raise ScenarioError(f"--y: {y!r} is not summarised (try speedup, time_to_target, "
                            "reached_fraction, final_opt_gap)")
    for option, key in facets.items():
        if key is not None and key not in dims:
            raise ScenarioError(f"--{option}: {key!r} is not a swept key or algorithm "
                                f"(choose from: {', '.join(dims)})")
    chosen = [k for k in (x, *facets.values()) if k is not None]
    if len(set(chosen)) < len(chosen):
        raise ScenarioError(f"--x, --hue, --col, --row: give each a different key (got "
                            f"{', '.join(chosen)})")


def _draw_line(ax: Any, g: pd.DataFrame, x: str, y: str, label: str) -> None:
    """`y` against `x` for one combination of the other keys, with its CI where there is
    one; an inf median (half the seeds missed) is not drawn."""
    if g[x].duplicated().any():  # several points at one x would zig-zag, or hide one
        raise ScenarioError(f"{label}: several rows at one {x}; name every swept key (keys=, "
                            "or the summary's attrs['keys'] as rfast_sim.sweeps.summarize sets)")
    g = g.sort_values(x)
    value = g[y].to_numpy(dtype=float)
    finite = np.isfinite(value)
    low, high = f"{y}_ci_low", f"{y}_ci_high"
    xs = g[x].to_numpy()
    if low in g:
        err = np.abs(np.stack([value - g[low].to_numpy(dtype=float),
                               g[high].to_numpy(dtype=float) - value]))
        err = np.where(np.isfinite(err), err, 0.0)
        ax.errorbar(xs[finite], value[finite], yerr=err[:, finite], marker="o", capsize=3,
                    label=label)
    else:
        ax.plot(xs[finite], value[finite], marker="o", label=label)


def _text(key: str, value: Any) -> str:
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def sweep_figure(summary: pd.DataFrame, x: str, y: str = "speedup", hue: str = "algorithm",
                 *, col: str | None = None, row: str | None = None,
                 where: Mapping[str, Any] | None = None, keys: Sequence[str] | None = None,
                 managed: bool = True) -> Figure:
    """`y` (a median or speed-up, with its 95% CI) against swept key `x`, a line per value of
    `hue`, a panel per value of `col` and of `row`. Every other swept key gives lines of its
    own, labelled with its values, unless `where` fixes it; the title names every key that is
    fixed (by `where`, or because it has one value). `keys`: the swept keys (default:
    ``summary.attrs["keys"]``, as `rfast_sim.sweeps.summarize` sets them)."""
    dims = [*(keys if keys is not None else summary.attrs.get("keys", [])), "algorithm"]
    _check(summary, dims, x, y, {"hue": hue, "col": col, "row": row})
    summary = _fix(summary, dims, where or {})
    free = [k for k in dims if k not in (x, hue, col, row) and k not in (where or {})]
    fixed = {k: summary[k].iloc[0] for k in free if summary[k].nunique(dropna=False) == 1}
    fixed = {**(where or {}), **fixed}
    # a zip partner of x changes with x: one line through its values, named in the title
    tied = [k for k in free if k not in fixed
            and summary.groupby(x, dropna=False)[k].nunique(dropna=False).max() == 1]
    lines = [k for k in free if k not in fixed and k not in tied]
    cols = list(dict.fromkeys(summary[col])) if col else [None]
    rows = list(dict.fromkeys(summary[row])) if row else [None]
    fig = new_figure((5.5 * len(cols) + 1, 4 * len(rows)), managed)
    axes = np.atleast_2d(fig.subplots(len(rows), len(cols), squeeze=False, sharey=True))
    for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
        ax = axes[i, j]
        keep = pd.Series(True, index=summary.index)
        for key, value in ((row, rv), (col, cv)):
            if key is not None:
                keep &= _same(summary[key], value)
        panel = summary[keep]
        for values, g in panel.groupby([hue, *lines], sort=False, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            label = ", ".join([str(values[0]), *(_text(k, v) for k, v in
                                                 zip(lines, values[1:], strict=True))])
            _draw_line(ax, g, x, y, label)
        ax.set_title(", ".join(_text(k, v) for k, v in ((row, rv), (col, cv)) if k),
                     fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{y} against {x}" + "".join(
        f"; {what}" for what in (", ".join(f"{k} varies with {x}" for k in tied),
                                 "fixed: " + ", ".join(_text(k, v) for k, v in fixed.items())
                                 if fixed else "") if what), fontsize=10)
    fig.tight_layout()
    return fig


def plot_sweep_summary(summary: pd.DataFrame, x: str, y: str, hue: str, out: Path, *,
                       col: str | None = None, row: str | None = None,
                       where: Mapping[str, Any] | None = None) -> Path:
    """Write `sweep_figure` as ``{y}_vs_{x}.png`` under `out`; return its path."""
    fig = sweep_figure(summary, x, y, hue, col=col, row=row, where=where, managed=False)
    path = Path(out) / f"{y}_vs_{x.replace('.', '_')}.png"
    fig.savefig(path, dpi=110)
    return path


def plot_async_pays(summary: pd.DataFrame, egress: float = 1.25e9, clip: float = 5.0,
                    ax: Any = None) -> Any:
    """R-FAST's speed-up over the baseline against seconds per message on the NIC (message
    bytes / `egress`), a line per straggler slowdown and NIC queue: the summary of
    ``scenarios/sweep_when_async_pays.yaml``. Speed-ups are clipped at `clip` (inf: the
    baseline missed the target; 0: R-FAST did). Returns the ax."""
    rf = summary[summary["algorithm"] == "rfast"].copy()
    rf["seconds_per_message"] = rf["timing.message_bytes"] / egress
    if ax is None:
        ax = new_figure((7, 4)).subplots()
    for (slow, queue), g in rf.groupby(["timing.stragglers.slowdown", "timing.nic.queue"]):
        g = g.sort_values("seconds_per_message")
        s = g["speedup"].clip(upper=clip)
        err = [(s - g["speedup_ci_low"]).clip(lower=0),
               (g["speedup_ci_high"].clip(upper=clip) - s).clip(lower=0)]
        ax.errorbar(g["seconds_per_message"], s, yerr=err, marker="o", capsize=3,
                    ls="-" if queue == "latest" else "--",
                    label=f"slowdown {slow:g}, queue {queue}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per message on the NIC (message bytes / egress)")
    ax.set_ylabel("R-FAST speed-up over Ring-AllReduce\n(median ratio, 95% CI)")
    ax.set_title("above the line asynchrony pays")
    ax.legend(fontsize=8)
    return ax
