"""Alignment losses between a user's sequential state h_u and graph embedding e_u (Section 3.5).

Both take a batch of paired views [B, d] and return a scalar.

- Barlow Twins (Zbontar et al. 2021; Eq. 2-3 of the paper): standardise each view over the batch
  (batch normalisation without affine parameters), C = z_loc^T z_glob / B [d, d], and
  L_BT = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.
  Eq. 3 is a sum over d x d entries: about d (62 at d = 64) for two unrelated views, which at
  w_BT = 0.1 outweighs a cross-entropy near 8 in the gradient it sends into the encoders.
  ``scale`` says which reading of Eq. 3 a run uses: ``"sum"`` is Eq. 3 as printed; ``"mean"``
  divides it by d (the on-diagonal term becomes the mean of (1 - C_ii)^2, the off-diagonal term
  lambda / d times its sum), so the loss lies in [0, 1] for unrelated views whatever d is and w_BT
  weighs it against the per-position cross-entropy directly.
- InfoNCE: cosine similarities over the batch at temperature tau, the matching pair as the
  positive and every other user of the batch as a negative, averaged over both directions. With
  ``rows`` (several states per user: CREATE's ``align_positions: all``), states h [N, d] are
  scored against the batch's users e [B, d], each state's own user (``rows[n]``) the positive and
  the batch's other users the negatives, in that direction only (a user has several positives).

Standardisation divides by sqrt(var + eps * mean var), the eps taken relative to the view's own
mean per-dimension variance (detached): a view of tiny scale (UltraGCN initialises its users at
std 1e-3, a variance of 1e-6) is standardised to unit variance like any other, where an absolute
eps of 1e-5 would shrink it to about 0.3 and cap every correlation C_ij at that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from create_model.params import BARLOW_SCALES

#: eps of the standardisation, relative to the view's mean per-dimension variance
EPS = 1e-5



def standardise(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """[B, d] -> zero mean, unit (biased) variance per dimension over the batch."""
    var = z.var(0, unbiased=False)  # [d]
    floor = eps * var.mean().detach() + torch.finfo(z.dtype).tiny  # relative to the view's scale
    return (z - z.mean(0)) / torch.sqrt(var + floor)


def barlow_twins(h: torch.Tensor, e: torch.Tensor, lambd: float = 5e-3,
                 scale: str = "sum") -> torch.Tensor:
    """Eq. 3 of views h [B, d] and e [B, d]; ``scale="mean"`` divides it by d (module docstring)."""
    if scale not in BARLOW_SCALES:
        raise ValueError(f"barlow_twins scale must be one of {BARLOW_SCALES}, got {scale!r}")
    B, d = h.shape
    c = standardise(h).T @ standardise(e) / B  # [d, d] cross-correlation
    diag = torch.diagonal(c)
    on_diag = (1.0 - diag).pow(2).sum()
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    loss = on_diag + lambd * off_diag
    return loss / d if scale == "mean" else loss


def info_nce(h: torch.Tensor, e: torch.Tensor, temperature: float = 0.2,
             rows: torch.Tensor | None = None) -> torch.Tensor:
    """Paired views h [B, d], e [B, d]; or, with ``rows`` [N], states h [N, d] of users e [B, d]."""
    logits = F.normalize(h, dim=1) @ F.normalize(e, dim=1).T / temperature  # [B or N, B]
    if rows is not None:
        return F.cross_entropy(logits, rows)
    labels = torch.arange(len(h), device=h.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

