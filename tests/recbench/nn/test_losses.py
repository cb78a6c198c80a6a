import pytest
import torch

from recbench.nn.losses import SCE_EXACT, full_ce, scalable_ce


def test_sce_equals_full_ce_when_buckets_cover_the_catalog():
    g = torch.Generator().manual_seed(0)
    states, items = torch.randn(40, 8, generator=g), torch.randn(30, 8, generator=g)
    targets = torch.randint(0, 30, (40,), generator=g)
    assert scalable_ce(states, items, targets, generator=g, **SCE_EXACT).item() == pytest.approx(
        full_ce(states, items, targets).item(), rel=1e-5)


def test_sce_is_a_lower_bound_and_differentiable():
    g = torch.Generator().manual_seed(1)
    states = torch.randn(64, 8, generator=g, requires_grad=True)
    items = torch.randn(500, 8, generator=g)
    targets = torch.randint(0, 500, (64,), generator=g)
    sce = scalable_ce(states, items, targets, n_buckets=8, bucket_size_x=16, bucket_size_y=32,
                      generator=g)
    sce.backward()
    assert states.grad is not None and torch.isfinite(states.grad).all()
    assert sce.item() <= full_ce(states, items, targets).item() + 1e-6
