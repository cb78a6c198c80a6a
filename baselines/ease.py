"""EASE (Steck 2019): a closed-form item-item model, B = -P / diag(P) with P = (X^T X + lambda I)^-1.

It needs a dense items x items matrix, so the catalog size is capped by ``max_items``: a larger
catalog is refused up front with the memory it would need, never an out-of-memory crash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recbench.errors import ConfigError
from recbench.models import Recommender, register


@register("EASE")
class EASE(Recommender):
    @dataclass
    class Params:
        l2: float = 100.0
        max_items: int = 40_000

    def fit(self, train, valid=None):
        n = train.n_items
        if n > self.params.max_items:
            gib = 3 * n * n * 8 / 2**30
            raise ConfigError(
                f"EASE needs a dense {n:,} x {n:,} item matrix (about {gib:,.0f} GiB to invert); "
                f"models.EASE.max_items is {self.params.max_items:,}. Drop EASE for this dataset "
                "or raise max_items if the machine has the memory."
            )
        X = train.csr()
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices(n)] += self.params.l2
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices(n)] = 0.0
        self.B = torch.from_numpy(B.astype(np.float32))  # [n_items, n_items]

    def score(self, batch):  # [B, n_items]
        return batch.multi_hot() @ self.B.to(batch.items.device)
