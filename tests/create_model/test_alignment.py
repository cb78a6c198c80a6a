import math

import numpy as np
import pytest
import torch

from create_model.alignment import barlow_twins, info_nce


def reference_barlow(h, e, lambd):
    h, e = h.double().numpy(), e.double().numpy()
    B, d = h.shape
    # eps relative to each view's mean per-dimension variance
    zh = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5 * h.var(0).mean())
    ze = (e - e.mean(0)) / np.sqrt(e.var(0) + 1e-5 * e.var(0).mean())
    C = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            C[i, j] = sum(zh[u, i] * ze[u, j] for u in range(B)) / B
    loss = sum((1 - C[i, i]) ** 2 for i in range(d))
    return loss + lambd * sum(C[i, j] ** 2 for i in range(d) for j in range(d) if i != j)


def reference_info_nce(h, e, tau):
    h, e = h.double().numpy(), e.double().numpy()
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    S = h @ e.T / tau
    B = len(h)
    a = -np.mean([S[u, u] - math.log(np.exp(S[u]).sum()) for u in range(B)])
    b = -np.mean([S[u, u] - math.log(np.exp(S[:, u]).sum()) for u in range(B)])
    return 0.5 * (a + b)


@pytest.mark.parametrize("loss,reference,arg", [
    (barlow_twins, reference_barlow, 0.0), (barlow_twins, reference_barlow, 5e-3),
    (barlow_twins, reference_barlow, 0.5),  # lambda
    (info_nce, reference_info_nce, 0.1), (info_nce, reference_info_nce, 1.0),  # temperature
], ids=["barlow-0", "barlow-5e-3", "barlow-0.5", "info_nce-0.1", "info_nce-1"])
def test_each_alignment_equals_its_formula(loss, reference, arg):
    g = torch.Generator().manual_seed(0)
    h, e = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    assert loss(h.double(), e.double(), arg).item() == pytest.approx(reference(h, e, arg),
                                                                     rel=1e-9)


def test_barlow_mean_scale_is_the_sum_over_d():
    g = torch.Generator().manual_seed(2)
    h, e = torch.randn(32, 8, generator=g), torch.randn(32, 8, generator=g)
    total = barlow_twins(h, e, 5e-3, scale="sum")
    assert barlow_twins(h, e, 5e-3, scale="mean").item() == pytest.approx(total.item() / 8)
    with pytest.raises(ValueError, match="scale"):
        barlow_twins(h, e, scale="max")


def test_a_tiny_view_is_standardised_like_any_other():
    """UltraGCN's users start at std 1e-3: an absolute eps would cap every correlation near 0.3."""
    g = torch.Generator().manual_seed(3)
    h = torch.randn(256, 16, generator=g)
    tiny = 1e-3 * (h + 0.1 * torch.randn(256, 16, generator=g))  # the same view, 1e-3 the scale
    same = barlow_twins(h, tiny * 1e3, 0.0).item()
    assert barlow_twins(h, tiny, 0.0).item() == pytest.approx(same, rel=1e-3)
    assert same < 0.5  # nearly identical views: C_ii near 1


def test_barlow_twins_is_minimal_for_identical_decorrelated_views():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    z, _ = torch.linalg.qr(x - x.mean(0))  # centred, orthogonal (so uncorrelated) columns
    assert barlow_twins(z, z, 1.0).item() == pytest.approx(0.0, abs=1e-3)


def test_info_nce_with_rows_scores_each_state_against_the_batchs_users():
    """align_positions: all: N states of B users, each state's own user the positive."""
    g = torch.Generator().manual_seed(4)
    h, e = torch.randn(7, 5, generator=g).double(), torch.randn(3, 5, generator=g).double()
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 1])
    hn = (h / h.norm(dim=1, keepdim=True)).numpy()
    en = (e / e.norm(dim=1, keepdim=True)).numpy()
    S = hn @ en.T / 0.5
    want = -np.mean([S[n, r] - math.log(np.exp(S[n]).sum()) for n, r in enumerate(rows.tolist())])
    assert info_nce(h, e, 0.5, rows=rows).item() == pytest.approx(want, rel=1e-9)
