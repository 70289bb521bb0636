"""Generate the example timing traces shipped with rfast-sim (deterministic: seed 2026).

devices.csv: 8 devices x 400 recorded compute durations (``node,duration``, seconds). Nodes 0-3
are accelerator hosts (about 0.5 s per step), nodes 4-7 edge CPUs (about 1.6 s); every device
jitters (lognormal, sigma 0.15) and now and then throttles for a stretch (a two-state Markov
chain: enters with probability 0.02 per step, stays with 0.9, 3x slower meanwhile).
latency_8.csv: an 8 x 8 one-way latency matrix (seconds): two racks {0-3} and {4-7}, 0.2 ms
inside a rack, 25 ms plus a fixed per-pair offset between racks.

Run from anywhere: ``python scenarios/traces/make_traces.py`` rewrites both files next to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def durations(rng: np.random.Generator, n: int = 8, steps: int = 400) -> list[tuple[int, float]]:
    rows = []
    for i in range(n):
        base = 0.5 if i < n // 2 else 1.6
        throttled = False
        for _ in range(steps):
            throttled = rng.random() < (0.9 if throttled else 0.02)
            d = base * rng.lognormal(-0.5 * 0.15**2, 0.15) * (3.0 if throttled else 1.0)
            rows.append((i, round(d, 5)))
    return rows


def latency_matrix(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    rack = np.arange(n) // (n // 2)
    offset = rng.uniform(0.0, 0.01, size=(n, n))
    m = np.where(rack[:, None] == rack[None, :], 0.0002, 0.025 + offset)
    np.fill_diagonal(m, 0.0)
    return m


def main() -> None:
    rng = np.random.default_rng(2026)
    lines = ["node,duration"] + [f"{i},{d}" for i, d in durations(rng)]
    (HERE / "devices.csv").write_text("\n".join(lines) + "\n")
    m = latency_matrix(rng)
    (HERE / "latency_8.csv").write_text(
        "\n".join(",".join(f"{v:.5f}" for v in row) for row in m) + "\n")


if __name__ == "__main__":
    main()
