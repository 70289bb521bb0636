"""Timing data from files: measured compute durations (CSV) and latency matrices.

A durations file is a CSV with a header, ``node,duration`` (each node's durations, in the
order they were recorded) or ``duration`` (one pool for every node). A latency matrix is n rows
of n seconds (the diagonal is ignored), with an optional header row. Every error names the
file and the line. Reads are cached on (path, size, modification time).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class TraceFileError(ValueError):
    """A trace file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Durations:
    pooled: np.ndarray  # every duration, in file order
    per_node: dict[int, np.ndarray] | None  # each node's, in file order (None: no node column)

    def of(self, node: int) -> np.ndarray:
        return self.pooled if self.per_node is None else self.per_node[node]


def _stamp(path: str) -> tuple[str, int, int]:
    p = Path(path)
    if not p.is_file():
        raise TraceFileError(f"{path}: no such file (paths are relative to the scenario file)")
    st = p.stat()
    return str(p), st.st_size, st.st_mtime_ns


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceFileError(f"{where}: {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceFileError(f"{where}: {what} must be a finite number >= 0 (got {text.strip()})")
    return value


def read_durations(path: str) -> Durations:
    """The durations of a ``node,duration`` or ``duration`` CSV file."""
    return _read_durations(*_stamp(path))


@functools.lru_cache(maxsize=32)
def _read_durations(path: str, _size: int, _mtime: int) -> Durations:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]] if rows else []
    if header not in (["node", "duration"], ["duration"]):
        raise TraceFileError(f"{path} line 1: the header must be 'node,duration' or 'duration' "
                             f"(got {','.join(header) or 'nothing'})")
    with_node = len(header) == 2
    nodes: list[int] = []
    values: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise TraceFileError(f"{where}: expected {len(header)} values, got {len(row)}")
        d = _number(row[-1], where, "duration")
        if d == 0:
            raise TraceFileError(f"{where}: a duration must be > 0")
        if with_node:
            node = _number(row[0], where, "node")
            if node != int(node):
                raise TraceFileError(f"{where}: node {row[0].strip()!r} is not an integer")
            nodes.append(int(node))
        values.append(d)
    if not values:
        raise TraceFileError(f"{path}: no durations after the header")
    pooled = np.asarray(values)
    if not with_node:
        return Durations(pooled, None)
    ids = np.asarray(nodes)
    return Durations(pooled, {int(i): pooled[ids == i] for i in np.unique(ids)})


def read_matrix(path: str) -> np.ndarray:
    """An n x n latency matrix (seconds; the diagonal is not used)."""
    return _read_matrix(*_stamp(path))


@functools.lru_cache(maxsize=32)
def _read_matrix(path: str, _size: int, _mtime: int) -> np.ndarray:
    with open(path, newline="") as f:
        rows = [(k, r) for k, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    if rows:
        try:
            [float(c) for c in rows[0][1]]
        except ValueError:
            rows = rows[1:]  # a header row
    if not rows:
        raise TraceFileError(f"{path}: the latency matrix is empty")
    n = len(rows)
    out = np.zeros((n, n))
    for r, (line, row) in enumerate(rows):
        if len(row) != n:
            raise TraceFileError(f"{path} line {line}: a {n} x {n} matrix needs {n} values per "
                                 f"row (got {len(row)})")
        out[r] = [_number(c, f"{path} line {line}", "latency") for c in row]
    return out


def digest(path: str) -> str:
    """The file's content hash (sweep run ids include it: a changed trace is a new run)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
