import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbench.data.dataset import Interactions
from recbench.errors import ConfigError
from recbench.graph import (graph_edges, interaction_matrix, item_neighbours,
                            normalized_adjacency)


def tiny_train() -> Interactions:
    # user 0: items 0,1,2,3 ; user 1: items 2,4 ; user 2: item 1 ; sorted by (user, time)
    users = np.array([0, 0, 0, 0, 1, 1, 2])
    items = np.array([0, 1, 2, 3, 2, 4, 1])
    return Interactions(users, items, np.arange(7), n_users=3, n_items=5)


def test_last_n_keeps_exactly_the_last_edges():
    u, i = graph_edges(tiny_train(), last_n=2)
    assert list(zip(u, i)) == [(0, 2), (0, 3), (1, 2), (1, 4), (2, 1)]


@pytest.mark.parametrize("fraction, expected", [
    (0.5, [(0, 2), (0, 3), (1, 4), (2, 1)]),            # ceil(2)=2, ceil(1)=1, ceil(.5)=1
    (0.25, [(0, 3), (1, 4), (2, 1)]),
    (1.0, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 2), (1, 4), (2, 1)]),
])
def test_last_fraction_keeps_exactly_the_last_edges(fraction, expected):
    u, i = graph_edges(tiny_train(), last_fraction=fraction)
    assert list(zip(u, i)) == expected


def test_graph_size_arguments_are_checked():
    with pytest.raises(ConfigError):
        graph_edges(tiny_train(), last_n=2, last_fraction=0.5)
    with pytest.raises(ConfigError):
        graph_edges(tiny_train(), last_fraction=0.0)


def test_normalized_adjacency_equals_dense_reference():
    t = tiny_train()
    R = interaction_matrix(t.users, t.items, t.n_users, t.n_items)
    got = normalized_adjacency(R).to_dense().numpy()
    Rd = R.toarray()
    A = np.block([[np.zeros((3, 3)), Rd], [Rd.T, np.zeros((5, 5))]])
    d = A.sum(1)
    ref = A / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_item_neighbours_equal_dense_reference():
    rng = np.random.default_rng(0)
    R = sp.csr_matrix((rng.random((40, 25)) < 0.2).astype(np.float32))
    k = 4
    nbr, w = item_neighbours(R, k)
    G = (R.T @ R).toarray().astype(float)
    g = G.sum(1)
    omega = G / (g - np.diag(G))[:, None] * np.sqrt(g[:, None] / np.maximum(g[None, :], 1e-12))
    np.fill_diagonal(omega, 0.0)
    for i in range(25):
        cand = [j for j in range(25) if j != i and G[i, j] > 0]
        best = sorted(cand, key=lambda j: (-omega[i, j], j))[:k]
        assert nbr[i, : len(best)].tolist() == best
        np.testing.assert_allclose(w[i, : len(best)].numpy(), omega[i, best], rtol=1e-5)
        assert (w[i, len(best):] == 0).all()


def test_item_neighbours_stay_sparse(monkeypatch):
    """No dense items x items array: fail if anything densifies a sparse matrix."""
    def refuse(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", refuse)
    monkeypatch.setattr(sp.csr_matrix, "todense", refuse)
    monkeypatch.setattr(sp.coo_matrix, "toarray", refuse)
    rng = np.random.default_rng(1)
    n_items = 50_000  # dense float64 items x items would be 20 GB
    users = rng.integers(0, 2000, 20_000)
    items = rng.integers(0, n_items, 20_000)
    R = interaction_matrix(users, items, 2000, n_items)
    nbr, w = item_neighbours(R, 10)
    assert nbr.shape == (n_items, 10) and w.dtype == torch.float32
