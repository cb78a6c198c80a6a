"""Scalable cross-entropy against full CE: exact when the buckets cover everything, a lower bound
otherwise, positives never counted as negatives, duplicates never counted twice.

(tests/recbench/nn/test_losses.py covers the loss values; these add gradients and the rest.)
"""

import pytest
import torch
import torch.nn.functional as F

from recbench.nn.losses import SCE_EXACT, full_ce, scalable_ce, scalable_ce_per_state


def problem(N=50, C=30, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(N, d, generator=g, requires_grad=True)
    items = torch.randn(C, d, generator=g, requires_grad=True)
    targets = torch.randint(0, C, (N,), generator=g)
    return states, items, targets


def grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors)


def test_full_ce_is_softmax_cross_entropy_over_the_catalog():
    states, items, targets = problem()
    logits = states @ items.T
    expected = (torch.logsumexp(logits, 1) - logits[torch.arange(50), targets]).mean()
    assert full_ce(states, items, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_exact_parameterisation_matches_full_ce_in_value_and_gradient():
    states, items, targets = problem()
    ce = full_ce(states, items, targets)
    sce = scalable_ce(states, items, targets, generator=torch.Generator().manual_seed(0),
                      **SCE_EXACT)
    assert sce.item() == pytest.approx(ce.item(), rel=1e-5)
    for a, b in zip(grads(ce, states, items), grads(sce, states, items)):
        assert torch.allclose(a, b, atol=1e-6)


def test_several_buckets_covering_everything_still_equal_full_ce():
    """Each state meets every item in each of the 4 buckets: a sum or union over buckets would
    count every negative 4 times (adding log 4); the per-state maximum counts it once."""
    states, items, targets = problem()
    sce = scalable_ce(states, items, targets, n_buckets=4, bucket_size_x=50, bucket_size_y=30,
                      generator=torch.Generator().manual_seed(0))
    assert sce.item() == pytest.approx(full_ce(states, items, targets).item(), rel=1e-5)


def test_the_positive_is_never_a_negative():
    """Targets all equal and the item table of one row: full CE is 0; so must SCE be."""
    states, _, _ = problem()
    items = torch.randn(1, 8)
    targets = torch.zeros(50, dtype=torch.long)
    loss = scalable_ce(states, items, targets, **SCE_EXACT)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert full_ce(states, items, targets).item() == pytest.approx(0.0, abs=1e-7)


def test_each_covered_state_gets_a_lower_bound_of_its_full_ce():
    states, items, targets = problem(N=200, C=500, seed=3)
    per_state_ce = F.cross_entropy(states @ items.T, targets, reduction="none")
    loss, covered = scalable_ce_per_state(states, items, targets, n_buckets=8, bucket_size_x=20,
                                          bucket_size_y=40,
                                          generator=torch.Generator().manual_seed(0))
    assert loss.shape == covered.shape == (200,)
    assert 0 < covered.sum() < 200  # 8 buckets x 20 states cannot cover all 200
    assert (loss[covered] <= per_state_ce[covered] + 1e-5).all()
    assert (loss[covered] >= 0).all() and (loss[~covered] == 0).all()


def test_same_generator_seed_same_loss():
    states, items, targets = problem(N=200, C=500, seed=4)
    kw = {"n_buckets": 8, "bucket_size_x": 20, "bucket_size_y": 40}
    a = scalable_ce(states, items, targets, generator=torch.Generator().manual_seed(9), **kw)
    b = scalable_ce(states, items, targets, generator=torch.Generator().manual_seed(9), **kw)
    c = scalable_ce(states, items, targets, generator=torch.Generator().manual_seed(10), **kw)
    assert a.item() == b.item() != c.item()


def test_bucket_sizes_are_clipped_and_bad_sizes_named():
    states, items, targets = problem(N=5, C=4)
    assert torch.isfinite(scalable_ce(states, items, targets, n_buckets=3, bucket_size_x=100,
                                      bucket_size_y=100))
    with pytest.raises(ValueError, match="n_buckets, bucket_size_x, bucket_size_y >= 1"):
        scalable_ce(states, items, targets, n_buckets=0, bucket_size_x=1, bucket_size_y=1)
