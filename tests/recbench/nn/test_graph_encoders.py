"""Graph encoders against direct reference computations on tiny tensors.

LightGCN: BPR + ego L2 equals its formula. UltraGCN: every loss term (L_O, L_C, L_I, norm) equals
a per-sample loop over the official code's formulas, on both the dense and the gathered scoring
path. Negative sampling, fold-in and a shared item table behave as documented.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recbench.errors import ConfigError
from recbench.graph import item_neighbours
from recbench.nn import graph_encoders
from recbench.nn.graph_encoders import (LightGCNEncoder, NegativeSampler, UltraGCNEncoder,
                                        fold_in, user_states)

# users x items: 3 users, 5 items; item 4 has no edge
R = sp.csr_matrix(np.array([[1, 1, 0, 1, 0],
                            [0, 1, 1, 0, 0],
                            [1, 0, 1, 1, 0]], dtype=np.float32))
USERS = torch.tensor([0, 1, 2, 0])
POS = torch.tensor([1, 2, 0, 3])
NEG = torch.tensor([[2, 4, 4], [0, 3, 4], [1, 4, 1], [2, 2, 4]])


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_lightgcn_bpr_loss_equals_its_formula():
    torch.manual_seed(0)
    enc = LightGCNEncoder(R, dim=4, n_layers=2, reg=0.3)
    neg = NEG[:, 0]
    loss = enc.bpr_loss(USERS, POS, neg).item()
    uf, itf = (t.detach().double().numpy() for t in enc())
    E_u, E_i = enc.user_weight.detach().double().numpy(), enc.item_weight.detach().double().numpy()
    bpr, sq = 0.0, 0.0
    for u, i, j in zip(USERS.tolist(), POS.tolist(), neg.tolist()):
        bpr -= log_sigmoid(uf[u] @ itf[i] - uf[u] @ itf[j])
        sq += E_u[u] @ E_u[u] + E_i[i] @ E_i[i] + E_i[j] @ E_i[j]
    B = len(USERS)
    assert loss == pytest.approx(bpr / B + 0.3 * sq / (2 * B), rel=1e-5)


def reference_ultragcn_terms(enc, users, pos, neg):
    """The official main.py formulas, one positive at a time, in float64."""
    E_u = enc.user_weight.detach().double().numpy()
    E_i = enc.item_weight.detach().double().numpy()
    d_u, d_i = np.asarray(R.sum(1)).ravel(), np.asarray(R.sum(0)).ravel()
    beta_u, beta_i = np.sqrt(d_u + 1) / d_u, 1 / np.sqrt(d_i + 1)
    nbr, omega = item_neighbours(R, enc.ii_neighbours.shape[1])
    L_O = L_C = L_I = 0.0
    for b, (u, i) in enumerate(zip(users.tolist(), pos.tolist())):
        bce_pos = -log_sigmoid(E_u[u] @ E_i[i])
        L_O += enc.w1 * bce_pos
        L_C += enc.w2 * beta_u[u] * beta_i[i] * bce_pos
        js = neg[b].tolist()
        bce_neg = [-log_sigmoid(-(E_u[u] @ E_i[j])) for j in js]
        L_O += enc.negative_weight * np.mean([enc.w3 * x for x in bce_neg])
        L_C += enc.negative_weight * np.mean(
            [enc.w4 * beta_u[u] * beta_i[j] * x for j, x in zip(js, bce_neg)])
        for k, w in zip(nbr[i].tolist(), omega[i].tolist()):
            L_I += w * -log_sigmoid(E_u[u] @ E_i[k])
    norm = ((E_u ** 2).sum() + (E_i ** 2).sum()) / 2
    return {"L_O": L_O, "L_C": L_C, "L_I": L_I, "norm": norm}


@pytest.mark.parametrize("dense", [True, False])
def test_ultragcn_loss_terms_equal_a_direct_reference(monkeypatch, dense):
    if not dense:  # force the gathered [B, M, d] path that large catalogs take
        monkeypatch.setattr(graph_encoders, "DENSE_MAX_SCORES", 0)
    torch.manual_seed(0)
    # large init so that scores are far from 0 and every term matters; w1, w3 not negligible
    enc = UltraGCNEncoder(R, dim=4, n_neighbours=2, w1=0.3, w2=1.5, w3=0.7, w4=2.0,
                          negative_weight=5.0, gamma=0.01, lambda_ii=0.2, init_std=0.5)
    got = {k: v.item() for k, v in enc.loss_terms(USERS, POS, NEG).items()}
    ref = reference_ultragcn_terms(enc, USERS, POS, NEG)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-5), key
    total = ref["L_O"] + ref["L_C"] + 0.2 * ref["L_I"] + 0.01 * ref["norm"]
    assert enc.loss(USERS, POS, NEG).item() == pytest.approx(total, rel=1e-5)


def test_ultragcn_mean_reduction_is_per_positive_and_regularises_touched_rows():
    """CREATE's reading: the sums divided by B, and an L2 term on the rows the step touched
    only, never the whole (shared) item table."""
    torch.manual_seed(0)
    kw = dict(dim=4, n_neighbours=2, negative_weight=5.0, gamma=0.01, lambda_ii=0.2, init_std=0.5)
    summed = UltraGCNEncoder(R, **kw)
    mean = UltraGCNEncoder(R, reduction="mean", **kw)
    mean.load_state_dict(summed.state_dict())
    s, m = summed.loss_terms(USERS, POS, NEG), mean.loss_terms(USERS, POS, NEG)
    for key in ("L_O", "L_C", "L_I"):
        assert m[key].item() == pytest.approx(s[key].item() / len(USERS), rel=1e-6), key
    u, items = mean.user_weight, mean.item_weight
    sq = items.pow(2).sum(-1)
    expected = (u[USERS].pow(2).sum() + sq[POS].sum() + sq[NEG].mean(-1).sum()) / (2 * len(USERS))
    assert m["norm"].item() == pytest.approx(expected.item(), rel=1e-6)
    only_norm = UltraGCNEncoder(R, reduction="mean", **{**kw, "n_neighbours": 0})
    users, pos, neg = torch.tensor([0]), torch.tensor([1]), torch.tensor([[2]])
    only_norm.loss_terms(users, pos, neg)["norm"].backward()
    untouched = [0, 3, 4]  # neither the positive nor the negative
    assert only_norm.item_emb.weight.grad[untouched].abs().sum() == 0
    with pytest.raises(ConfigError, match="reduction"):
        UltraGCNEncoder(R, reduction="max")


def test_ultragcn_official_defaults():
    enc = UltraGCNEncoder(R)
    assert (enc.dim, enc.ii_neighbours.shape[1], enc.w1, enc.w2, enc.w3, enc.w4) == \
        (128, 10, 1e-7, 1.0, 1e-7, 1.0)
    assert (enc.negative_weight, enc.gamma, enc.lambda_ii) == (200.0, 1e-4, 1e-3)


def test_negative_sampler_excludes_positives_and_repeats():
    # 40 items, 10 positives per user: a draw stays positive after 10 rounds w.p. 0.25^11 ~ 2e-7
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(3), 10)
    cols = np.concatenate([rng.choice(40, 10, replace=False) for _ in range(3)])
    R40 = sp.csr_matrix((np.ones(30, dtype=np.float32), (rows, cols)), shape=(3, 40))
    sampler = NegativeSampler(R40, exclude_positives=True)
    users = torch.tensor([0, 1, 2] * 50)
    neg = sampler.sample(users, 20, torch.Generator().manual_seed(1))
    assert neg.shape == (150, 20) and neg.min() >= 0 and neg.max() < 40
    assert not sampler.is_positive(users, neg).any()
    assert torch.equal(neg, sampler.sample(users, 20, torch.Generator().manual_seed(1)))
    plain = NegativeSampler(R40, exclude_positives=False)
    drawn = plain.sample(users, 20, torch.Generator().manual_seed(1))
    assert sampler.is_positive(users, drawn).float().mean() > 0.15  # ~1/4 without exclusion


def test_fold_in_is_the_mean_of_distinct_history_items():
    item_final = torch.arange(10.0).view(5, 2)  # item i -> [2i, 2i + 1]
    pad = 5
    items = torch.tensor([[pad, 1, 3, 1],   # distinct {1, 3}
                          [pad, pad, pad, pad],  # empty history
                          [0, 4, 2, 4]])
    out = fold_in(items, pad, item_final)
    expected = torch.stack([(item_final[1] + item_final[3]) / 2, torch.zeros(2),
                            (item_final[0] + item_final[2] + item_final[4]) / 3])
    assert torch.allclose(out, expected)


def test_user_states_use_the_user_or_fold_in():
    user_final = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    item_final = torch.arange(10.0).view(5, 2)
    has = torch.tensor([True, True, False])  # user 2 has no edge
    items = torch.tensor([[5, 1], [0, 2], [3, 4], [1, 1]])
    users = torch.tensor([1, -1, 2, 7])  # known, no user, no edge, beyond the table
    out = user_states(users, items, 5, user_final, item_final, has)
    assert torch.equal(out[0], user_final[1])
    assert torch.allclose(out[1], (item_final[0] + item_final[2]) / 2)
    assert torch.allclose(out[2], (item_final[3] + item_final[4]) / 2)
    assert torch.allclose(out[3], item_final[1])


@pytest.mark.parametrize("cls", [LightGCNEncoder, UltraGCNEncoder])
def test_shared_item_table_is_used_and_trained(cls):
    table = nn.Embedding(5 + 2, 8)  # catalog + padding + [MASK] rows, owned elsewhere
    enc = cls(R, dim=8, item_embedding=table)
    assert enc.item_weight.data_ptr() == table.weight.data_ptr()
    assert enc.item_weight.shape == (5, 8)
    assert sum(p is table.weight for p in enc.parameters()) == 1
    loss = (enc.bpr_loss(USERS, POS, NEG[:, 0]) if cls is LightGCNEncoder
            else enc.loss(USERS, POS, NEG))
    loss.backward()
    assert table.weight.grad[:5].abs().sum() > 0
    assert table.weight.grad[5:].abs().sum() == 0  # rows after the catalog are untouched


def test_shared_item_table_of_the_wrong_size_is_refused():
    with pytest.raises(ConfigError, match="at least 5 rows"):
        LightGCNEncoder(R, dim=8, item_embedding=nn.Embedding(4, 8))
    with pytest.raises(ConfigError, match="dim 8"):
        UltraGCNEncoder(R, dim=8, n_neighbours=2, item_embedding=nn.Embedding(5, 16))


# --- catalogue-wide negatives: equal to a brute-force mean over the non-interacted items -------

def non_interacted(u):
    return [j for j in range(R.shape[1]) if R[u, j] == 0]


@pytest.fixture(params=[2**24, 3], ids=["one-block", "blocks-of-1"])
def block(request, monkeypatch):
    """The scores in one [B, n_items] block, or one item per block (3 // B rows = 1)."""
    monkeypatch.setattr(graph_encoders, "CATALOG_BLOCK", request.param)


def grads(loss, params):
    return [g.clone() for g in torch.autograd.grad(loss, params, retain_graph=True)]


def test_lightgcn_catalog_bpr_equals_a_brute_force_mean(block):
    torch.manual_seed(0)
    enc = LightGCNEncoder(R, dim=4, n_layers=2, reg=0.3, init_std=0.7).double()
    params = [enc.user_emb.weight, enc.item_emb.weight]
    loss = enc.catalog_bpr_loss(USERS, POS)

    uf, itf = enc()
    E_u, E_i = enc.user_weight, enc.item_weight
    bpr, sq = 0.0, 0.0
    for u, i in zip(USERS.tolist(), POS.tolist()):
        js = non_interacted(u)  # user 0: items 2 and 4; user 1: 0, 3, 4; user 2: 1, 4
        bpr = bpr + sum(F.softplus(uf[u] @ itf[j] - uf[u] @ itf[i]) for j in js) / len(js)
        sq = sq + E_u[u] @ E_u[u] + E_i[i] @ E_i[i] + sum(E_i[j] @ E_i[j] for j in js) / len(js)
    B = len(USERS)
    brute = bpr / B + 0.3 * sq / (2 * B)
    assert loss.item() == pytest.approx(brute.item(), rel=1e-10)
    for got, want in zip(grads(loss, params), grads(brute, params)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ultragcn_catalog_negatives_equal_a_brute_force_mean(block, reduction):
    """L_O's and L_C's negative terms averaged over every j not in H_u; with reduction "mean" the
    negatives' L2 term too; the positives' terms and L_I as with sampled negatives."""
    torch.manual_seed(0)
    enc = UltraGCNEncoder(R, dim=4, n_neighbours=2, w1=0.3, w2=1.5, w3=0.7, w4=2.0,
                          negative_weight=5.0, gamma=0.01, lambda_ii=0.2, init_std=0.5,
                          reduction=reduction).double()
    params = [enc.user_emb.weight, enc.item_emb.weight]
    got = enc.loss_terms(USERS, POS, None)
    U, Itm = enc.user_weight, enc.item_weight
    bu, bi = enc.beta_u.double(), enc.beta_i.double()
    pos_o = pos_c = neg_o = neg_c = neg_sq = 0.0
    for u, i in zip(USERS.tolist(), POS.tolist()):
        bce_pos = F.softplus(-(U[u] @ Itm[i]))
        pos_o = pos_o + enc.w1 * bce_pos
        pos_c = pos_c + enc.w2 * bu[u] * bi[i] * bce_pos
        js = non_interacted(u)
        bce = [F.softplus(U[u] @ Itm[j]) for j in js]
        neg_o = neg_o + enc.w3 * sum(bce) / len(js)
        neg_c = neg_c + enc.w4 * bu[u] * sum(bi[j] * x for j, x in zip(js, bce)) / len(js)
        neg_sq = neg_sq + sum(Itm[j] @ Itm[j] for j in js) / len(js)
    sampled = enc.loss_terms(USERS, POS, NEG)  # L_I and the norm's other parts do not change
    B = len(USERS)
    scale = 1.0 if reduction == "sum" else 1.0 / B
    brute = {"L_O": (pos_o + 5.0 * neg_o) * scale, "L_C": (pos_c + 5.0 * neg_c) * scale,
             "L_I": sampled["L_I"], "norm": sampled["norm"]}
    if reduction == "mean":
        sampled_sq = Itm.pow(2).sum(-1)[NEG].mean(-1).sum()
        brute["norm"] = sampled["norm"] + (neg_sq - sampled_sq) / (2 * B)
    for key, value in brute.items():
        assert got[key].item() == pytest.approx(value.item(), rel=1e-10), key
        for g, w in zip(grads(got[key], params), grads(value, params)):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_catalog_mean_skips_exactly_each_users_items():
    """One [B, n_items] product, the users' own items masked: a user with every item but one
    averages over that one; weights and shift enter as written."""
    R1 = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    q = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=torch.float64)
    items = torch.tensor([[1.0, 1.0], [2.0, 0.0], [-1.0, 3.0], [0.0, -1.0]], dtype=torch.float64)
    w = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    shift = torch.tensor([0.5, -1.0], dtype=torch.float64)
    out = graph_encoders.catalog_mean(q, items, torch.tensor([0, 1]),
                                      torch.from_numpy(R1.indptr.astype(np.int64)),
                                      torch.from_numpy(R1.indices.astype(np.int64)), w, shift)
    s = q @ items.T - shift[:, None]
    assert out[0, 0].item() == pytest.approx(3.0 * F.softplus(s[0, 2]).item())
    assert out[1, 0].item() == pytest.approx((w[:, 0] * F.softplus(s[1])).mean().item())


# --- LightGCN's form: normalised hops, edge dropout ---------------------------------------------

def dense_adjacency():
    A = np.block([[np.zeros((3, 3)), R.toarray()], [R.toarray().T, np.zeros((5, 5))]])
    d = A.sum(1)
    return A / np.sqrt(np.outer(np.maximum(d, 1), np.maximum(d, 1)))


def dense_lightgcn(E, A, n_layers, hop_norm):
    total, x = E.copy(), E
    for _ in range(n_layers):
        x = A @ x
        total = total + (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
                         if hop_norm else x)
    return total / (n_layers + 1)


def test_lightgcn_hop_norm_normalises_each_hop_before_the_mean():
    torch.manual_seed(0)
    enc = LightGCNEncoder(R, dim=4, n_layers=3, hop_norm=True)
    E = enc.ego().detach().double().numpy()
    ref = dense_lightgcn(E, dense_adjacency(), 3, hop_norm=True)
    np.testing.assert_allclose(torch.cat(enc()).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    plain = LightGCNEncoder(R, dim=4, n_layers=3)
    plain.load_state_dict(enc.state_dict())
    assert not torch.allclose(torch.cat(plain()), torch.cat(enc()))


def test_edge_dropout_drops_whole_edges_from_the_generator_and_never_at_inference():
    torch.manual_seed(0)
    p = 0.5
    enc = LightGCNEncoder(R, dim=4, n_layers=2, edge_dropout=p)
    A = dense_adjacency()
    dropped = enc.dropped_adjacency(torch.Generator().manual_seed(3)).to_dense().double().numpy()
    np.testing.assert_allclose(dropped, dropped.T)  # an edge goes in both directions or neither
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], A[kept] / (1 - p), rtol=1e-6)  # kept: / (1 - p)
    assert 0 < kept[:3].sum() < (A[:3] != 0).sum()  # this seed drops some edges, not all

    enc.train()
    out = torch.cat(enc(torch.Generator().manual_seed(3))).detach().double().numpy()
    E = enc.ego().detach().double().numpy()
    np.testing.assert_allclose(out, dense_lightgcn(E, dropped, 2, False), rtol=1e-5, atol=1e-6)
    again = torch.cat(enc(torch.Generator().manual_seed(3))).detach().numpy()
    np.testing.assert_array_equal(out.astype(np.float32), again)  # a seed repeats the draw
    with pytest.raises(ValueError, match="generator"):
        enc()
    enc.eval()
    np.testing.assert_allclose(torch.cat(enc()).detach().numpy(), dense_lightgcn(E, A, 2, False),
                               rtol=1e-5, atol=1e-6)  # inference: every edge


def test_edge_dropout_keeps_the_adjacency_in_expectation():
    rng = np.random.default_rng(0)
    Rbig = sp.random(40, 60, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    Rbig.data[:] = 1.0
    enc = LightGCNEncoder(Rbig, dim=2, n_layers=1, edge_dropout=0.3)
    g = torch.Generator().manual_seed(0)
    mean = sum(enc.dropped_adjacency(g).to_dense() for _ in range(400)) / 400
    full = enc.adjacency.to_dense()
    assert (mean - full).abs().max() < 0.35 * full.abs().max()
    assert (mean - full).abs().sum() < 0.1 * full.abs().sum()
