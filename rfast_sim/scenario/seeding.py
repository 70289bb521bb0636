"""Named random streams derived from the scenario seed.

Every random quantity of a run (node i's compute times, link (a, b)'s latencies and losses,
the problem's data) comes from its own stream, identified by a tag and integer ids. Adding a
stream never shifts another, so node i's k-th compute time is the same in every algorithm's
run: common random numbers make comparisons fair.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def stream(seed: int, tag: str, *ids: int) -> np.random.Generator:
    """An independent generator for (seed, tag, ids)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(tag.encode()), *ids]))


def streams(seed: int, tag: str, ids: np.ndarray) -> list[np.random.Generator]:
    """``[stream(seed, tag, *row) for row in ids]`` for an [L, k] array of ids, the very same
    generators, made several times faster: numpy's SeedSequence hashing runs on all rows at
    once (`_seed_words`) and each PCG64 starts from its words (hundreds of thousands of links
    each need two streams)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    ids = ids.reshape(len(ids), -1)
    if seed < 0 or seed > _MASK32 or (ids.size and (ids.min() < 0 or ids.max() > _MASK32)):
        return [stream(seed, tag, *map(int, row)) for row in ids]  # multi-word entropy
    entropy = np.concatenate([np.full((len(ids), 1), seed, np.uint32),
                              np.full((len(ids), 1), zlib.crc32(tag.encode()), np.uint32),
                              ids.astype(np.uint32)], axis=1)
    words = _seed_words(entropy)
    seeded: list[Any] = [_Words(w) for w in words]  # duck-typed seed sequences
    return [np.random.Generator(np.random.PCG64(w)) for w in seeded]


# numpy's SeedSequence (numpy/random/bit_generator.pyx), vectorised over rows of entropy
_MASK32 = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _POOL = 0xCA01F9DD, 0x4973F715, 4


def _seed_words(entropy: np.ndarray) -> np.ndarray:
    """The 4 uint64 words SeedSequence(row).generate_state(4, uint64) gives, for each row of
    one-word entropy values ([L, k] uint32)."""
    const = [_INIT_A]

    def hashmix(value: Any) -> Any:  # uint32 arrays: products wrap around, as in C
        value = value ^ np.uint32(const[0])
        const[0] = (const[0] * _MULT_A) & _MASK32
        value = value * np.uint32(const[0])
        return value ^ (value >> np.uint32(16))

    def mix(x: Any, y: Any) -> Any:
        out = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return out ^ (out >> np.uint32(16))

    rows, k = entropy.shape
    zero = np.zeros(rows, np.uint32)
    pool = [hashmix(entropy[:, i] if i < k else zero) for i in range(_POOL)]
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(_POOL, k):
        for dst in range(_POOL):
            pool[dst] = mix(pool[dst], hashmix(entropy[:, src]))
    state = np.empty((rows, 8), np.uint32)
    const_b = _INIT_B
    for i in range(8):
        value = pool[i % _POOL] ^ np.uint32(const_b)
        const_b = (const_b * _MULT_B) & _MASK32
        value = value * np.uint32(const_b)
        state[:, i] = value ^ (value >> np.uint32(16))
    return state.astype("<u4").view("<u8").astype(np.uint64)


class _Words(np.random.bit_generator.ISeedSequence):
    """A seed sequence that is already hashed: PCG64 asks it for its 4 words."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        assert n_words == 4
        assert np.dtype(dtype) == np.uint64
        return np.ascontiguousarray(self.words)

