"""EASE (Steck 2019): a closed-form item-item model, B = -P / diag(P) with P = (X^T X + lambda I)^-1.

It needs dense items x items matrices, so the catalog size is capped by ``max_items``, and a
catalog whose matrices do not fit in the memory available is refused up front
(``recbench.memory.require``) with the memory it would need, never an out-of-memory crash.
"""

from __future__ import annotations


import numpy as np
import torch

from baselines.params import EASEParams
from recbench.errors import ConfigError
from recbench.memory import require
from recbench.models import Recommender, register


@register("EASE")
class EASE(Recommender):
    Params = EASEParams

    @staticmethod
    def memory_bytes(n_items: int) -> int:
        """Peak of ``fit``: the Gram matrix, LAPACK's work copy, the inverse, B and its float32
        copy: about four float64 n x n matrices."""
        return 4 * n_items * n_items * 8

    def fit(self, train, valid=None):
        n = train.n_items
        if n > self.params.max_items:
            gib = self.memory_bytes(n) / 2**30
            raise ConfigError(
                f"EASE needs a dense {n:,} x {n:,} item matrix (about {gib:,.0f} GiB to invert); "
                f"models.EASE.max_items is {self.params.max_items:,}. Drop EASE for this dataset "
                "or raise max_items if the machine has the memory."
            )
        require(self.memory_bytes(n), f"EASE on {n:,} items (dense {n:,} x {n:,} float64 Gram "
                "matrix, its inverse and the weights)",
                "Drop EASE for this dataset (datasets.<name>.exclude_models: [EASE]) or use a "
                "machine with more memory")
        X = train.csr()
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices(n)] += self.params.l2
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices(n)] = 0.0
        self.B = torch.from_numpy(B.astype(np.float32))  # [n_items, n_items]

    def score(self, batch):  # [B, n_items]
        return batch.multi_hot() @ self.B.to(batch.items.device)
