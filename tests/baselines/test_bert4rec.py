"""BERT4Rec: masking never reveals the hidden item, [MASK] at inference, padding, repeatability,
and that it learns."""

import numpy as np
import pytest
import torch
from _seqdata import FAST, beside_baselines, fit_and_test, make_split

from recbench.data.dataset import HistoryBatch, Interactions
from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model

N_ITEMS, PAD, MASK = 40, 40, 41
TINY = {"dim": 16, "n_layers": 2, "n_heads": 2, "dropout": 0.0, "max_len": 8, "progress": False}


def built(params=None, seed=0):
    """BERT4Rec built (not trained) on 30 users with 4 to 15 interactions each."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 16, 30)
    users = np.repeat(np.arange(30), lengths)
    items = rng.integers(0, N_ITEMS, len(users))
    train = Interactions(users, items, np.arange(len(users)), 30, N_ITEMS)
    model = build_model("BERT4Rec", {**TINY, **(params or {})}, seed=seed)
    torch.manual_seed(seed)
    model.build(train)
    return model.eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_split(tmp_path_factory.mktemp("bert4rec_split"))


@pytest.fixture(scope="module")
def results(data):
    return beside_baselines("BERT4Rec", data, FAST)


def test_the_mask_token_is_no_item():
    model = built()
    assert model.encoder.pad_id == PAD and model.encoder.mask_id == MASK
    assert model.encoder.item_emb.num_embeddings == N_ITEMS + 2
    assert model.encoder.item_weights.shape == (N_ITEMS, 16)  # scores never include [MASK]/pad


def test_masking_never_reveals_the_masked_item():
    model = built({"mask_prob": 0.3})
    x = model.windows  # [U, 8] left-padded training windows
    inputs, targets = model.mask_items(x, torch.Generator().manual_seed(0))
    masked = targets != -100
    real = x != PAD
    assert masked.any(1).all(), "every sequence must predict at least one item"
    assert not (masked & ~real).any(), "padding is never a target"
    assert (inputs[masked] == MASK).all(), "a masked position's input must be [MASK]"
    assert (targets[masked] == x[masked]).all(), "its target is the hidden item"
    assert (inputs[~masked] == x[~masked]).all() and (targets[~masked] == -100).all()
    # the input row never holds the target at its own position
    assert not (inputs == targets).any()


def test_the_encoder_input_does_not_depend_on_the_hidden_items():
    """Replace every masked item by another one: the model sees exactly the same input."""
    model = built({"mask_prob": 0.4})
    x = model.windows
    _, targets = model.mask_items(x, torch.Generator().manual_seed(5))
    masked = targets != -100
    other = x.clone()
    other[masked] = (other[masked] + 1) % N_ITEMS
    a, _ = model.mask_items(x, torch.Generator().manual_seed(5))
    b, _ = model.mask_items(other, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_masking_rate_follows_mask_prob():
    model = built({"mask_prob": 0.3, "max_len": 16})
    x = model.windows.repeat(40, 1)
    _, targets = model.mask_items(x, torch.Generator().manual_seed(1))
    rate = ((targets != -100).sum() / (x != PAD).sum()).item()
    assert 0.27 < rate < 0.36  # 0.3 plus the forced mask of rows that drew none


def test_attention_is_bidirectional():
    model = built()
    x = torch.tensor([[1, 2, 3, 4, 5, 6, 7, MASK]])
    y = x.clone()
    y[0, 5] = 9
    with torch.no_grad():
        assert not torch.allclose(model.encoder(x)[0, :5], model.encoder(y)[0, :5])


def test_inference_appends_one_mask_after_the_history():
    model = built()
    assert model.max_history == TINY["max_len"] - 1
    items = torch.tensor([[PAD, PAD, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7]])
    batch = HistoryBatch(items, torch.tensor([5, 7]), torch.tensor([0, 1]), pad=PAD)
    with torch.no_grad():
        h = model.encoder(torch.cat([items, torch.full((2, 1), MASK)], 1))[:, -1]  # [2, d]
    assert torch.allclose(model.score(batch), h @ model.encoder.item_weights.T, atol=1e-6)


def test_left_padding_never_changes_the_user_state():
    model = built()
    short = HistoryBatch(torch.tensor([[3, 4, 5]]), torch.tensor([3]), torch.tensor([0]), pad=PAD)
    padded = HistoryBatch(torch.tensor([[PAD, PAD, PAD, 3, 4, 5]]), torch.tensor([3]),
                          torch.tensor([0]), pad=PAD)
    assert torch.allclose(model.score(short), model.score(padded), atol=1e-5)
    empty = HistoryBatch(torch.full((2, 3), PAD), torch.zeros(2, dtype=torch.long),
                         torch.tensor([0, 1]), pad=PAD)
    assert torch.isfinite(model.score(empty)).all()


def test_sce_covering_everything_equals_full_ce():
    ce_model = built()
    sce_model = built({"loss": "sce", "sce_n_buckets": 1, "sce_bucket_size_x": 10**9,
                       "sce_bucket_size_y": 10**9})
    sce_model.load_state_dict(ce_model.state_dict())
    idx = torch.arange(12)
    ce = ce_model.training_loss(idx, torch.Generator().manual_seed(0))  # same masks: same seed
    approx = sce_model.training_loss(idx, torch.Generator().manual_seed(0))
    assert approx.item() == pytest.approx(ce.item(), rel=1e-5)


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match=r"^models\.BERT4Rec\.mask_prob must lie in \(0, 1\], got 0\.0"):
        build_model("BERT4Rec", {"mask_prob": 0.0})
    with pytest.raises(ConfigError, match=r"^models\.BERT4Rec\.max_len must be >= 2, got 1"):
        build_model("BERT4Rec", {"max_len": 1})


def test_beats_poprnd_by_far(results):
    assert results["BERT4Rec"]["ndcg@10"] > 3 * results["PopRnd"]["ndcg@10"]
    assert results["BERT4Rec"]["recall@10"] > 3 * results["PopRnd"]["recall@10"]


def test_beats_svd(results):
    assert results["BERT4Rec"]["ndcg@10"] > results["SVD"]["ndcg@10"]


def test_same_seed_repeats_exactly_and_long_histories_are_cut(data):
    params = {**FAST, "epochs": 4, "max_len": 10}
    runs = [fit_and_test("BERT4Rec", data, params, seed=2) for _ in range(2)]
    assert runs[0][2].equals(runs[1][2]) and runs[0][1] == runs[1][1]
    assert data.test.lengths.max() > 9  # histories longer than max_history are evaluated fine
    assert evaluate(runs[0][0], data.test)[0] == runs[0][1]
