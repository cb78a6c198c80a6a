"""LightGCN and UltraGCN: propagation equals a dense reference, they learn, they repeat exactly."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbench.evaluation import evaluate
from recbench.models import build_model
from recbench.nn.graph_encoders import LightGCNEncoder

FAST = {"LightGCN": {"epochs": 40, "progress": False},
        "UltraGCN": {"epochs": 40, "dim": 64, "negative_num": 50, "progress": False}}


def test_lightgcn_propagation_equals_dense_reference():
    R = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))
    torch.manual_seed(0)
    enc = LightGCNEncoder(R, dim=5, n_layers=3)
    users, items = enc()
    A = np.block([[np.zeros((3, 3)), R.toarray()], [R.toarray().T, np.zeros((4, 4))]])
    d = A.sum(1)
    A_hat = A / np.sqrt(np.outer(d, d))
    E = enc.ego().detach().double().numpy()
    layers, x = [E], E
    for _ in range(3):
        x = A_hat @ x
        layers.append(x)
    ref = np.mean(layers, axis=0)
    np.testing.assert_allclose(torch.cat([users, items]).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def fitted(small_split):
    out = {}
    for name in ["LightGCN", "UltraGCN", "PopRnd"]:
        model = build_model(name, FAST.get(name, {}), seed=0)
        model.fit(small_split.train, small_split.valid)
        out[name] = (model, evaluate(model, small_split.test))
    return out


@pytest.mark.parametrize("name", ["LightGCN", "UltraGCN"])
def test_beats_poprnd(fitted, name):
    assert fitted[name][1][0]["ndcg@10"] > 3 * fitted["PopRnd"][1][0]["ndcg@10"]


@pytest.mark.parametrize("name", ["LightGCN", "UltraGCN"])
def test_same_seed_repeats_exactly(small_split, fitted, name):
    model = build_model(name, FAST[name], seed=0)
    model.fit(small_split.train, small_split.valid)
    assert evaluate(model, small_split.test)[1].equals(fitted[name][1][1])


@pytest.mark.parametrize("name", ["LightGCN", "UltraGCN"])
def test_history_without_a_user_is_scored(small_split, fitted, name):
    model = fitted[name][0]
    batch = small_split.test.batch(0, 16)
    batch.users[:] = -1
    scores = model.score(batch)
    assert scores.shape == (16, small_split.n_items) and torch.isfinite(scores).all()
    assert scores.std(1).min() > 0  # folded in from the history, not a constant
