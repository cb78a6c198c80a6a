"""PopRnd: K items sampled without replacement with probability proportional to train popularity.

Sampling without replacement proportional to p is the top-K of log p + Gumbel noise (the
Gumbel-top-k trick), so PopRnd is a scorer like any other model. Items of the user's own history
are excluded.
"""

from __future__ import annotations

import torch

from baselines.params import PopRndParams
from recbench.models import Recommender, register


@register("PopRnd")
class PopRnd(Recommender):
    Params = PopRndParams

    def fit(self, train, valid=None):
        self.log_p = torch.from_numpy(train.popularity()).double().log()  # [n_items], -inf if unseen
        self.generator = torch.Generator().manual_seed(self.seed)

    def score(self, batch):  # [B, n_items]
        B, N = len(batch.lengths), len(self.log_p)
        u = torch.rand(B, N, generator=self.generator, dtype=torch.float64).clamp_min(1e-300)
        scores = self.log_p - torch.log(-torch.log(u))
        return scores.masked_fill(batch.multi_hot().bool(), float("-inf")).float()
