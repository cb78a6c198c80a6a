"""The LOOM protocol (leave-one-out after a k-core filter, full-catalog HR@10 / NDCG@10): the split
on hand-made logs, and the metrics against a brute-force reference computed from the raw log."""

import math

import numpy as np
import polars as pl
import pytest
import torch

from recbench.data.dataset import load_split, save_split
from recbench.data.sources import source_of
from recbench.data.split import (GlobalTemporalSplit, LeaveOneOutSplit, index_split, k_core_filter,
                                 make_split)
from recbench.errors import ConfigError, DataError
from recbench.evaluation import evaluate


def frame(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["user", "item", "timestamp"], orient="row")


def tiny_log() -> pl.DataFrame:
    # u3's rows come first and out of time order, with a tie at t=7 (a before b: row order);
    # u2 has 2 interactions: dropped by the 3-interaction filter.
    return frame([
        ("u3", "c", 9), ("u3", "a", 7), ("u3", "b", 7), ("u3", "e", 8),
        ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u1", "d", 4),
        ("u2", "a", 5), ("u2", "b", 6),
        ("u4", "b", 1), ("u4", "a", 2), ("u4", "x", 3),
    ])


def test_hand_computed_leave_one_out_split():
    parts = LeaveOneOutSplit(k_core=None).split(tiny_log())
    assert parts["T"] is None and parts["T_valid"] is None and parts["protocol"] == "loom"
    # train: each user's sequence without its last two items (u3 in time order a, b, e, c)
    assert parts["train"].select("user", "item", "timestamp").rows() == [
        ("u1", "a", 1), ("u1", "b", 2), ("u3", "a", 7), ("u3", "b", 7), ("u4", "b", 1),
    ]
    assert parts["valid_train"].equals(parts["train"])
    # validation: target = second-to-last item, input = everything before it
    assert parts["valid"].select("user", "item", "is_target").rows() == [
        ("u1", "a", False), ("u1", "b", False), ("u1", "c", True),
        ("u3", "a", False), ("u3", "b", False), ("u3", "e", True),
        ("u4", "b", False), ("u4", "a", True),
    ]
    # test: target = last item, input = everything before it (the validation item included)
    assert parts["test"].select("user", "item", "is_target").rows() == [
        ("u1", "a", False), ("u1", "b", False), ("u1", "c", False), ("u1", "d", True),
        ("u3", "a", False), ("u3", "b", False), ("u3", "e", False), ("u3", "c", True),
        ("u4", "b", False), ("u4", "a", False), ("u4", "x", True),
    ]


def test_indexed_leave_one_out_round_trip(tmp_path):
    indexed = index_split(LeaveOneOutSplit(k_core=None).split(tiny_log()))
    assert indexed["item_ids"]["item"].to_list() == ["a", "b"]
    assert indexed["user_ids"]["user"].to_list() == ["u1", "u3", "u4"]
    s = indexed["summary"]
    assert s["protocol"] == "loom" and s["T"] is None
    assert (s["users"], s["items"], s["interactions"]) == (3, 6, 11)  # items a, b, c, d, e, x
    assert (s["train_interactions"], s["test_users"], s["validation_users"]) == (5, 3, 3)
    assert s["test_targets_unseen_item"] == 3  # d, c and x never occur in train

    save_split(indexed, tmp_path)
    data = load_split(tmp_path)
    assert len(data.train) == 5 and len(data.valid_train) == 5  # the validation view fits on train
    assert data.for_tuning().train is data.train
    # histories keep train items only (c, e, d, x are unseen); targets unseen in train are -1
    assert data.valid.users.tolist() == [0, 1, 2]
    assert data.valid.offsets.tolist() == [0, 2, 4, 5]
    assert data.valid.items.tolist() == [0, 1, 0, 1, 1]
    assert data.valid.targets.tolist() == [-1, -1, 0]
    assert data.test.offsets.tolist() == [0, 2, 4, 6]
    assert data.test.items.tolist() == [0, 1, 0, 1, 1, 0]
    assert data.test.targets.tolist() == [-1, -1, -1]


def test_k_core_cascades_until_stable():
    log = frame([("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "b", 4),
                 ("u3", "c", 5), ("u3", "a", 6), ("u4", "d", 7)])
    # pass 1 drops u4 (1 row) and item c (1 row); then u3 has 1 row left and goes in pass 2
    assert k_core_filter(log, 2).rows() == [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3),
                                            ("u2", "b", 4)]
    assert k_core_filter(log, 1).equals(log)
    parts = LeaveOneOutSplit(k_core=2, min_user_interactions=3).split(
        pl.concat([log, frame([("u1", "c", 8), ("u2", "c", 9)])]))
    # with c on u1 and u2 (3 rows) only u4's d goes; u1, u2 and u3 keep >= 2 rows, u3 then has
    # 2 < 3 rows and leaves in the user filter
    assert parts["filtered"]["user"].unique().sort().to_list() == ["u1", "u2"]
    assert parts["test"].filter(pl.col("is_target")).select("user", "item").rows() == [
        ("u1", "c"), ("u2", "c")]


def test_empty_after_k_core_fails_loudly():
    with pytest.raises(DataError, match="5-core"):
        LeaveOneOutSplit().split(tiny_log())


# ------------------------------------------------------------------ metrics vs brute force


class HistoryScorer:
    """Scores with ties that depend on the whole history: W[last item] + 3 * [item in history]."""

    def __init__(self, n_items: int, seed: int):
        rng = np.random.default_rng(seed)
        self.W = rng.integers(0, 4, size=(n_items + 1, n_items)).astype(np.float32)  # + pad row

    def score(self, batch):
        last = batch.items[:, -1]  # histories are left-padded: the last column is the last item
        return torch.from_numpy(self.W)[last] + 3.0 * batch.multi_hot()

    def reference(self, history: list[int], n_items: int) -> np.ndarray:
        s = self.W[history[-1] if history else n_items].copy()
        s[history] += 3.0
        return s


def brute_force_loom(log: pl.DataFrame, k_core: int, scorer: HistoryScorer, k: int = 10):
    """Per-user HR@k and NDCG@k for the validation and test targets, from the raw rows in plain
    Python: k-core, >= 3 rows, sequences in (time, row) order, catalog = items of the training
    prefixes, every catalog item ranked (history not excluded), ties to the lower index."""
    rows = list(enumerate(log.iter_rows()))  # (row, (user, item, t))
    while True:
        users, items = {}, {}
        for _, (u, i, _) in rows:
            users[u] = users.get(u, 0) + 1
            items[i] = items.get(i, 0) + 1
        kept = [r for r in rows if users[r[1][0]] >= k_core and items[r[1][1]] >= k_core]
        if len(kept) == len(rows):
            break
        rows = kept
    seqs = {}
    for row, (u, i, t) in rows:
        seqs.setdefault(u, []).append((t, row, i))
    seqs = {u: [i for _, _, i in sorted(s)] for u, s in seqs.items() if len(s) >= 3}
    catalog = sorted({i for s in seqs.values() for i in s[:-2]})
    index = {i: n for n, i in enumerate(catalog)}
    out = {}
    for part, cut in (("valid", 2), ("test", 1)):
        hr, ndcg = [], []
        for u in sorted(seqs):
            s = seqs[u][: len(seqs[u]) - cut + 1]
            history = [index[i] for i in s[:-1] if i in index]
            target = index.get(s[-1], -1)
            if target < 0:
                hr.append(0.0)
                ndcg.append(0.0)
                continue
            scores = scorer.reference(history, len(catalog))
            rank = sum(1 for j in range(len(catalog)) if scores[j] > scores[target]
                       or (scores[j] == scores[target] and j < target))
            hr.append(1.0 if rank < k else 0.0)
            ndcg.append(1.0 / math.log2(rank + 2) if rank < k else 0.0)
        out[part] = (np.array(hr), np.array(ndcg))
    return out, len(catalog)


@pytest.mark.parametrize("seed", [0, 1])
def test_loom_metrics_equal_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(80):
        for _ in range(rng.integers(2, 14)):
            # few timestamps and a skewed item distribution: many ties in time, some rare items
            item = f"i{min(rng.geometric(0.06), 70):02d}"
            rows.append((f"u{u:02d}", item, int(rng.integers(0, 15))))
    log = frame(rows)
    save_split(index_split(LeaveOneOutSplit(k_core=3).split(log)), tmp_path)
    data = load_split(tmp_path)
    scorer = HistoryScorer(data.n_items, seed)
    expected, n_catalog = brute_force_loom(log, 3, scorer)
    assert data.n_items == n_catalog and len(data.test) == len(expected["test"][0]) > 40

    for part, evalset in (("valid", data.valid), ("test", data.test)):
        metrics, per_user = evaluate(scorer, evalset, ks=(10,), batch_size=7)
        hr, ndcg = expected[part]
        assert 0 < hr.sum() < len(hr)  # the comparison is not vacuous
        np.testing.assert_array_equal(per_user["recall@10"].to_numpy(), hr)  # HR@10 = Recall@10
        np.testing.assert_allclose(per_user["ndcg@10"].to_numpy(), ndcg, rtol=0, atol=1e-12)
        assert metrics["recall@10"] == pytest.approx(hr.mean(), abs=1e-12)
        assert metrics["ndcg@10"] == pytest.approx(ndcg.mean(), abs=1e-12)


# ------------------------------------------------------------------ config


def test_make_split_picks_the_protocol():
    assert make_split() == make_split({}) == GlobalTemporalSplit()
    assert make_split({"protocol": "global_temporal", "quantile": 0.7}) == GlobalTemporalSplit(0.7)
    assert make_split({"protocol": "loom"}) == LeaveOneOutSplit(k_core=5, min_user_interactions=3)
    assert make_split({"protocol": "loom", "k_core": None}).k_core is None


def test_make_split_errors_name_the_problem():
    with pytest.raises(ConfigError,
                       match=r"unknown protocol 'leave_one_out'.*global_temporal.*loom"):
        make_split({"protocol": "leave_one_out"})
    with pytest.raises(ConfigError, match=r"\['quantile'\] do not apply to protocol 'loom'"):
        make_split({"protocol": "loom", "quantile": 0.8})
    with pytest.raises(ConfigError,
                       match=r"\['k_core'\] do not apply to protocol 'global_temporal'"):
        make_split({"k_core": 5})
    with pytest.raises(ConfigError, match="min_user_interactions must be at least 3"):
        make_split({"protocol": "loom", "min_user_interactions": 2})
    with pytest.raises(ConfigError, match="split.quantile"):
        make_split({"quantile": 1.5})


def test_office_products_downloads_like_other_amazon_categories():
    spec = {"source": "amazon-2014", "category": "Office_Products"}
    remote = source_of("office", spec).remote(spec)
    assert remote.url == ("http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
                          "reviews_Office_Products_5.json.gz")
    assert remote.filename == "reviews_Office_Products_5.json.gz"
