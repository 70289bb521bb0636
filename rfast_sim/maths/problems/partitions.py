"""Partitions of a training set over the nodes (numpy, seeded): each returns, per node, the
indices of its samples. Every sample goes to exactly one node; none is duplicated or dropped.

``labels`` are integer class labels (None for a regression target), ``keys`` the per-sample
node ids of ``by_key`` (None otherwise).
"""

from __future__ import annotations

import numpy as np

from rfast_sim.scenario import PartitionSpec, ScenarioError

MAX_DRAWS = 100  # dirichlet: redraws until no node is empty


def iid(labels: np.ndarray | None, keys: np.ndarray | None, n: int, spec: PartitionSpec,
        rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Shuffled and split into n parts whose sizes differ by at most 1."""
    return [np.sort(p) for p in np.array_split(rng.permutation(size), n)]


def _need_labels(labels: np.ndarray | None, kind: str) -> np.ndarray:
    if labels is None:
        raise ScenarioError(f"problem.partition.kind: {kind} splits by class and needs integer "
                            "labels (a classification loss); use iid or by_key")
    return labels


def dirichlet_shares(labels: np.ndarray, n: int, alpha: float,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """One draw: each class's samples (shuffled) cut over the nodes at Dirichlet(alpha * 1_n)
    proportions (Hsu et al. 2019; NIID-Bench's label distribution skew)."""
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        share = rng.dirichlet(np.full(n, alpha))
        cuts = np.round(np.cumsum(share)[:-1] * len(idx)).astype(int)
        for i, part in enumerate(np.split(idx, cuts)):
            parts[i].append(part)
    return [np.sort(np.concatenate(p)) for p in parts]


def dirichlet(labels: np.ndarray | None, keys: np.ndarray | None, n: int, spec: PartitionSpec,
              rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Label skew: redrawn (from the same stream) until every node has a sample."""
    labels = _need_labels(labels, "dirichlet")
    for _ in range(MAX_DRAWS):
        parts = dirichlet_shares(labels, n, spec.alpha, rng)
        if min(len(p) for p in parts) > 0:
            return parts
    raise ScenarioError(f"problem.partition.alpha: in {MAX_DRAWS} draws at alpha={spec.alpha} "
                        f"some node of {n} got no sample; raise alpha or use fewer nodes")


def shards(labels: np.ndarray | None, keys: np.ndarray | None, n: int, spec: PartitionSpec,
           rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Each node holds k = classes_per_node classes: the classes in a random order, dealt k at
    a time round the nodes (cyclically), each class's samples split evenly among its holders
    (the pathological non-IID split of McMahan et al. 2017, cut along class boundaries)."""
    labels = _need_labels(labels, "shards")
    classes = np.unique(labels)
    k = spec.classes_per_node
    if k > len(classes) or n * k < len(classes):
        raise ScenarioError(f"problem.partition.classes_per_node: {k} classes on each of {n} "
                            f"nodes cannot cover the {len(classes)} classes once each; need "
                            f"{-(-len(classes) // n)} <= classes_per_node <= {len(classes)}")
    order = rng.permutation(classes)
    held = [[order[(i * k + j) % len(classes)] for j in range(k)] for i in range(n)]
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for c in classes:
        holders = [i for i in range(n) if c in held[i]]
        for i, piece in zip(holders, np.array_split(rng.permutation(np.flatnonzero(
                labels == c)), len(holders)), strict=True):
            parts[i].append(piece)
    return [np.sort(np.concatenate(p)) if p else np.arange(0) for p in parts]


def by_key(labels: np.ndarray | None, keys: np.ndarray | None, n: int, spec: PartitionSpec,
           rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Every sample goes to the node its key names."""
    if keys is None:
        raise ScenarioError(f"problem.partition.key: by_key needs a {spec.key!r} array or "
                            "column of node ids")
    if np.any(keys != np.round(keys)):
        raise ScenarioError(f"problem.partition.key: {spec.key!r} must hold integer node ids")
    bad = keys[(keys < 0) | (keys >= n)]
    if len(bad):
        raise ScenarioError(f"problem.partition.key: node id {int(bad[0])} in {spec.key!r} is "
                            f"out of range 0..{n - 1} (nodes={n})")
    return [np.flatnonzero(keys == i) for i in range(n)]


def check_nonempty(parts: list[np.ndarray], kind: str) -> None:
    empty = [i for i, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise ScenarioError(f"problem.partition: node {empty[0]} gets no training sample "
                            f"({kind}); every node needs data: use fewer nodes, more data "
                            "or another partition")


def bucket(m: int) -> int:
    """A padded shard size: the next of 2^k or 1.5 * 2^k (few distinct shapes, so few
    compilations across runs whose shard sizes differ slightly)."""
    if m <= 2:
        return m
    p = 1 << ((m - 1).bit_length() - 1)  # the largest power of two below m
    return p * 3 // 2 if m <= p * 3 // 2 else 2 * p
