"""SASRec: training windows, causality, padding, CE/SCE agreement, repeatability, and that it learns."""

import numpy as np
import pytest
import torch
from _seqdata import FAST, beside_baselines, fit_and_test, make_split

from recbench.data.dataset import HistoryBatch, Interactions
from recbench.errors import ConfigError
from recbench.models import Recommender, build_model
from recbench.nn.losses import SCE_EXACT
from recbench.params import uses_gpu

TINY = {"dim": 16, "n_layers": 2, "n_heads": 2, "dropout": 0.0, "max_len": 6, "progress": False}


def tiny_log(lengths=(9, 3, 2, 1), n_items=12):
    """Users with the given numbers of interactions; user u's k-th item is (u * 5 + k) % n_items."""
    users = np.repeat(np.arange(len(lengths)), lengths)
    items = np.concatenate([(u * 5 + np.arange(n)) % n_items for u, n in enumerate(lengths)])
    return Interactions(users, items.astype(np.int64), np.arange(len(users)), len(lengths), n_items)


def built(params=None, train=None, seed=0):
    model = build_model("SASRec", {**TINY, **(params or {})}, seed=seed)
    torch.manual_seed(seed)
    model.build(train or tiny_log())
    return model.eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_split(tmp_path_factory.mktemp("sasrec_split"))


@pytest.fixture(scope="module")
def results(data):
    """15 epochs: on this split the test NDCG@10 is 0.353 after 15 and 0.361 after 60 (FAST's
    budget, never stopped early), SVD's 0.201, PopRnd's 0.010; the untrained model scores
    0.019, so both tests below fail without training."""
    return beside_baselines("SASRec", data, {**FAST, "epochs": 15})


def test_training_windows_are_tails_shifted_by_one():
    model = built()  # max_len 6, pad = 12
    pad = 12
    # user 0: items 0..8; the tail window of 7 items is 2..8 -> inputs 2..7, targets 3..8
    assert model.inputs[0].tolist() == [2, 3, 4, 5, 6, 7]
    assert model.targets[0].tolist() == [3, 4, 5, 6, 7, 8]
    # user 1: items 5, 6, 7 -> inputs [pad]*4 + [5, 6], targets [pad]*3 + [5, 6, 7]; the loss
    # only counts positions with a real input, so 5 (nothing before it) is never predicted
    assert model.inputs[1].tolist() == [pad] * 4 + [5, 6]
    assert model.targets[1].tolist() == [pad] * 3 + [5, 6, 7]
    # user 3 (one interaction) has nothing to predict and no window
    assert len(model.inputs) == 3 and model.input_lengths.tolist() == [6, 2, 1]


def test_max_history_is_the_instance_max_len():
    model = build_model("SASRec", {"max_len": 37}, seed=0)
    assert model.max_history == 37 and Recommender.max_history is None
    assert type(model).max_history is None  # the class attribute stays untouched
    assert uses_gpu(type(model).Params) and not uses_gpu(build_model("PopRnd").Params)


def test_changing_a_later_item_never_changes_an_earlier_output():
    model = built()
    x = torch.tensor([[1, 2, 3, 4, 5, 6], [12, 12, 7, 8, 9, 10]])
    for t in range(1, 6):
        y = x.clone()
        y[:, t] = 11  # change position t
        with torch.no_grad():
            hx, hy = model.encoder(x), model.encoder(y)
        assert torch.allclose(hx[:, :t], hy[:, :t], atol=1e-6), f"position {t} leaked backwards"
        assert not torch.allclose(hx[0, t:], hy[0, t:])


def test_left_padding_never_changes_the_user_state():
    model = built()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[12, 12, 12, 3, 4, 5]])
    one = model.score(HistoryBatch(short, torch.tensor([3]), torch.tensor([0]), pad=12))
    with_pad = model.score(HistoryBatch(padded, torch.tensor([3]), torch.tensor([0]), pad=12))
    assert torch.allclose(one, with_pad, atol=1e-5)
    # in a batch beside a longer history, the short one gets padded: same scores
    batch = HistoryBatch(torch.tensor([[12, 12, 12, 3, 4, 5], [1, 2, 3, 4, 5, 6]]),
                         torch.tensor([3, 6]), torch.tensor([0, 1]), pad=12)
    assert torch.allclose(model.score(batch)[0], one[0], atol=1e-5)


def test_an_empty_history_gives_finite_scores():
    model = built()
    empty = HistoryBatch(torch.full((2, 4), 12), torch.zeros(2, dtype=torch.long),
                         torch.tensor([0, 1]), pad=12)
    scores = model.score(empty)
    assert scores.shape == (2, 12) and torch.isfinite(scores).all()


def test_inference_path_matches_the_training_path():
    """Under no_grad in eval mode torch may take its fused transformer fast path: same states."""
    model = built()
    x = torch.tensor([[12, 12, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        fast = model.encoder(x)
    slow = model.encoder(x)  # grad enabled: the regular path
    assert torch.allclose(fast, slow.detach(), atol=1e-5)


def test_sce_covering_everything_equals_full_ce():
    sce = {"loss": "sce", "sce_n_buckets": SCE_EXACT["n_buckets"],
           "sce_bucket_size_x": 10**9, "sce_bucket_size_y": 10**9}
    ce_model, sce_model = built(), built(sce)
    sce_model.load_state_dict(ce_model.state_dict())
    idx = torch.arange(3)
    ce = ce_model.training_loss(idx, torch.Generator().manual_seed(0))
    approx = sce_model.training_loss(idx, torch.Generator().manual_seed(0))
    assert approx.item() == pytest.approx(ce.item(), rel=1e-5)


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="loss must be 'ce' or 'sce'"):
        build_model("SASRec", {"loss": "bce"})
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        build_model("SASRec", {"dim": 10, "n_heads": 3})
    with pytest.raises(ConfigError, match="unknown parameter.*'mask_prob'"):
        build_model("SASRec", {"mask_prob": 0.2})


def test_beats_poprnd_by_far(results):
    assert results["SASRec"]["ndcg@10"] > 3 * results["PopRnd"]["ndcg@10"]
    assert results["SASRec"]["recall@10"] > 3 * results["PopRnd"]["recall@10"]


def test_beats_svd(results):
    """The synthetic data plants item-to-item transitions that only an order-aware model sees."""
    assert results["SASRec"]["ndcg@10"] > results["SVD"]["ndcg@10"]


def test_sce_training_learns_and_repeats_exactly(data):
    """SCE with few buckets (random projections drawn from the seeded generator) still learns,
    and two CPU runs with one seed give identical rankings."""
    params = {**FAST, "epochs": 8, "loss": "sce", "sce_n_buckets": 16, "sce_bucket_size_x": 64,
              "sce_bucket_size_y": 64}
    _, m1, per_user1 = fit_and_test("SASRec", data, params, seed=3)
    _, m2, per_user2 = fit_and_test("SASRec", data, params, seed=3)
    assert per_user1.equals(per_user2) and m1 == m2
    _, pop, _ = fit_and_test("PopRnd", data)
    assert m1["ndcg@10"] > 3 * pop["ndcg@10"]
