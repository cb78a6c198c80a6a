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


def brute_force(scores, targets, histories, k, filtered):
    """Per-user NDCG@k and hit, and coverage@k, by sorting each row in Python."""
    n_items = scores.shape[1]
    ndcg, hits, covered = [], [], set()
    for u, row in enumerate(scores):
        candidates = [i for i in range(n_items) if not (filtered and i in set(histories[u]))]
        top = sorted(candidates, key=lambda i: (-row[i], i))[:k]
        covered.update(top)
        rank = top.index(targets[u]) if targets[u] in top else -1
        ndcg.append(ndcg_reference(rank, k))
        hits.append(1.0 if rank >= 0 else 0.0)
    return np.array(ndcg), np.array(hits), len(covered) / n_items


def random_case(seed, n_users=300, n_items=120, max_len=5, long_users=0):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 40, size=(n_users, n_items)).astype(np.float32)  # many ties
    targets = rng.integers(-1, n_items, size=n_users)  # -1: an item unseen in training
    lens = rng.integers(0, max_len, size=n_users)
    lens[:long_users] = n_items - 30  # fewer unseen items than K=100 are left to rank
    items = rng.integers(0, n_items, size=lens.sum())  # repeats allowed, as in a real log
    offsets = np.concatenate([[0], np.cumsum(lens)])
    targets[1] = items[offsets[1]] if lens[1] else targets[1]  # a target inside its history
    evalset = EvalSet(users=np.arange(n_users), offsets=offsets, items=items, targets=targets,
                      n_items=n_items)
    histories = [items[offsets[u]:offsets[u + 1]] for u in range(n_users)]
    return scores, evalset, histories


@pytest.mark.parametrize("filter_seen", [False, True])
@pytest.mark.parametrize("case", [dict(seed=0), dict(seed=1, max_len=40, long_users=3)])
def test_both_protocols_equal_brute_force_reference(filter_seen, case):
    scores, evalset, histories = random_case(**case)
    targets = evalset.targets
    model = FixedScores(scores.copy())
    metrics, per_user = evaluate(model, evalset, batch_size=64, filter_seen=filter_seen)
    np.testing.assert_array_equal(model.scores.numpy(), scores)  # the model's tensor restored
    configured = "history_filtered" if filter_seen else "unfiltered"
    other = "unfiltered" if filter_seen else "history_filtered"
    assert metrics["protocol"] == configured and set(metrics[other]) == {
        "ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100"}
    for protocol, block, prefix in [(configured, metrics, ""), (other, metrics[other], f"{other}/")]:
        for k in (10, 100):
            ndcg, hits, coverage = brute_force(scores, targets, histories, k,
                                               filtered=protocol == "history_filtered")
            assert block[f"ndcg@{k}"] == pytest.approx(ndcg.mean(), abs=1e-12)
            assert block[f"recall@{k}"] == pytest.approx(hits.mean(), abs=1e-12)
            assert block[f"coverage@{k}"] == pytest.approx(coverage)
            np.testing.assert_allclose(per_user[f"{prefix}ndcg@{k}"].to_numpy(), ndcg)
            np.testing.assert_array_equal(per_user[f"{prefix}recall@{k}"].to_numpy(), hits)
        assert (per_user[f"{prefix}rank"][targets == -1] == -1).all()
    in_history = np.array([t in h for t, h in zip(targets, histories)])
    assert in_history.any()
    np.testing.assert_array_equal(per_user["target_in_history"].to_numpy(), in_history)
    assert metrics["targets_in_history"] == pytest.approx(in_history.mean())
    # a target in the history can never be hit once the history is filtered
    filtered_rank = per_user["rank" if filter_seen else "history_filtered/rank"]
    assert (filtered_rank[in_history] == -1).all()


def test_a_model_that_reconstructs_the_history_scores_zero_only_unfiltered():
    """History items scored highest fill the top 10 unless filtered; then the target is next."""
    n_users, n_items = 50, 200
    rng = np.random.default_rng(3)
    histories = [rng.choice(np.arange(1, n_items), size=12, replace=False) for _ in range(n_users)]
    targets = np.zeros(n_users, dtype=np.int64)  # item 0: never in a history
    scores = np.zeros((n_users, n_items), dtype=np.float32)
    for u, h in enumerate(histories):
        scores[u, h] = 10.0  # the history on top
        scores[u, 0] = 5.0  # then the target
    evalset = EvalSet(users=np.arange(n_users), offsets=np.arange(n_users + 1) * 12,
                      items=np.concatenate(histories), targets=targets, n_items=n_items)
    metrics, per_user = evaluate(FixedScores(scores), evalset, batch_size=16)
    assert metrics["protocol"] == "unfiltered"
    assert metrics["ndcg@10"] == 0.0 and metrics["recall@10"] == 0.0
    assert metrics["history_filtered"]["ndcg@10"] == pytest.approx(1.0)  # rank 0 for everyone
    assert metrics["history_filtered"]["ndcg@10"] > 0
    assert (per_user["rank"] == 12).all() and (per_user["history_filtered/rank"] == 0).all()
    assert metrics["targets_in_history"] == 0.0


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
    assert per_user["unfiltered/rank"].tolist() == [2, 2]


def test_filter_uses_the_whole_history_not_the_models_tail():
    """A sequential model reads only its last max_history items; the filter removes all."""
    n_items = 20
    scores = np.tile(np.arange(n_items, 0, -1, dtype=np.float32), (1, 1))  # item 0 best

    class Tail(FixedScores):
        max_history = 1

    evalset = EvalSet(users=np.arange(1), offsets=np.array([0, 3]), items=np.array([0, 1, 2]),
                      targets=np.array([3]), n_items=n_items)
    metrics, per_user = evaluate(Tail(scores), evalset, filter_seen=True)
    assert per_user["rank"].tolist() == [0] and metrics["ndcg@10"] == 1.0


def test_nan_scores_fail_loudly():
    from recbench.errors import TrainingError

    evalset = EvalSet(users=np.arange(1), offsets=np.array([0, 0]), items=np.array([], dtype=int),
                      targets=np.array([0]), n_items=3)
    with pytest.raises(TrainingError, match="NaN"):
        evaluate(FixedScores(np.full((1, 3), np.nan, dtype=np.float32)), evalset)


def test_a_model_handing_back_a_read_only_view_is_evaluated_too():
    """An expanded popularity row cannot be masked in place; the filter copies it."""
    n_items = 30
    pop = torch.arange(n_items, 0, -1, dtype=torch.float32)  # item 0 most popular

    class Pop:
        def score(self, batch):
            return pop.expand(len(batch.lengths), -1)

    evalset = EvalSet(users=np.arange(3), offsets=np.array([0, 2, 2, 5]),
                      items=np.array([0, 1, 0, 2, 3]), targets=np.array([2, 2, 4]), n_items=n_items)
    metrics, per_user = evaluate(Pop(), evalset, batch_size=2, filter_seen=True)
    assert per_user["rank"].tolist() == [0, 2, 1]  # user 2 saw 0, 2, 3: item 1, then 4
    assert per_user["unfiltered/rank"].tolist() == [2, 2, 4]
    assert torch.equal(pop, torch.arange(n_items, 0, -1, dtype=torch.float32))
