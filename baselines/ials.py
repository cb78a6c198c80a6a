"""iALS (Hu, Koren and Volinsky 2008) through the ``implicit`` library.

Training uses implicit's conjugate-gradient ALS on the binary user-item matrix with confidence
``alpha``. A history is scored by recomputing its user factor against the fixed item factors
(implicit's batched least-squares fold-in), then s = x_u Y^T.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from baselines.params import IALSParams
from recbench.models import Recommender, register


@register("iALS")
class IALS(Recommender):
    Params = IALSParams

    def fit(self, train, valid=None):
        p = self.params
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS must not
            self.model = AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                iterations=p.iterations, random_state=self.seed,
                num_threads=p.num_threads or torch.get_num_threads(),
            )
            self.model.fit(train.csr(), show_progress=False)
        self.item_factors = torch.from_numpy(np.asarray(self.model.item_factors))
        self.n_items = train.n_items

    def fitted_state(self):  # implicit's model object is rebuilt around the item factors
        return {"item_factors": self.item_factors, "n_items": self.n_items}

    def load_fitted_state(self, state, train):
        p = self.params
        self.model = AlternatingLeastSquares(factors=p.factors, regularization=p.regularization,
                                             alpha=p.alpha, iterations=p.iterations,
                                             random_state=self.seed, num_threads=1)
        self.model.item_factors = state["item_factors"].numpy()
        self.item_factors, self.n_items = state["item_factors"], state["n_items"]

    def score(self, batch):  # [B, n_items]
        mask = batch.mask.cpu().numpy()
        rows = np.nonzero(mask)[0]
        cols = batch.items.cpu().numpy()[mask]
        hist = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                             shape=(len(mask), self.n_items))
        hist.sum_duplicates()
        hist.data[:] = 1.0
        users = self.model.recalculate_user(np.arange(len(mask)), hist)  # [B, factors]
        return torch.from_numpy(users).to(batch.items.device) @ self.item_factors.to(batch.items.device).T
