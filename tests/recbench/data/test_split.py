import numpy as np
import polars as pl
import pytest

from recbench.data.dataset import load_split, save_split
from recbench.data.split import GlobalTemporalSplit, index_split
from recbench.errors import DataError


def tiny_log() -> pl.DataFrame:
    # u2 has 2 interactions: dropped by the 3-interaction filter.
    # After filtering, timestamps 1..11 once each: T = 0.8 quantile = 9.
    rows = [
        ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u1", "d", 9),
        ("u2", "a", 1), ("u2", "b", 2),
        ("u3", "a", 4), ("u3", "b", 5), ("u3", "y", 10), ("u3", "z", 11),
        ("u4", "c", 6), ("u4", "d", 7), ("u4", "e", 8),
    ]
    return pl.DataFrame(rows, schema=["user", "item", "timestamp"], orient="row")


def test_hand_computed_split():
    parts = GlobalTemporalSplit().split(tiny_log())
    assert parts["T"] == 9.0
    assert parts["train"].select("user", "timestamp").rows() == [
        ("u1", 1), ("u1", 2), ("u1", 3), ("u1", 9), ("u3", 4), ("u3", 5),
        ("u4", 6), ("u4", 7), ("u4", 8),
    ]
    # only u3 has interactions on both sides of T; its target is the last one
    assert parts["test"].select("user", "item", "is_target").rows() == [
        ("u3", "a", False), ("u3", "b", False), ("u3", "y", False), ("u3", "z", True),
    ]
    # validation: train timestamps 1..9, 0.9 quantile = 8.2; only u1 spans it (1,2,3 | 9)
    assert parts["T_valid"] == pytest.approx(8.2)
    assert parts["valid"].select("user", "item", "is_target").rows() == [
        ("u1", "a", False), ("u1", "b", False), ("u1", "c", False), ("u1", "d", True),
    ]
    assert parts["valid_train"]["timestamp"].max() <= 8.2


def test_indexing_on_train_and_unseen_items(tmp_path):
    indexed = index_split(GlobalTemporalSplit().split(tiny_log()))
    assert indexed["item_ids"]["item"].to_list() == ["a", "b", "c", "d", "e"]
    assert indexed["user_ids"]["user"].to_list() == ["u1", "u3", "u4"]
    s = indexed["summary"]
    assert (s["users"], s["items"], s["interactions"]) == (3, 7, 11)
    assert (s["test_users"], s["validation_users"], s["train_interactions"]) == (1, 1, 9)
    assert s["test_targets_unseen_item"] == 1

    save_split(indexed, tmp_path)
    data = load_split(tmp_path)
    # u3 (index 1): input a, b (y is unseen in train, dropped); target z unseen -> -1, a miss
    assert data.test.users.tolist() == [1]
    assert data.test.items.tolist() == [0, 1]
    assert data.test.targets.tolist() == [-1]
    assert data.valid.items.tolist() == [0, 1, 2] and data.valid.targets.tolist() == [3]
    assert len(data.valid_train) == 8  # train without u1's t=9


def test_ties_in_time_keep_row_order():
    log = pl.DataFrame(
        [("u", "a", 1), ("u", "b", 5), ("u", "c", 5), ("v", "a", 1), ("v", "b", 2),
         ("v", "c", 3), ("v", "d", 4)],
        schema=["user", "item", "timestamp"], orient="row",
    )
    parts = GlobalTemporalSplit(valid_quantile=None).split(log)
    target = parts["test"].filter(pl.col("is_target"))
    assert target.filter(pl.col("user") == "u")["item"].to_list() == ["c"]


def test_no_leakage_on_synthetic(small_split):
    data, s = small_split, small_split.summary
    assert data.train.timestamps.max() <= s["T"]
    assert len(data.test) == s["test_users"] > 100
    # every test user has a training interaction, and histories are non-trivial
    assert (data.test.users >= 0).all()
    assert np.isin(data.test.users, data.train.users).all()


def test_inputs_strictly_before_targets(tmp_path):
    from recbench.data.synthetic import SyntheticConfig, generate

    parts = GlobalTemporalSplit().split(generate(SyntheticConfig(n_users=300, n_items=200,
                                                                 n_communities=4, seed=3)))
    test = parts["test"].with_columns(pl.int_range(pl.len()).over("user").alias("pos"))
    tgt = test.filter(pl.col("is_target")).select("user", pl.col("pos").alias("tpos"),
                                                  pl.col("timestamp").alias("tts"))
    joined = test.filter(~pl.col("is_target")).join(tgt, on="user")
    assert (joined["pos"] < joined["tpos"]).all()
    assert (joined["timestamp"] <= joined["tts"]).all()
    assert (tgt["tts"] > parts["T"]).all()
    assert parts["train"]["timestamp"].max() <= parts["T"]


def test_empty_after_filter_fails_loudly():
    log = pl.DataFrame([("u", "a", 1), ("u", "b", 2)], schema=["user", "item", "timestamp"],
                       orient="row")
    with pytest.raises(DataError, match="at least 3 interactions"):
        GlobalTemporalSplit().split(log)


def test_bad_quantile():
    with pytest.raises(ValueError, match="quantile"):
        GlobalTemporalSplit(quantile=1.2)
