"""UltraGCN learns more than popularity when tuned and retrained as the paper does (Section 4.2).

From its tiny init UltraGCN first learns a popularity direction (every user alike) and only then
personal preferences; a check against PopRnd (sampling) passes on that plateau already. Here the
epoch count is chosen on the validation split (fit before T_valid, validate after it), the model is
retrained on the whole training part for that many epochs, and its test NDCG@10 must clearly beat
the deterministic popularity ranking. Propagation, repeatability and fold-in are in
test_graph_models.py, the loss formulas in tests/recbench/nn/test_graph_encoders.py.
"""

import torch

from recbench.evaluation import evaluate
from recbench.models import build_model

# official loss settings; smaller dim/negatives and batch 256 so that the small split gives enough
# steps per epoch to leave the popularity plateau within a few seconds
NAME = "UltraGCN"
PARAMS = {"dim": 64, "negative_num": 50, "batch_size": 256, "epochs": 60, "eval_every": 2,
          "patience": 5, "progress": False}


class MostPop:
    def __init__(self, train):
        self.pop = torch.from_numpy(train.popularity()).float()

    def score(self, batch):
        return self.pop.expand(len(batch.lengths), -1)


def test_tuned_and_retrained_ultragcn_beats_most_popular(small_split):
    tuned = build_model(NAME, PARAMS, seed=0)
    tuned.fit(small_split.valid_train, small_split.valid)
    assert tuned.best_epoch > 4, "validation picked an epoch on the popularity plateau"
    final = build_model(NAME, {**PARAMS, "epochs": tuned.best_epoch}, seed=0)
    final.fit(small_split.train)
    ndcg = evaluate(final, small_split.test)[0]["ndcg@10"]
    pop = evaluate(MostPop(small_split.train), small_split.test)[0]["ndcg@10"]
    assert ndcg > 1.3 * pop, (ndcg, pop)
