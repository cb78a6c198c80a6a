import math

import numpy as np
import pytest
import torch

from create_model.alignment import barlow_twins, info_nce


def reference_barlow(h, e, lambd):
    h, e = h.double().numpy(), e.double().numpy()
    B, d = h.shape
    zh = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)
    ze = (e - e.mean(0)) / np.sqrt(e.var(0) + 1e-5)
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


@pytest.mark.parametrize("lambd", [0.0, 5e-3, 0.5])
def test_barlow_twins_equals_formula(lambd):
    g = torch.Generator().manual_seed(0)
    h, e = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    assert barlow_twins(h.double(), e.double(), lambd).item() == pytest.approx(
        reference_barlow(h, e, lambd), rel=1e-9)


def test_barlow_twins_is_minimal_for_identical_decorrelated_views():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    z, _ = torch.linalg.qr(x - x.mean(0))  # centred, orthogonal (so uncorrelated) columns
    assert barlow_twins(z, z, 1.0).item() == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_info_nce_equals_formula(tau):
    g = torch.Generator().manual_seed(2)
    h, e = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g)
    assert info_nce(h.double(), e.double(), tau).item() == pytest.approx(
        reference_info_nce(h, e, tau), rel=1e-9)
