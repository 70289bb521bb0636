"""A memory estimate of a scenario, computed from its keys alone (nothing is allocated).

The run is refused before anything large exists when the estimate passes the limit (by default
most of the machine's available memory): a typo such as ``nodes: 1000000000`` must give one clear
message, not an out-of-memory kill. The estimate is deliberately rough (within a small factor)
and errs high.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from rfast_sim.scenario import GRAPH_KINDS, Scenario, ScenarioError, mlp_dim, registry
from rfast_sim.scenario.problem_kinds import BUILTIN_KEYS
from rfast_sim.timing.scope import ties_unlikely, vector_gap

# bytes per event while a trace is built: SimPy's Python tuple row, or the vector builder's
# packet arrays, sorts and heap (measured peak at n = 10,000: 350); once stored, the typed
# columns (34: time, kind, node, peer, channel, slot, seq, dropped, phase) and the replay's
# layout of it (about 135 at its peak, waves included), and 4 bytes per out-slot of each
# computation
_EVENT_RECORDING = 420
_EVENT_VECTOR = 350
_EVENT_STORED = 34
_EVENT_REPLAY = 140
# bytes per packet of the packet log (a timeline's, on request): SimPy's Python row or the
# vector builder's columns, and the timeline's span items of it (measured about 1 kB)
_PACKET_LOG = 1500
_LINK_SIMPY = 1500  # a used link SimPy keeps: its two generators and their blocks
_GRAPH_EDGE = 600  # a networkx edge, with its adjacency dicts
_DEFAULT_FRACTION = 0.8
_DATA_COPIES = 4  # a dataset's float64 arrays at the peak of their preparation
# scikit-learn's bundled sets: (samples, features), so their size is known without sklearn
_BUNDLED = {"digits": (1797, 64), "iris": (150, 4), "wine": (178, 13), "breast_cancer": (569, 30)}


@dataclass(frozen=True)
class Estimate:
    """Estimated peak bytes of a scenario's run, by part."""

    channels: int
    dim: int
    events_per_run: int
    runs: int
    parts: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{k} {human(v)}" for k, v in self.parts.items() if v >= 1e6)
        return (f"about {human(self.total)} ({parts}; {self.channels} channels, dim "
                f"{self.dim}, ~{self.events_per_run:.3g} events per run, {self.runs} runs)")


def human(nbytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes:.0f} B"


def parse_bytes(text: str) -> float:
    """'4GB', '512 MB', '2e9' -> bytes."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKMGT]?B?)\s*", text)
    units = {"": 1, "B": 1, "KB": 1e3, "kB": 1e3, "K": 1e3, "k": 1e3, "MB": 1e6, "M": 1e6,
             "GB": 1e9, "G": 1e9, "TB": 1e12, "T": 1e12}
    try:
        if m is None or m.group(2) not in units:
            raise ValueError
        value = float(m.group(1)) * units[m.group(2)]
    except ValueError:
        raise ScenarioError(f"--max-memory: {text!r} is not a size (e.g. 4GB, 512MB)") from None
    if not value > 0 or not math.isfinite(value):
        raise ScenarioError(f"--max-memory: must be > 0 (got {text!r})")
    return value


def available_memory() -> float:
    """Bytes of memory available now (MemAvailable), or physical memory if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8e9


def default_limit() -> float:
    return _DEFAULT_FRACTION * available_memory()


def model_dim(sc: Scenario) -> int:
    """A built-in kind's dimension from its keys (other kinds: their model's, which the caller
    measures with the model and passes; a timing-only run: 0)."""
    p = sc.problem
    if p is None:
        return 0
    return p.dim if p.kind != "mlp" else mlp_dim(p.hidden)


def estimate(sc: Scenario, dim: int | None = None, rate: float | None = None,
             packets: bool = False) -> Estimate:
    """Peak memory of running `sc` (every algorithm, seed and step size), from its keys and
    the model's flat dimension `dim` (default: a built-in kind's, from its keys). `rate`:
    computations per simulated second of all nodes (default: nodes / the compute law's mean;
    ``mean: model`` needs it: :func:`rfast_sim.timing.devices.compute_rate`). `packets`: a
    trace with the packet log (a timeline's) is made too."""
    n, d = sc.nodes, dim if dim is not None else model_dim(sc)
    word = 8 if sc.dtype == "float64" else 4
    # errs high: as if every algorithm used both directed graphs (and the undirected one)
    g = sc.graphs
    specs = [g.pull, g.push, *([g.undirected] if g.undirected else []),
             *(s for e in g.schedule for s in (e.pull, e.push) if s is not None)]
    sizes = [GRAPH_KINDS[spec.kind].size(spec, n) for spec in specs]
    channels = int(sum(e for e, _ in sizes))
    kout = max([k for _, k in sizes], default=1) * max(1, len(sizes))
    if rate is None:
        if sc.timing.compute.from_model:
            raise ValueError("estimate: timing.compute.mean: model needs the rate (from the "
                             "step's cost)")
        rate = n / sc.timing.compute_law().expected()  # computations per simulated second
    updates = rate * sc.run.until if sc.run.until is not None else math.inf
    if sc.run.max_updates is not None:
        updates = min(updates, sc.run.max_updates)
    events = updates * (1 + channels / n) + (sc.run.until or 0) / sc.run.sample_every
    p = sc.problem
    runs = sc.seeds * (sum(a.max_runs_per_seed for a in sc.algorithm_list) if p is not None
                       else len(sc.algorithm_list))
    # one trace per (algorithm, seed): it serves all the seed's step sizes
    traces = sc.seeds * len(sc.algorithm_list)
    vector = all(_vector_builds(sc, a.name) for a in sc.algorithm_list)
    features = d if p is not None and p.kind != "mlp" else 64
    builtin = p is not None and p.kind in BUILTIN_KEYS
    build = events * _EVENT_VECTOR if vector else (
        events * (_EVENT_RECORDING + 4 * kout) + channels * _LINK_SIMPY)
    parts = {
        "problem data": float(n * p.samples_per_node * (features + 1) * word
                              if p is not None and builtin else data_bytes(sc)),
        "graphs": float(channels * _GRAPH_EDGE),
        "state": float(6 * (n + channels) * d * word),
        # a trace's build and its replay's layout do not overlap: the larger of the two
        "trace build or replay": float(max(build, events * _EVENT_REPLAY)),
        "kept traces": float(traces * (events * _EVENT_STORED + updates * 4 * kout)),
        # one trace with its packet log (about one packet per event but the computations)
        "packet log": float((events - updates) * _PACKET_LOG if packets else 0.0),
    }
    return Estimate(channels, d, int(min(events, 1e18)), runs, parts)


def data_bytes(sc: Scenario) -> float:
    """Peak bytes of a dataset problem's data while it is prepared, from file headers and
    sizes (nothing is read): its arrays as float64, held about 4 times over at the peak (the
    table, the split, the standardised copy, the padded shards); 0 for other kinds."""
    p = sc.problem
    if p is None or p.kind != "dataset":
        return 0.0
    if p.source == "mnist1d":
        raw = float(p.mnist1d.nbytes())
    elif p.source is not None:
        rows, cols = _BUNDLED[p.source]
        raw = float(rows * (cols + 1) * 8)
    else:
        raw = sum(_file_bytes(f) for f in (p.file, p.test_file) if f is not None)
    return _DATA_COPIES * raw


def _file_bytes(path: str) -> float:
    """A data file's arrays as float64: from .npz headers (every array), a parquet file's
    metadata (rows x columns), or a CSV's size (a number and its separator take about as many
    characters as a float64 takes bytes)."""
    try:
        if path.endswith(".npz"):
            return float(sum(8 * math.prod(shape) for shape in _npz_shapes(path)))
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            meta = pq.read_metadata(path)
            return float(8 * meta.num_rows * meta.num_columns)
        return float(os.path.getsize(path))
    except Exception:  # unreadable: the reader says why, with the file's name
        return 0.0


def _npz_shapes(path: str) -> list[tuple[int, ...]]:
    import zipfile

    import numpy as np

    shapes = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                        np.lib.format.read_array_header_2_0)
                shapes.append(tuple(read(f)[0]))
    return shapes


def check_data(sc: Scenario, limit: float | None = None) -> None:
    """Refuse a dataset too large for `limit` before it is read (the full estimate needs the
    model's dimension, which needs the data)."""
    need = data_bytes(sc)
    limit = default_limit() if limit is None else limit
    if not need <= limit:
        p = sc.problem
        assert p is not None
        what = (f"source {p.source}" if p.source is not None else
                ", ".join(f for f in (p.file, p.test_file) if f is not None))
        fix = ("problem.mnist1d.samples" if p.source == "mnist1d" else "a smaller file")
        raise ScenarioError(f"memory: problem data ({what}) need about {human(need)} while "
                            f"they are prepared, over the limit of {human(limit)}; use {fix}, "
                            "or raise the limit with --max-memory")


def _vector_builds(sc: Scenario, name: str) -> bool:
    """Does the vector builder make this algorithm's traces
    (`rfast_sim.timing.traces.choose_engine`, from the settings alone)?"""
    try:
        alg = registry.info(name)
    except KeyError:
        return False
    run = sc.run
    if run.engine == "simpy" or run.mode == "online":
        return False
    uses_tv = sc.graphs.time_varying and bool(set(alg.graphs) & {"pull", "push"})
    if vector_gap(sc.timing, uses_tv, alg.pattern, alg.supersedes) is not None:
        return False
    return run.engine == "vector" or ties_unlikely(sc.timing)


def check(sc: Scenario, limit: float | None = None, dim: int | None = None,
          rate: float | None = None, packets: bool = False) -> Estimate:
    """The estimate; ScenarioError when it passes `limit` (default: most available memory)."""
    est = estimate(sc, dim, rate, packets)
    limit = default_limit() if limit is None else limit
    if not est.total <= limit:
        raise ScenarioError(
            f"memory: this scenario needs {est.describe()}, over the limit of {human(limit)}; "
            "reduce nodes, problem.dim, problem.samples_per_node, run.until or seeds, or raise "
            "the limit with --max-memory")
    return est
