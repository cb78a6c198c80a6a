"""SASRec and BERT4Rec: causality, padding, masking, determinism, and that they learn order."""

import pytest
import torch

from recbench.evaluation import evaluate
from recbench.models import build_model
from recbench.nn.encoders import SequenceEncoder

SMALL = {"epochs": 30, "batch_size": 256, "max_len": 20, "progress": False}


def test_sasrec_encoder_is_causal():
    torch.manual_seed(0)
    enc = SequenceEncoder(50, dim=16, n_layers=2, n_heads=2, dropout=0.0, max_len=10).eval()
    x = torch.randint(0, 50, (4, 10))
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1) % 50  # change position 6
    hx, hy = enc(x), enc(y)
    assert torch.allclose(hx[:, :6], hy[:, :6], atol=1e-6)
    assert not torch.allclose(hx[:, 6:], hy[:, 6:])


@pytest.mark.parametrize("causal", [True, False])
def test_left_padding_never_changes_the_user_state(causal):
    torch.manual_seed(0)
    enc = SequenceEncoder(50, dim=16, n_layers=2, n_heads=2, dropout=0.0, max_len=12,
                          causal=causal).eval()
    x = torch.randint(0, 50, (3, 5))
    padded = torch.cat([torch.full((3, 7), enc.pad_id), x], dim=1)
    assert torch.allclose(enc(x)[:, -1], enc(padded)[:, -1], atol=1e-5)
    assert torch.isfinite(enc(torch.full((2, 4), enc.pad_id))).all()  # an empty history


def test_bert4rec_masking_hides_the_masked_item():
    model = build_model("BERT4Rec", {**SMALL, "mask_prob": 0.5}, seed=0)
    from recbench.data.dataset import Interactions
    import numpy as np
    train = Interactions(np.repeat(np.arange(20), 8), np.arange(160) % 40, np.arange(160), 20, 40)
    model.build(train)
    x = model.windows[:20, -8:]
    inputs, targets = model.mask_items(x, torch.Generator().manual_seed(0))
    masked = targets != -100
    assert masked.any(1).all()  # every sequence predicts something
    assert (inputs[masked] == model.encoder.mask_id).all()  # the masked input is [MASK] ...
    assert (targets[masked] == x[masked]).all()  # ... and its target the hidden item
    assert (inputs[~masked] == x[~masked]).all()


@pytest.fixture(scope="module")
def fitted(small_split):
    out = {}
    for name in ["SASRec", "BERT4Rec", "PopRnd", "SVD"]:
        model = build_model(name, SMALL if name in ("SASRec", "BERT4Rec") else {}, seed=0)
        model.fit(small_split.train, small_split.valid)
        out[name] = evaluate(model, small_split.test)
    return out


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec"])
def test_learns_far_beyond_poprnd(fitted, name):
    assert fitted[name][0]["ndcg@10"] > 5 * fitted["PopRnd"][0]["ndcg@10"]


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec"])
def test_same_seed_repeats_exactly(small_split, fitted, name):
    model = build_model(name, SMALL, seed=0)
    model.fit(small_split.train, small_split.valid)
    assert evaluate(model, small_split.test)[1].equals(fitted[name][1])


def test_history_file_per_epoch(small_split, tmp_path):
    model = build_model("SASRec", {**SMALL, "epochs": 3}, seed=0, workdir=tmp_path)
    model.fit(small_split.train, small_split.valid)
    import pandas as pd
    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist.columns) == ["epoch", "train_loss", "val_ndcg@10", "val_recall@10", "seconds"]
    assert hist.epoch.tolist() == [1, 2, 3] and hist.train_loss.iloc[-1] < hist.train_loss.iloc[0]
