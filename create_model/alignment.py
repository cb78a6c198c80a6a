"""Alignment losses between a user's sequential state h_u and graph embedding e_u (Section 3.5).

Both take a batch of paired views [B, d] and return a scalar.

- Barlow Twins (Zbontar et al. 2021; Eq. 2-3 of the paper): standardise each view over the batch
  (batch normalisation without affine parameters), C = z_loc^T z_glob / B [d, d], and
  L_BT = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.
- InfoNCE: cosine similarities over the batch at temperature tau, the matching pair as the
  positive and every other user of the batch as a negative, averaged over both directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """[B, d] -> zero mean, unit (biased) variance per dimension over the batch."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def barlow_twins(h: torch.Tensor, e: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    B = h.shape[0]
    c = standardise(h).T @ standardise(e) / B  # [d, d] cross-correlation
    on_diag = (1.0 - torch.diagonal(c)).pow(2).sum()
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag


def info_nce(h: torch.Tensor, e: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    logits = F.normalize(h, dim=1) @ F.normalize(e, dim=1).T / temperature  # [B, B]
    labels = torch.arange(len(h), device=h.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


ALIGNMENTS = ("none", "contrastive", "barlow")
