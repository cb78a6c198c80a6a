"""Next-item losses over the catalog: full softmax cross-entropy and scalable cross-entropy (SCE).

Both take model states [N, d] (one per predicted position, padding already dropped), the output
item table [C, d] and targets [N] (item indices in [0, C)).

Full CE scores every state against every item: an [N, C] logit matrix, which for a batch of
128 sequences of length 200 and a catalog of 200k items is 5.1e9 floats (20 GiB, twice that with
its gradient).

SCE (Mezentsev et al., RecSys 2024, "Scalable Cross-Entropy Loss for Sequential Recommendations
with Large Item Catalogs") keeps the positive logit exact and replaces the full sum over
negatives by the hardest ones, found without the [N, C] matrix:

1. draw a random projection omega [d, n_buckets]; bucket b is the direction omega[:, b];
2. per bucket, take the ``bucket_size_x`` states and the ``bucket_size_y`` items with the largest
   projection on that direction (states and items pointing the same way have large dot products);
3. per bucket, score its states against its items: [n_buckets, size_x, size_y] logits; an item
   equal to the state's own target is masked out (it is the positive, not a negative);
4. a state's loss in a bucket is the CE of its positive against that bucket's negatives; a state
   chosen by several buckets takes its largest (hardest) bucket loss. Taking the maximum, not a
   sum or union, means an item found by two buckets never counts twice;
5. the loss is the mean over states chosen by at least one bucket.

Peak memory is O(n_buckets * (N + C + size_x * size_y)), no N x C term. Each per-state SCE loss is
a lower bound of its full CE loss (a log-sum-exp over a subset of the same terms), and with
``n_buckets=1``, ``bucket_size_x >= N`` and ``bucket_size_y >= C`` (every bucket covering every
state and every item; sizes are clipped to N and C) SCE equals full CE exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: SCE parameters under which it equals full CE (sizes are clipped to the batch and catalog)
SCE_EXACT = {"n_buckets": 1, "bucket_size_x": 2**62, "bucket_size_y": 2**62}


#: float32 [N, C] matrices alive at full CE's peak: the logits' log-softmax, its gradient and the
#: gradient of the logits (the backward of ``F.cross_entropy``)
FULL_CE_COPIES = 3


def full_ce_bytes(n_states: int, n_items: int, dim: int = 0, copies: int = FULL_CE_COPIES) -> int:
    """Peak bytes of ``full_ce`` over ``n_states`` states and ``n_items`` items of dimension
    ``dim``, forward and backward: ``copies`` float32 [N, C] matrices plus the gradients of the
    states and the item table. For a batch of 128 x 200 positions, 181,304 items and d = 64 that
    is 52.0 GiB; ``recbench.memory.require`` checks it before training starts. Measured peaks
    (``benchmarks/run_all.py``, section 3) stay within it."""
    n, c = int(n_states), int(n_items)
    return 4 * (copies * n * c + 2 * (n + c) * int(dim))


#: float32 [n_buckets, size_x, size_y] matrices alive at SCE's peak: the negative logits, their
#: masked copy, the concatenated logits, logsumexp's exponentials, and in the backward the
#: gradients of the logits and of the negatives (``scalable_ce_per_state``)
SCE_COPIES = 6


def sce_bytes(n_states: int, n_items: int, dim: int, n_buckets: int, bucket_size_x: int,
              bucket_size_y: int, copies: int = SCE_COPIES) -> int:
    """Peak bytes of ``scalable_ce`` over ``n_states`` states and ``n_items`` items, forward and
    backward, as ``scalable_ce_per_state`` allocates them: ``copies`` float32 and one bool
    (``is_positive``) [n_b, size_x, size_y] matrices, the projections of the states and items
    ([N, n_b], [C, n_b] float32) with the top-k indices, the gathered rows x [n_b, size_x, d]
    and y [n_b, size_y, d] with their gradients, and the gradients of the states and the item
    table. Sizes are clipped to N and C, as the loss clips them."""
    n, c, d, b = int(n_states), int(n_items), int(dim), int(n_buckets)
    x, y = min(int(bucket_size_x), n), min(int(bucket_size_y), c)
    return ((4 * copies + 1) * b * x * (y + 1) + 4 * b * (n + c) + 8 * b * (x + y)
            + 4 * 2 * b * (x + y) * d + 4 * 2 * (n + c) * d)


def full_ce(states: torch.Tensor, item_weights: torch.Tensor, targets: torch.Tensor,
            reduction: str = "mean") -> torch.Tensor:
    """Softmax cross-entropy over the whole catalog. states [N, d], item_weights [C, d], targets [N]."""
    logits = states @ item_weights.T  # [N, C]
    return F.cross_entropy(logits, targets, reduction=reduction)


def scalable_ce_per_state(
    states: torch.Tensor,
    item_weights: torch.Tensor,
    targets: torch.Tensor,
    *,
    n_buckets: int,
    bucket_size_x: int,
    bucket_size_y: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-state SCE loss [N] (0 where not covered) and whether a bucket chose the state [N] bool.

    ``generator`` (a CPU torch.Generator) draws the projection, so a seeded run repeats exactly.
    """
    if min(n_buckets, bucket_size_x, bucket_size_y) < 1:
        raise ValueError(f"SCE needs n_buckets, bucket_size_x, bucket_size_y >= 1, got "
                         f"{n_buckets}, {bucket_size_x}, {bucket_size_y}")
    N, d = states.shape
    C = item_weights.shape[0]
    size_x, size_y = min(bucket_size_x, N), min(bucket_size_y, C)
    with torch.no_grad():  # choosing buckets is not differentiated
        omega = torch.randn(d, n_buckets, generator=generator).to(states)  # [d, n_b]
        top_x = (states.detach() @ omega).topk(size_x, dim=0).indices.T  # [n_b, size_x]
        top_y = (item_weights.detach() @ omega).topk(size_y, dim=0).indices.T  # [n_b, size_y]
        is_positive = top_y[:, None, :] == targets[top_x][:, :, None]  # [n_b, size_x, size_y]

    pos = (states * item_weights[targets]).sum(-1)  # [N] exact positive logits
    x = states[top_x]  # [n_b, size_x, d]
    y = item_weights[top_y]  # [n_b, size_y, d]
    neg = (x @ y.transpose(1, 2)).float()  # [n_b, size_x, size_y]
    neg = neg.masked_fill(is_positive, float("-inf"))
    pos_b = pos[top_x].float()  # [n_b, size_x]
    logits = torch.cat([pos_b[..., None], neg], dim=2)  # [n_b, size_x, 1 + size_y]
    bucket_loss = torch.logsumexp(logits, dim=2) - pos_b  # [n_b, size_x], >= 0

    flat = top_x.reshape(-1)  # [n_b * size_x] state index of each bucket slot
    loss = torch.zeros(N, dtype=bucket_loss.dtype, device=states.device)
    loss = loss.scatter_reduce(0, flat, bucket_loss.reshape(-1), reduce="amax", include_self=False)
    covered = torch.zeros(N, dtype=torch.bool, device=states.device)
    covered[flat] = True
    return loss, covered  # [N], [N]


def scalable_ce(states: torch.Tensor, item_weights: torch.Tensor, targets: torch.Tensor, *,
                n_buckets: int, bucket_size_x: int, bucket_size_y: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean SCE loss over the states some bucket chose (see the module docstring)."""
    loss, covered = scalable_ce_per_state(states, item_weights, targets, n_buckets=n_buckets,
                                          bucket_size_x=bucket_size_x,
                                          bucket_size_y=bucket_size_y, generator=generator)
    return loss[covered].mean()
