"""PureSVD with popularity normalisation, scoring a history by folding in: s = h V V^T.

The user-item matrix A (binary) has its columns scaled by ||a_i||^(scaling - 1) before a truncated
SVD of rank ``rank`` (scaling = 1 is plain PureSVD; lower values lift unpopular items, as in
EigenRec / scaled PureSVD). The right singular vectors V [n_items, rank] are the model; a history
is projected onto them, so a user unseen in training is scored like any other.
"""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.extmath import randomized_svd

from baselines.params import SVDParams
from recbench.models import Recommender, register


@register("SVD")
class PureSVD(Recommender):
    Params = SVDParams

    def fit(self, train, valid=None):
        A = train.csr()  # [n_users, n_items] binary
        norms = np.sqrt(np.asarray(A.sum(0)).ravel())
        scale = np.where(norms > 0, norms, 1.0) ** (self.params.scaling - 1.0)
        rank = min(self.params.rank, min(A.shape) - 1)
        _, _, vt = randomized_svd(A @ sp.diags(scale), n_components=rank,
                                  n_iter=self.params.n_iter, random_state=self.seed)
        self.V = torch.from_numpy(np.ascontiguousarray(vt.T, dtype=np.float32))  # [n_items, r]

    def score(self, batch):  # [B, n_items]
        V = self.V.to(batch.items.device)
        return (batch.multi_hot() @ V) @ V.T
