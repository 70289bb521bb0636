"""Named random streams derived from the scenario seed.

Every random quantity of a run (node i's compute times, link (a, b)'s latencies and losses,
the problem's data) comes from its own stream, identified by a tag and integer ids. Adding a
stream never shifts another, so node i's k-th compute time is the same in every algorithm's
run: common random numbers make comparisons fair.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, tag: str, *ids: int) -> np.random.Generator:
    """An independent generator for (seed, tag, ids)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tag.encode()), *ids]))
