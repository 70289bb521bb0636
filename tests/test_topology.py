"""Graph builders, mixing weights and the common-root condition."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfast_sim.scenario import GRAPH_KINDS, GraphSpec, ScenarioError
from rfast_sim.timing.topology import (
    build_graph,
    column_stochastic,
    common_roots,
    make_channels,
    metropolis,
    row_stochastic,
)


def _reachability(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Brute force: reach[a, b] iff b is reachable from a (every node reaches itself), by
    squaring the boolean adjacency matrix (with self-loops) until it stops changing."""
    reach = np.eye(n, dtype=bool)
    for a, b in edges:
        reach[a, b] = True
    while True:
        nxt = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
        if (nxt == reach).all():
            return reach
        reach = nxt


def _brute_force_common_roots(n: int, pull_edges: list[tuple[int, int]],
                              push_edges: list[tuple[int, int]]) -> set[int]:
    """Nodes that reach every node in G_R and that every node reaches in G_C."""
    reach_r, reach_c = _reachability(n, pull_edges), _reachability(n, push_edges)
    return {r for r in range(n) if reach_r[r, :].all() and reach_c[:, r].all()}


digraphs = st.integers(2, 9).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    )
)


def _graph(n: int, edges: list[tuple[int, int]]) -> nx.DiGraph:
    return build_graph(GraphSpec(kind="edges", edges=edges or [(0, 0)]), n, role="pull")


@settings(max_examples=300, deadline=None)
@given(digraphs)
def test_common_root_check_matches_brute_force_reachability(case):
    n, pull_edges, push_edges = case
    g_r, g_c = _graph(n, pull_edges), _graph(n, push_edges)
    expected = _brute_force_common_roots(n, pull_edges, push_edges)
    if expected:
        assert common_roots(g_r, g_c) == expected
    else:
        with pytest.raises(ScenarioError, match=r"roots of G_R .* roots of G_C"):
            common_roots(g_r, g_c)


def test_tree_pair_has_exactly_the_root_in_common():
    n = 10
    away = build_graph(GraphSpec(kind="tree", arity=3, root=4), n, role="pull")
    toward = build_graph(GraphSpec(kind="tree", arity=3, root=4), n, role="push")
    assert set(toward.edges) == {(b, a) for a, b in away.edges}
    assert common_roots(away, toward) == {4}


def test_refusal_names_both_root_sets():
    g_r = _graph(3, [(0, 1), (0, 2)])  # root 0
    g_c = _graph(3, [(0, 1), (2, 1)])  # everything reaches 1
    with pytest.raises(ScenarioError) as err:
        common_roots(g_r, g_c)
    assert "[0]" in str(err.value)
    assert "[1]" in str(err.value)


kinds = [k for k in GRAPH_KINDS.names() if k != "edges"]


@settings(max_examples=120, deadline=None)
@given(kind=st.sampled_from(kinds), n=st.integers(2, 24), seed=st.integers(0, 1000),
       p=st.floats(0.05, 1.0), arity=st.integers(1, 4))
def test_weights_are_stochastic_for_every_kind(kind, n, seed, p, arity):
    spec = GraphSpec(kind=kind, p=p, arity=arity)
    for role in ("pull", "push"):
        g = build_graph(spec, n, role=role, seed=seed)
        assert not any(a == b for a, b in g.edges), "no self-loops"
        R, C = row_stochastic(g), column_stochastic(g)
        np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-12)
        np.testing.assert_allclose(C.sum(0), 1.0, atol=1e-12)
        assert (R >= 0).all()
        assert (C >= 0).all()
        assert (np.diag(R) > 0).all()
        assert (np.diag(C) > 0).all()
        # support: r_ij > 0 exactly on in-neighbours, c_ji > 0 exactly on out-neighbours
        for a, b in g.edges:
            assert R[b, a] > 0
            assert C[b, a] > 0
        assert np.count_nonzero(R) == g.number_of_edges() + n
        if all(g.has_edge(b, a) for a, b in g.edges):
            W = metropolis(g)
            np.testing.assert_allclose(W, W.T, atol=1e-15)
            np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)
            assert (W >= 0).all()


def test_channels_carry_the_matrix_weights():
    n = 6
    g_r = build_graph(GraphSpec(kind="exponential"), n, role="pull")
    g_c = build_graph(GraphSpec(kind="ring"), n, role="push")
    ch = make_channels(n, pull=g_r, push=g_c)
    R, C = row_stochastic(g_r), column_stochastic(g_c)
    for c in range(ch.num):
        M = R if ch.role[c] == 0 else C
        assert ch.weight[c] == M[ch.dst[c], ch.src[c]]
    for i in range(n):
        outs = ch.out_ch[i][ch.out_ch[i] >= 0]
        ins = ch.in_ch[i][ch.in_ch[i] >= 0]
        assert (ch.src[outs] == i).all()
        assert (ch.dst[ins] == i).all()
