"""Ranking metrics with one target per user, computed from top-K lists on the scores' device.

Definitions (K in {10, 100}):
- NDCG@K = 1 / log2(rank + 2) when the target is at 0-based position ``rank`` < K of the list,
  else 0 (one relevant item, so IDCG = 1);
- Recall@K = 1 when the target is in the top-K list, else 0 (the hit rate, with one target);
- Coverage@K = distinct items over all users' top-K lists / catalog size.
Ties in scores are broken deterministically: equal scores rank the lower item index first.
A target of -1 (an item never seen in training) is a miss. recbench.evaluation computes them in
both protocols, history items filtered from the lists or not, from the same scores.
"""

from __future__ import annotations

import math

import torch


def topk_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k item indices per row, [B, k], ordered by (score desc, index asc).

    ``torch.topk`` leaves the choice among equal scores to the implementation. We ask it for k + 1
    items: where the (k+1)-th score equals the k-th, a tie crosses the list's end and that row is
    rebuilt by index order; every other row keeps topk's answer at no extra pass over the scores.
    """
    n = scores.shape[1]
    k = min(k, n)
    vals, idx = torch.topk(scores, min(k + 1, n), dim=1)
    if k < n:
        boundary_tie = vals[:, k] == vals[:, k - 1]
        vals, idx = vals[:, :k], idx[:, :k]
    else:
        boundary_tie = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    kth = vals[:, -1:]
    if boundary_tie.any():
        rows = boundary_tie.nonzero().squeeze(1)
        s = scores[rows]
        above = s > kth[rows]
        need = k - above.sum(1, keepdim=True)
        chosen = above | ((s == kth[rows]) & ((s == kth[rows]).cumsum(1) <= need))
        # exactly k chosen per row, in ascending index order
        idx_fixed = chosen.nonzero()[:, 1].view(len(rows), k)
        idx = idx.clone()
        idx[rows] = idx_fixed
        vals = torch.gather(scores, 1, idx)
    # order by score descending, lower index first among equals (stable sort on sorted indices)
    idx, perm = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, perm)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return torch.gather(idx, 1, order)


def target_positions(top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based position of each target in its top list, or -1 when absent. [B]"""
    hit = top == targets.unsqueeze(1)
    pos = hit.float().argmax(1)
    return torch.where(hit.any(1), pos, torch.full_like(pos, -1))


def ndcg_recall(pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user NDCG@k and Recall@k from target positions in a list of length >= k."""
    hit = (pos >= 0) & (pos < k)
    ndcg = torch.where(hit, 1.0 / torch.log2(pos.double() + 2.0), torch.zeros_like(pos, dtype=torch.float64))
    return ndcg, hit.double()


def ndcg_reference(rank: int, k: int) -> float:
    """Scalar NDCG@k for a 0-based rank (used by tests and documentation)."""
    return 1.0 / math.log2(rank + 2) if 0 <= rank < k else 0.0
