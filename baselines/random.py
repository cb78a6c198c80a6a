"""Random: every catalog item scored uniformly at random (seeded, so runs repeat exactly)."""

from __future__ import annotations

import torch

from baselines.params import RandomParams
from recbench.models import Recommender, register


@register("Random")
class RandomRecommender(Recommender):
    Params = RandomParams

    def fit(self, train, valid=None):
        self.n_items = train.n_items
        self.generator = torch.Generator().manual_seed(self.seed)

    def score(self, batch):  # [B, n_items]
        return torch.rand(len(batch.lengths), self.n_items, generator=self.generator)
