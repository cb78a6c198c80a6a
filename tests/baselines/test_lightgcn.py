"""LightGCN learns more than popularity when tuned and retrained as the paper does (Section 4.2).

The epoch count is chosen on the validation split (fit before T_valid, validate after it), the
model is retrained on the whole training part for that many epochs, and its test NDCG@10 must
clearly beat the deterministic popularity ranking (a stronger check than beating PopRnd, which
samples). Propagation, repeatability and fold-in are in test_graph_models.py, the BPR formula in
tests/recbench/nn/test_graph_encoders.py.
"""

import torch

from recbench.evaluation import evaluate
from recbench.models import build_model

NAME = "LightGCN"
PARAMS = {"epochs": 40, "eval_every": 2, "patience": 5, "progress": False}  # defaults otherwise


class MostPop:
    def __init__(self, train):
        self.pop = torch.from_numpy(train.popularity()).float()

    def score(self, batch):
        return self.pop.expand(len(batch.lengths), -1)


def test_tuned_and_retrained_lightgcn_beats_most_popular(small_split):
    tuned = build_model(NAME, PARAMS, seed=0)
    tuned.fit(small_split.valid_train, small_split.valid)
    final = build_model(NAME, {**PARAMS, "epochs": tuned.best_epoch}, seed=0)
    final.fit(small_split.train)
    ndcg = evaluate(final, small_split.test)[0]["ndcg@10"]
    pop = evaluate(MostPop(small_split.train), small_split.test)[0]["ndcg@10"]
    assert ndcg > 1.5 * pop, (ndcg, pop)


def test_user_less_history_is_scored_like_its_fold_in(small_split):
    """users = -1: the state is the mean of the history's distinct items' final embeddings."""
    model = build_model(NAME, {**PARAMS, "epochs": 3}, seed=0)
    model.fit(small_split.train)
    batch = small_split.test.batch(0, 8)
    batch.users[:] = -1
    with torch.no_grad():
        _, item_final = model.encoder()
        rows = [item_final[torch.unique(h[h != batch.pad])].mean(0) for h in batch.items]
        expected = torch.stack(rows) @ item_final.T
        assert torch.allclose(model.score(batch), expected, atol=1e-5)
