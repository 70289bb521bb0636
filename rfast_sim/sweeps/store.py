"""A sweep's folder: atomic per-point parquet files and the resumable manifest.

Each finished point is written atomically to ``OUT/points/<run_id>.parquet`` (temporary name,
then rename), so a killed sweep loses at most the points in progress. ``OUT/manifest.json``
records the spec, the package version and every point's state (done / failed / pending).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a parquet file under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        tmp = self.path.with_name(".manifest.json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def mark(self, run_id: str, state: str, error: str | None = None) -> None:
        entry = self.data["points"][run_id]
        entry["state"] = state
        entry["error"] = error
        if state == "done":
            entry["runs"] = entry.get("runs", 0) + 1


def load_results(out: str | Path) -> pd.DataFrame:
    """The tidy frame of every finished point of a sweep folder."""
    files = sorted((Path(out) / "points").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def failures(out: str | Path) -> dict[str, str]:
    """run_id -> error message of every failed point."""
    data = json.loads((Path(out) / "manifest.json").read_text())
    return {k: v["error"] for k, v in data["points"].items() if v["state"] == "failed"}
