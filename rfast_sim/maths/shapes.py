"""Compiled shapes: lengths rounded up so nearby runs share one compiled replay (pure Python)."""

from __future__ import annotations

COARSE_BELOW = 1 << 16  # event counts (and packet slots) up to here round to a power of two
COARSE_SEGMENTS = 256  # metric segments up to here round to a power of two (at least 16)
# event slots (computations, deliveries) and packet slots are at least this many: runs of a
# few thousand events then share one compiled replay (a compilation costs seconds; no loop
# reaches the padding, which costs a few hundred kB)
EVENTS_FLOOR = 4096
STORE_FLOOR_BYTES = 1 << 20  # ... packet slots only while the store stays under 1 MB


def bucket(size: int, coarse_below: int | None = None, low: int = 64) -> int:
    """Round a length up so nearby lengths share one compiled shape: to a power of two (at
    least `low`) up to `coarse_below` (default `COARSE_BELOW`), where the padding is small
    beside a compilation (which costs seconds); to within 1/8 above, where it is memory."""
    coarse_below = COARSE_BELOW if coarse_below is None else coarse_below
    if size <= low:
        return low
    if size <= coarse_below:
        return 1 << (size - 1).bit_length()
    step = 2 ** (size.bit_length() - 1) // 8
    return -(-size // step) * step


def event_bucket(size: int) -> int:
    """The event (or packet) slots a layout holds: `bucket`, at least `EVENTS_FLOOR`."""
    return bucket(size, low=EVENTS_FLOOR)


def store_floor(row_bytes: int) -> int:
    """The fewest packet slots of a store whose rows take `row_bytes`: `EVENTS_FLOOR` while
    the store stays under `STORE_FLOOR_BYTES`, never fewer than 64."""
    return max(64, min(EVENTS_FLOOR, STORE_FLOOR_BYTES // row_bytes))


def segment_bucket(num_seg: int) -> int:
    """The metric segments a layout holds: padded ones are empty and their samples dropped
    (each still measures once, so the power-of-two rounding stops at `COARSE_SEGMENTS`)."""
    return bucket(num_seg, COARSE_SEGMENTS, 16)


__all__ = ["COARSE_BELOW", "COARSE_SEGMENTS", "EVENTS_FLOOR", "STORE_FLOOR_BYTES", "bucket",
           "event_bucket", "segment_bucket", "store_floor"]
