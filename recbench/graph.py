"""The user-item graph shared by LightGCN, UltraGCN, MRGSRec and CREATE (their base class:
``recbench.graph_model``).

Everything stays sparse: the bipartite adjacency is a scipy.sparse matrix turned into a torch
sparse tensor, and item-item neighbours are found row by row of the sparse co-occurrence matrix.
No dense users x items or items x items matrix is ever built.

- ``graph_edges``: each user's last N interactions, or the last n% of them (the paper's
  graph-size ablation), from a training log sorted by (user, time).
- ``interaction_matrix``: binary users x items CSR of those edges.
- ``normalized_adjacency``: D^-1/2 A D^-1/2 of A = [[0, R], [R^T, 0]], as a torch sparse tensor.
- ``item_neighbours``: UltraGCN's item-item constraint graph, the top-k neighbours of every item
  by omega_ij = G_ij / (g_i - G_ii) * sqrt(g_i / g_j), where G = R^T R and g_i = sum_j G_ij.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recbench.data.dataset import Interactions
from recbench.errors import ConfigError
from recbench.params import GraphSize, make_params


def graph_edges(train: Interactions, last_n: int | None = None,
                last_fraction: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of each user's last ``last_n`` interactions or last ``last_fraction`` of them.

    With neither set, every training interaction is an edge. A fraction keeps ceil(f * n) of a
    user's n interactions, so every user keeps at least one.
    """
    make_params(GraphSize, {"graph_last_n": last_n, "graph_last_fraction": last_fraction},
                where="graph")
    users, items = train.users, train.items
    if last_n is None and last_fraction is None:
        return users, items
    offsets, _ = train.sequences()
    lengths = np.diff(offsets)
    if last_n is not None:
        keep = np.minimum(lengths, last_n)
    else:
        keep = np.ceil(np.round(lengths * last_fraction, 9)).astype(np.int64)
    from_end = offsets[users + 1] - 1 - np.arange(len(users))  # 0 for a user's last interaction
    mask = from_end < keep[users]
    return users[mask], items[mask]


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary users x items matrix R (repeated interactions count once)."""
    R = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    R.sum_duplicates()
    R.data[:] = 1.0
    return R


def training_graph(train: Interactions, last_n: int | None, last_fraction: float | None,
                   model: str) -> sp.csr_matrix:
    """The binary [U, I] CSR graph a graph model trains on: each user's last N (or last n%)
    training interactions. Refuses an empty graph, naming the model."""
    users, items = graph_edges(train, last_n=last_n, last_fraction=last_fraction)
    R = interaction_matrix(users, items, train.n_users, train.n_items)
    if R.nnz == 0:
        raise ConfigError(f"{model}: the training graph has no edges (empty training log).")
    return R


def to_torch_sparse(m: sp.spmatrix) -> torch.Tensor:
    m = m.tocoo()
    idx = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
    values = torch.from_numpy(m.data.astype(np.float32))
    return torch.sparse_coo_tensor(idx, values, m.shape, check_invariants=False).coalesce()


def normalized_adjacency(R: sp.csr_matrix) -> torch.Tensor:
    """D^-1/2 A D^-1/2 for the bipartite A = [[0, R], [R^T, 0]], [U+I, U+I] torch sparse.

    Isolated nodes (degree 0) keep zero rows instead of dividing by zero.
    """
    A = sp.bmat([[None, R], [R.T, None]], format="csr")
    deg = np.asarray(A.sum(1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    nz = deg > 0
    inv_sqrt[nz] = deg[nz] ** -0.5
    D = sp.diags(inv_sqrt)
    return to_torch_sparse(D @ A @ D)


def item_neighbours(R: sp.csr_matrix, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k item neighbours and weights omega for UltraGCN's item-item constraint.

    Returns (neighbours [n_items, k] int64, weights [n_items, k] float32). Items with fewer than
    k co-occurring items are padded with themselves at weight 0. Computed on the sparse G = R^T R.
    """
    n_items = R.shape[1]
    G = (R.T @ R).tocsr().astype(np.float64)  # [I, I] sparse co-occurrence counts
    g = np.asarray(G.sum(1)).ravel()
    diag = G.diagonal()
    G.setdiag(0.0)
    G.eliminate_zeros()
    coo = G.tocoo()
    denom = g[coo.row] - diag[coo.row]
    omega = np.where(denom > 0, coo.data / np.where(denom > 0, denom, 1.0), 0.0) * np.sqrt(
        g[coo.row] / np.maximum(g[coo.col], 1e-12))
    # per row: sort by weight descending (ties: lower item index first), keep the first k
    order = np.lexsort((coo.col, -omega, coo.row))
    rows, cols, w = coo.row[order], coo.col[order], omega[order]
    starts = np.searchsorted(rows, np.arange(n_items))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    nbr = np.tile(np.arange(n_items, dtype=np.int64)[:, None], (1, k))
    wts = np.zeros((n_items, k), dtype=np.float32)
    nbr[rows[keep], rank[keep]] = cols[keep]
    wts[rows[keep], rank[keep]] = w[keep]
    return torch.from_numpy(nbr), torch.from_numpy(wts)
