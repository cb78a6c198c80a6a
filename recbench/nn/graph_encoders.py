"""Graph encoders of the user-item graph: LightGCN and UltraGCN, shared by the baselines and CREATE.

Both encoders hold a user table and use an item table; the item table may be owned elsewhere
(CREATE shares it with the sequential encoder): pass ``item_embedding`` (an ``nn.Embedding`` or an
``nn.Parameter`` with at least ``n_items`` rows; only the first ``n_items`` are used, so a table
with a padding or [MASK] row after the catalog works as it is). Everything stays sparse: the
adjacency is a torch sparse matrix, negatives are sampled per batch, and no dense users x items or
items x items matrix is ever built.

- ``LightGCNEncoder`` (He et al., SIGIR 2020): K layers of E^(k+1) = A_hat E^(k) with the
  normalised bipartite adjacency A_hat = D^-1/2 A D^-1/2 (no feature transformation, no
  non-linearity, no self-loop); the final embeddings are the mean of layers 0..K. ``bpr_loss``:
  mean of softplus(s_neg - s_pos) plus reg * (||e_u||^2 + ||e_pos||^2 + ||e_neg||^2) / (2 B) on
  the batch's layer-0 ("ego") embeddings, as in the authors' code. Two variants of the form, off
  by default (CREATE's predecessor MRGSRec has both):

  - ``hop_norm``: each hop's output E^(k), k >= 1, enters the mean L2-normalised per row (the
    propagation itself goes on with the unnormalised E^(k); layer 0 is not normalised);
  - ``edge_dropout`` p: at every training propagation each edge (u, i) of R is dropped with
    probability p, both of its entries in A_hat together (so the dropped matrix stays symmetric),
    and the kept entries are divided by 1 - p, so that the dropped matrix equals A_hat in
    expectation (the degrees are not recomputed; MRGSRec's reading). The draw comes from the
    training generator (a seeded CPU run repeats it); in eval mode nothing is dropped.
- ``UltraGCNEncoder`` (Mao et al., CIKM 2021): no propagation at all; the limit of infinite
  propagation is approximated by degree-weighted BCE constraints. Weights and formulas follow the
  official code (github.com/xue-pai/UltraGCN, whose ML-1M settings are the defaults here):

    beta_u = sqrt(d_u + 1) / d_u,   beta_i = 1 / sqrt(d_i + 1)   (degrees in the graph R)
    L_O  = sum_(u,i) [ w1 * bce(s_ui, 1) + negative_weight * mean_j w3 * bce(s_uj, 0) ]
    L_C  = sum_(u,i) [ w2 beta_u beta_i bce(s_ui, 1) + negative_weight * mean_j w4 beta_u beta_j bce(s_uj, 0) ]
    L_I  = sum_(u,i) sum_(k in top neighbours of i) omega_ik * -log sigmoid(e_u . e_k)
    norm = (||E_users||^2 + ||E_items||^2) / 2   (the whole tables)
    loss = L_O + L_C + lambda_ii * L_I + gamma * norm

  with j over ``negative_num`` uniformly sampled negatives per positive (u, i), or, with
  ``neg=None`` (``negatives: catalog``), over every item not in H_u (below). That is
  ``reduction="sum"``, the official code's. ``reduction="mean"`` (what CREATE uses, where the
  graph loss is added to a per-position cross-entropy and the item table is shared) divides
  L_O, L_C and L_I by the batch's B positives and replaces the whole-table norm by the rows the
  step touched, as LightGCN's ``reg`` does: (sum_b ||e_u||^2 + ||e_i||^2 + mean_j ||e_j||^2) / (2 B). The paper writes
  L = L_O + lambda L_C + gamma L_I; the official code (and its tuned settings) puts the paper's
  lambda into w2/w4 relative to w1/w3, calls the weight of L_I "lambda" (here ``lambda_ii``) and
  the weight of the L2 norm "gamma". The item-item neighbours and omega come from
  ``recbench.graph.item_neighbours`` (the paper's omega_ij = G_ij / (g_i - G_ii) sqrt(g_i / g_j)).

``NegativeSampler`` draws uniform negatives from a ``torch.Generator`` (optionally resampling
those that are positives of the user), and ``fold_in`` scores a history without a user embedding:
the mean of its distinct items' final embeddings.

Catalogue-wide negatives (the paper's Section 3.4 BPR, a sum over every j not in H_u): with
``negatives="catalog"`` a loss takes, for each positive (u, i), the MEAN of its negative term
over every item j not in H_u, the user's items in R (``catalog_mean``), of which the sampled
loss's mean over M uniform draws is an estimate: the loss keeps its per-positive scale, and a
weight such as CREATE's w_global its meaning. A positive
outside H_u (CREATE's ``graph_schedule: sequential`` scores window targets the graph may not
hold) is then among its own negatives, at weight 1 / |I \\ H_u|: in BPR a constant log 2 without
gradient. The [B, n_items] scores are computed one block of items at a time and recomputed in the
backward (``CatalogSum``), so memory stays O(B * block) for any catalogue.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recbench.errors import ConfigError
from recbench.graph import item_neighbours, normalized_adjacency


def _item_table(item_embedding, n_items: int, dim: int, init_std: float) -> nn.Module | nn.Parameter:
    """The item table to use: a new [n_items, dim] embedding, or the external one after checks."""
    if item_embedding is None:
        table = nn.Embedding(n_items, dim)
        nn.init.normal_(table.weight, std=init_std)
        return table
    weight = item_embedding.weight if isinstance(item_embedding, nn.Embedding) else item_embedding
    if not isinstance(weight, nn.Parameter) or weight.dim() != 2:
        raise TypeError("item_embedding must be an nn.Embedding or a 2-d nn.Parameter, got "
                        f"{type(item_embedding).__name__}")
    if weight.shape[0] < n_items or weight.shape[1] != dim:
        raise ConfigError(
            f"the shared item embedding is {tuple(weight.shape)}, the graph encoder needs at least "
            f"{n_items} rows (the catalog) of dim {dim}; build both encoders with the same n_items "
            "and dim.")
    return item_embedding


class _GraphEncoder(nn.Module):
    """User table + (own or shared) item table; ``item_weight`` is always [n_items, d]."""

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float, item_embedding):
        super().__init__()
        if n_users < 1 or n_items < 1 or dim < 1:
            raise ConfigError(f"graph encoder needs n_users, n_items, dim >= 1, got {n_users}, "
                              f"{n_items}, {dim}")
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.user_emb = nn.Embedding(n_users, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        self.item_emb = _item_table(item_embedding, n_items, dim, init_std)

    @property
    def user_weight(self) -> torch.Tensor:  # [U, d]
        return self.user_emb.weight

    @property
    def item_weight(self) -> torch.Tensor:  # [I, d], the catalog rows of the (shared) table
        table = self.item_emb
        weight = table.weight if isinstance(table, nn.Embedding) else table
        return weight[: self.n_items]


class SymmetricSpMM(torch.autograd.Function):
    """y = A x for a symmetric sparse A; the backward is A g (A^T = A), one more sparse product.

    torch's own backward of ``torch.sparse.mm`` transposes A on every call (and for CSR goes
    through a slow path); here both directions reuse the same CSR matrix.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad)


#: catalogue-wide negatives: scores per block of items, [B, block] float32 (64 MiB)
CATALOG_BLOCK = 2**24


class CatalogSum(torch.autograd.Function):
    """sums [R, K]: sum over items j of weights[j, k] * softplus(q_r . e_j - shift_r), skipping
    the excluded (r, j) pairs.

    q [R, d], items [I, d], shift [R], weights [I, K] (no gradient) or None (ones, K = 1),
    excluded pairs as rows [N], cols [N] sorted by column. The [R, I] scores are never held
    whole: forward and backward each walk the items in blocks of ``block`` columns, the backward
    recomputing a block's scores."""

    @staticmethod
    def forward(ctx, q, items, shift, weights, ex_rows, ex_cols, block):
        ctx.save_for_backward(q, items, shift, weights, ex_rows, ex_cols)
        ctx.block = block
        out = q.new_zeros(len(q), 1 if weights is None else weights.shape[1])
        for lo, hi, rows, cols in _blocks(len(items), block, ex_rows, ex_cols):
            f = F.softplus(torch.addmm(-shift[:, None], q, items[lo:hi].T))  # [R, hi - lo]
            f[rows, cols] = 0.0
            out += f.sum(1, keepdim=True) if weights is None else f @ weights[lo:hi]
        return out

    @staticmethod
    def backward(ctx, grad):  # grad [R, K]
        q, items, shift, weights, ex_rows, ex_cols = ctx.saved_tensors
        grad_q, grad_items = torch.zeros_like(q), torch.zeros_like(items)
        grad_shift = torch.zeros_like(shift)
        for lo, hi, rows, cols in _blocks(len(items), ctx.block, ex_rows, ex_cols):
            e = items[lo:hi]
            g = torch.sigmoid_(torch.addmm(-shift[:, None], q, e.T))  # [R, hi - lo]
            g *= grad if weights is None else grad @ weights[lo:hi].T
            g[rows, cols] = 0.0
            grad_q.addmm_(g, e)
            torch.mm(g.T, q, out=grad_items[lo:hi])
            grad_shift -= g.sum(1)
        return grad_q, grad_items, grad_shift, None, None, None, None


def _blocks(n_items: int, block: int, ex_rows: torch.Tensor, ex_cols: torch.Tensor):
    """(lo, hi, rows, cols - lo) per block of columns [lo, hi): the excluded pairs inside it."""
    bounds = torch.arange(0, n_items + block, block, device=ex_cols.device).clamp_max(n_items)
    at = torch.searchsorted(ex_cols, bounds).tolist()
    bounds = bounds.tolist()
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        if lo < hi:
            yield lo, hi, ex_rows[at[k]:at[k + 1]], ex_cols[at[k]:at[k + 1]] - lo


def catalog_mean(q: torch.Tensor, items: torch.Tensor, users: torch.Tensor, indptr: torch.Tensor,
                 indices: torch.Tensor, weights: torch.Tensor | None = None,
                 shift: torch.Tensor | None = None) -> torch.Tensor:
    """[R, K]: for each row r, the mean over every item j not in H_{users[r]} of
    weights[j, k] * softplus(q_r . e_j - shift_r).

    q [R, d], items [I, d], users [R] (H_u is row u of R, given by its CSR ``indptr`` [U + 1] and
    ``indices`` [nnz]), weights [I, K] (default: ones, K = 1), shift [R] (default 0)."""
    R, n_items = len(q), len(items)
    if shift is None:
        shift = q.new_zeros(R)
    counts = indptr[users + 1] - indptr[users]  # [R] |H_u|
    rows = torch.repeat_interleave(torch.arange(R, device=q.device), counts)  # [N]
    first = torch.repeat_interleave(indptr[users] - (torch.cumsum(counts, 0) - counts), counts)
    cols = indices[first + torch.arange(len(rows), device=q.device)]  # [N] the items of H_u
    order = torch.argsort(cols)
    block = max(1, CATALOG_BLOCK // max(R, 1))
    weights = None if weights is None else weights.detach()
    sums = CatalogSum.apply(q, items, shift, weights, rows[order], cols[order], block)
    n = (n_items - counts).clamp_min(1).to(sums.dtype)  # [R] items not in H_u
    return sums / n[:, None]


def catalog_sq_mean(sq: torch.Tensor, users: torch.Tensor, indptr: torch.Tensor,
                    indices: torch.Tensor) -> torch.Tensor:
    """[R]: the mean of ``sq`` [I] (e.g. squared norms) over the items not in H_{users[r]}."""
    counts = indptr[users + 1] - indptr[users]
    rows = torch.repeat_interleave(torch.arange(len(users), device=sq.device), counts)
    first = torch.repeat_interleave(indptr[users] - (torch.cumsum(counts, 0) - counts), counts)
    inside = torch.zeros(len(users), dtype=sq.dtype, device=sq.device)
    inside.index_add_(0, rows, sq[indices[first + torch.arange(len(rows), device=sq.device)]])
    return (sq.sum() - inside) / (len(sq) - counts).clamp_min(1).to(sq.dtype)


def _csr_buffers(module: nn.Module, R: sp.csr_matrix) -> None:
    """R's rows as torch buffers ``R_indptr`` [U + 1], ``R_indices`` [nnz] (H_u of each user)."""
    module.register_buffer("R_indptr", torch.from_numpy(R.indptr.astype(np.int64)),
                           persistent=False)
    module.register_buffer("R_indices", torch.from_numpy(R.indices.astype(np.int64)),
                           persistent=False)


class LightGCNEncoder(_GraphEncoder):
    """LightGCN over a binary users x items matrix R.

    ``forward()`` -> (users [U, d], items [I, d]): the mean of layers 0..K of the propagation.
    """

    def __init__(self, R: sp.csr_matrix, *, dim: int = 64, n_layers: int = 3, reg: float = 1e-4,
                 init_std: float = 0.1, item_embedding=None, hop_norm: bool = False,
                 edge_dropout: float = 0.0):
        n_users, n_items = R.shape
        super().__init__(n_users, n_items, dim, init_std, item_embedding)
        if n_layers < 0:
            raise ConfigError(f"LightGCN n_layers must be >= 0, got {n_layers}")
        if not 0.0 <= edge_dropout < 1.0:
            raise ConfigError(f"LightGCN edge_dropout must lie in [0, 1), got {edge_dropout}")
        self.n_layers, self.reg = n_layers, reg
        self.hop_norm, self.edge_dropout = hop_norm, edge_dropout
        # [U+I, U+I] symmetric; CSR so that forward and backward are one fast sparse product each
        adjacency = normalized_adjacency(R).to_sparse_csr()
        self.register_buffer("adjacency", adjacency, persistent=False)
        _csr_buffers(self, R)
        if edge_dropout > 0:  # the edge (row of R's COO order) of each entry of the adjacency
            rows = torch.repeat_interleave(torch.arange(n_users + n_items),
                                           adjacency.crow_indices().diff())
            cols = adjacency.col_indices()
            u, i = torch.minimum(rows, cols), torch.maximum(rows, cols) - n_users
            coo = R.tocoo()
            edge_keys = torch.from_numpy(np.sort(coo.row.astype(np.int64) * n_items + coo.col))
            self.register_buffer("entry_edge", torch.searchsorted(edge_keys, u * n_items + i),
                                 persistent=False)  # [2 E]

    def ego(self) -> torch.Tensor:  # [U+I, d] layer 0
        return torch.cat([self.user_weight, self.item_weight])

    def dropped_adjacency(self, generator: torch.Generator) -> torch.Tensor:
        """A_hat with each edge of R dropped with probability ``edge_dropout`` (both entries),
        the kept ones divided by 1 - p; same sparsity structure (dropped entries hold 0)."""
        p = self.edge_dropout
        keep = (torch.rand(self.R_indices.numel(), generator=generator) >= p).float() / (1 - p)
        a = self.adjacency
        values = a.values() * keep.to(a.device)[self.entry_edge]
        return torch.sparse_csr_tensor(a.crow_indices(), a.col_indices(), values, a.shape,
                                       check_invariants=False)

    def forward(self, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U, d], items [I, d]); in training with ``edge_dropout``, ``generator`` draws
        the dropped edges."""
        adjacency = self.adjacency
        if self.training and self.edge_dropout > 0:
            if generator is None:
                raise ValueError("LightGCNEncoder with edge_dropout: pass the training generator "
                                 "to forward() (or call eval() for inference)")
            adjacency = self.dropped_adjacency(generator)
        x = self.ego()  # [U+I, d]
        total = x
        for _ in range(self.n_layers):
            x = SymmetricSpMM.apply(adjacency, x)  # [U+I, d]
            total = total + (F.normalize(x, dim=1) if self.hop_norm else x)
        final = total / (self.n_layers + 1)
        return final[: self.n_users], final[self.n_users:]  # [U, d], [I, d]

    def bpr_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                 final: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """BPR on users [B], positives [B] and negatives [B] or [B, M], plus L2 on ego embeddings.

        ``final``: this step's ``forward()`` output when the caller has it already (CREATE)."""
        user_final, item_final = self() if final is None else final
        u = user_final[users]  # [B, d]
        s_pos = (u * item_final[pos]).sum(-1)  # [B]
        neg2 = neg if neg.dim() == 2 else neg[:, None]  # [B, M]
        s_neg = torch.einsum("bd,bmd->bm", u, item_final[neg2])  # [B, M]
        bpr = F.softplus(s_neg - s_pos[:, None]).mean()  # -log sigmoid(s_pos - s_neg)
        B = len(users)
        ego_sq = (self.user_weight[users].pow(2).sum() + self.item_weight[pos].pow(2).sum()
                  + self.item_weight[neg2].pow(2).sum())
        return bpr + self.reg * ego_sq / (2 * B)

    def catalog_bpr_loss(self, users: torch.Tensor, pos: torch.Tensor,
                         final: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``bpr_loss`` with every item not in H_u as the negatives of each positive (u, i): the
        mean over them of softplus(s_uj - s_ui), averaged over the B positives, and the L2 term's
        negative part the mean of ||e_j||^2 over the same j (module docstring)."""
        user_final, item_final = self() if final is None else final
        u = user_final[users]  # [B, d]
        s_pos = (u * item_final[pos]).sum(-1)  # [B]
        bpr = catalog_mean(u, item_final, users, self.R_indptr, self.R_indices, shift=s_pos)
        ego_items = self.item_weight
        neg_sq = catalog_sq_mean(ego_items.pow(2).sum(-1), users, self.R_indptr, self.R_indices)
        ego_sq = (self.user_weight[users].pow(2).sum() + ego_items[pos].pow(2).sum()
                  + neg_sq.sum())
        return bpr.mean() + self.reg * ego_sq / (2 * len(users))


#: UltraGCN scores negatives through a dense [B, n_items] matmul while n_items <= this x M ...
DENSE_NEGATIVES_PER_SAMPLE = 50
#: ... and B x n_items <= this (256 MiB of float32 scores); otherwise it gathers [B, M, d] rows
DENSE_MAX_SCORES = 2**26


class UltraGCNEncoder(_GraphEncoder):
    """UltraGCN over a binary users x items matrix R; scores are plain dot products e_u . e_i."""

    def __init__(self, R: sp.csr_matrix, *, dim: int = 128, n_neighbours: int = 10,
                 w1: float = 1e-7, w2: float = 1.0, w3: float = 1e-7, w4: float = 1.0,
                 negative_weight: float = 200.0, gamma: float = 1e-4, lambda_ii: float = 1e-3,
                 init_std: float = 1e-3, reduction: str = "sum", item_embedding=None):
        n_users, n_items = R.shape
        super().__init__(n_users, n_items, dim, init_std, item_embedding)
        if reduction not in ("sum", "mean"):
            raise ConfigError(f"UltraGCN reduction must be 'sum' or 'mean', got {reduction!r}")
        self.reduction = reduction
        self.w1, self.w2, self.w3, self.w4 = w1, w2, w3, w4
        self.negative_weight, self.gamma, self.lambda_ii = negative_weight, gamma, lambda_ii
        d_u = np.asarray(R.sum(1), dtype=np.float64).ravel()  # [U] user degrees
        d_i = np.asarray(R.sum(0), dtype=np.float64).ravel()  # [I] item degrees
        # a user without edges is never a positive's user; 0 instead of inf keeps the buffer finite
        beta_u = np.where(d_u > 0, np.sqrt(d_u + 1) / np.maximum(d_u, 1), 0.0)
        beta_i = 1.0 / np.sqrt(d_i + 1)
        self.register_buffer("beta_u", torch.from_numpy(beta_u).float(), persistent=False)  # [U]
        self.register_buffer("beta_i", torch.from_numpy(beta_i).float(), persistent=False)  # [I]
        if n_neighbours > 0:
            nbr, omega = item_neighbours(R, n_neighbours)  # [I, k], [I, k]
        else:
            nbr, omega = torch.zeros(n_items, 0, dtype=torch.long), torch.zeros(n_items, 0)
        self.register_buffer("ii_neighbours", nbr, persistent=False)
        self.register_buffer("ii_weights", omega, persistent=False)
        _csr_buffers(self, R)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_weight, self.item_weight  # [U, d], [I, d]

    def constraint_weights(self, users, pos, neg) -> tuple[torch.Tensor, torch.Tensor]:
        """beta_u beta_i for positives [B] and beta_u beta_j for negatives [B, M]."""
        bu = self.beta_u[users]  # [B]
        return bu * self.beta_i[pos], bu[:, None] * self.beta_i[neg]

    def loss_terms(self, users: torch.Tensor, pos: torch.Tensor,
                   neg: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """L_O, L_C, L_I and norm (unweighted by lambda_ii and gamma) for users [B], pos [B] and
        neg [B, M] sampled negatives, or ``neg=None``: every item not in H_u (module docstring).

        Sums over the batch with the whole tables' norm (``reduction="sum"``), or per-positive
        means with the norm of the rows the batch touched (``reduction="mean"``)."""
        u = self.user_weight[users]  # [B, d]
        items = self.item_weight
        s_pos = (u * items[pos]).sum(-1)  # [B]
        bce_pos = F.softplus(-s_pos)  # -log sigmoid(s), [B]
        B = len(users)
        if neg is None:
            # per distinct user: mean_j of softplus(s_uj) and of beta_j softplus(s_uj), j not in H_u
            uniq, inv = torch.unique(users, return_inverse=True)
            weights = torch.stack([torch.ones_like(self.beta_i), self.beta_i], 1)  # [I, 2]
            means = catalog_mean(self.user_weight[uniq], items, uniq, self.R_indptr,
                                 self.R_indices, weights)[inv]  # [B, 2]
            neg_o, neg_c = self.w3 * means[:, 0], self.w4 * self.beta_u[users] * means[:, 1]
        else:
            M = neg.shape[1]
            dense = (self.n_items <= DENSE_NEGATIVES_PER_SAMPLE * M
                     and B * self.n_items <= DENSE_MAX_SCORES)
            if dense:  # small catalog: all B x I scores by one matmul, then pick the negatives
                # (the same numbers; ~20x faster on CPU than gathering B x M x d rows)
                s_neg = (u @ items.T).gather(1, neg)  # [B, I] -> [B, M]
            else:
                s_neg = torch.einsum("bd,bmd->bm", u, items[neg])  # [B, M]
            bce_neg = F.softplus(s_neg)  # -log(1 - sigmoid(s)), [B, M]
            c_neg = self.constraint_weights(users, pos, neg)[1]
            neg_o, neg_c = (self.w3 * bce_neg).mean(-1), (self.w4 * c_neg * bce_neg).mean(-1)
        c_pos = self.beta_u[users] * self.beta_i[pos]
        nw = self.negative_weight
        L_O = (self.w1 * bce_pos).sum() + nw * neg_o.sum()
        L_C = (self.w2 * c_pos * bce_pos).sum() + nw * neg_c.sum()
        nbr = self.ii_neighbours[pos]  # [B, k]
        s_nbr = torch.einsum("bd,bkd->bk", u, items[nbr])  # [B, k]
        L_I = (self.ii_weights[pos] * F.softplus(-s_nbr)).sum()
        if self.reduction == "sum":
            norm = (self.user_weight.pow(2).sum() + items.pow(2).sum()) / 2
            return {"L_O": L_O, "L_C": L_C, "L_I": L_I, "norm": norm}
        item_sq = items.pow(2).sum(-1)  # [I]; gathered below, never a [B, M, d] tensor
        neg_sq = (catalog_sq_mean(item_sq, users, self.R_indptr, self.R_indices) if neg is None
                  else item_sq[neg].mean(-1))  # [B]
        norm = (u.pow(2).sum() + item_sq[pos].sum() + neg_sq.sum()) / (2 * B)
        return {"L_O": L_O / B, "L_C": L_C / B, "L_I": L_I / B, "norm": norm}

    def loss(self, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor | None) -> torch.Tensor:
        """The weighted loss; ``neg=None``: catalogue-wide negatives (``loss_terms``)."""
        t = self.loss_terms(users, pos, neg)
        return t["L_O"] + t["L_C"] + self.lambda_ii * t["L_I"] + self.gamma * t["norm"]


class NegativeSampler:
    """Uniform negatives for users, drawn from a torch.Generator (so a seed repeats them exactly).

    With ``exclude_positives`` a negative that is one of the user's positives in R is redrawn, for
    at most ``max_rounds`` rounds (a user who has nearly every item may keep a few positives).
    The check is a binary search in the sorted keys user * n_items + item: O(nnz) memory.
    """

    def __init__(self, R: sp.csr_matrix, exclude_positives: bool = True, max_rounds: int = 10):
        self.n_items = R.shape[1]
        self.max_rounds = max_rounds
        self.keys = None
        if exclude_positives:
            coo = R.tocoo()
            keys = coo.row.astype(np.int64) * self.n_items + coo.col.astype(np.int64)
            self.keys = torch.from_numpy(np.sort(keys))  # [nnz]

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = users[:, None] * self.n_items + items  # [B, M]
        at = torch.searchsorted(self.keys, q).clamp_max(len(self.keys) - 1)
        return self.keys[at] == q

    def sample(self, users: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """users [B] (CPU) -> negatives [B, n] (CPU)."""
        neg = torch.randint(self.n_items, (len(users), n), generator=generator)
        if self.keys is None or len(self.keys) == 0:
            return neg
        for _ in range(self.max_rounds):
            hit = self.is_positive(users, neg)
            n_hit = int(hit.sum())
            if n_hit == 0:
                break
            neg[hit] = torch.randint(self.n_items, (n_hit,), generator=generator)
        return neg


def fold_in(items: torch.Tensor, pad: int, item_final: torch.Tensor) -> torch.Tensor:
    """Histories items [B, L] (padded with ``pad``) -> mean of their distinct items' rows [B, d].

    An empty history gives the zero vector (all scores 0). Memory is O(real items * d): only the
    real (row, item) pairs are gathered, never a [B, L, d] or [B, n_items] tensor.
    """
    B, n_items = len(items), item_final.shape[0]
    rows, cols = (items != pad).nonzero(as_tuple=True)
    keys = torch.unique(rows * n_items + items[rows, cols])  # distinct (row, item), sorted
    r, it = keys // n_items, keys % n_items
    summed = torch.zeros(B, item_final.shape[1], dtype=item_final.dtype, device=item_final.device)
    summed.index_add_(0, r, item_final[it])  # [B, d]
    count = torch.bincount(r, minlength=B).clamp_min(1).to(item_final.dtype)  # [B]
    return summed / count[:, None]


def user_states(users: torch.Tensor, items: torch.Tensor, pad: int, user_final: torch.Tensor,
                item_final: torch.Tensor, has_embedding: torch.Tensor) -> torch.Tensor:
    """The state [B, d] that scores a history against the catalog: state @ item_final.T.

    A training user with edges in the graph (``has_embedding[u]``) is its learned embedding
    ``user_final[u]``. Any other history (users[b] < 0, an index beyond the table, or a user with
    no edge in the graph, whose embedding was never trained) is folded in: the mean of its
    distinct items' final embeddings (``fold_in``).
    """
    n_users = user_final.shape[0]
    inside = (users >= 0) & (users < n_users)  # [B]
    known = inside & has_embedding[users.clamp(0, n_users - 1)]  # [B]
    states = user_final[users.clamp(0, n_users - 1)].clone()  # [B, d]
    unknown = (~known).nonzero(as_tuple=True)[0]
    if len(unknown):
        states[unknown] = fold_in(items[unknown], pad, item_final)
    return states
