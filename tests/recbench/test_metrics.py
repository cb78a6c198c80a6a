import math

import numpy as np
import pytest
import torch

from recbench.data.dataset import EvalSet
from recbench.evaluation import evaluate
from recbench.metrics import ndcg_reference, topk_items


def reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Brute force: sort each row by (score desc, index asc)."""
    return np.array([sorted(range(len(r)), key=lambda i: (-r[i], i))[:k] for r in scores])


@pytest.mark.parametrize("k", [1, 5, 10, 37])
def test_topk_matches_brute_force_with_ties(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 6, size=(64, 50)).astype(np.float32)  # many ties
    scores[0] = 1.0  # a row that is one big tie
    got = topk_items(torch.from_numpy(scores), k).numpy()
    np.testing.assert_array_equal(got, reference_top(scores, k))


class FixedScores:
    """A 'model' whose scores are a fixed matrix, one row per evaluated user."""

    def __init__(self, scores):
        self.scores = torch.from_numpy(scores)
        self.row = 0

    def score(self, batch):
        out = self.scores[self.row : self.row + len(batch.lengths)]
        self.row += len(batch.lengths)
        return out


def test_evaluate_equals_brute_force_reference():
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 120
    scores = rng.integers(0, 40, size=(n_users, n_items)).astype(np.float32)
    targets = rng.integers(-1, n_items, size=n_users)  # -1: an item unseen in training
    lens = rng.integers(0, 5, size=n_users)
    evalset = EvalSet(
        users=np.arange(n_users), offsets=np.concatenate([[0], np.cumsum(lens)]),
        items=rng.integers(0, n_items, size=lens.sum()), targets=targets, n_items=n_items,
    )
    metrics, per_user = evaluate(FixedScores(scores), evalset, batch_size=64)

    for k in (10, 100):
        top = reference_top(scores, k)
        ndcg, hits = [], []
        for u in range(n_users):
            rank = list(top[u]).index(targets[u]) if targets[u] in top[u] else -1
            ndcg.append(ndcg_reference(rank, k))
            hits.append(1.0 if rank >= 0 else 0.0)
        assert metrics[f"ndcg@{k}"] == pytest.approx(np.mean(ndcg), abs=1e-12)
        assert metrics[f"recall@{k}"] == pytest.approx(np.mean(hits), abs=1e-12)
        assert metrics[f"coverage@{k}"] == pytest.approx(len(np.unique(top)) / n_items)
        np.testing.assert_allclose(per_user[f"ndcg@{k}"].to_numpy(), ndcg)
    assert (per_user["rank"][targets == -1] == -1).all()


def test_ndcg_definition():
    assert ndcg_reference(0, 10) == 1.0
    assert ndcg_reference(1, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_reference(10, 10) == 0.0


def test_filter_seen_removes_history_items():
    n_items = 20
    scores = np.tile(np.arange(n_items, 0, -1, dtype=np.float32), (2, 1))  # item 0 best
    evalset = EvalSet(users=np.arange(2), offsets=np.array([0, 2, 2]), items=np.array([0, 1]),
                      targets=np.array([2, 2]), n_items=n_items)
    _, per_user = evaluate(FixedScores(scores), evalset, filter_seen=True)
    assert per_user["rank"].tolist() == [0, 2]  # user 0 saw items 0 and 1


def test_nan_scores_fail_loudly():
    from recbench.errors import TrainingError

    evalset = EvalSet(users=np.arange(1), offsets=np.array([0, 0]), items=np.array([], dtype=int),
                      targets=np.array([0]), n_items=3)
    with pytest.raises(TrainingError, match="NaN"):
        evaluate(FixedScores(np.full((1, 3), np.nan, dtype=np.float32)), evalset)
