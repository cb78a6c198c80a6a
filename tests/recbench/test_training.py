from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from recbench.errors import TrainingError
from recbench.training import TrainConfig, train


class Toy(nn.Module):
    def __init__(self, nan_at=None):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.nan_at, self.step = nan_at, 0

    def train_batches(self, epoch, generator):
        return [0, 1, 2]

    def training_loss(self, batch, generator):
        self.step += 1
        loss = (self.w - 1.0).pow(2).sum()
        return loss * float("nan") if self.step == self.nan_at else loss


def test_nan_loss_names_epoch_and_step():
    with pytest.raises(TrainingError, match="epoch 2, step 2"):
        train(Toy(nan_at=5), TrainConfig(epochs=3, progress=False))


def test_early_stopping_restores_the_best_weights():
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.1, 0.0])
    snapshots = []
    model = Toy()

    def evaluate_fn():
        snapshots.append(model.w.detach().clone())
        return {"ndcg@10": next(scores)}

    result = train(model, TrainConfig(epochs=6, patience=2, lr=0.1, progress=False),
                   evaluate_fn=evaluate_fn)
    assert result.best_epoch == 2 and result.epochs_trained == 4
    assert torch.equal(model.w.detach(), snapshots[1])


def test_without_validation_trains_every_epoch():
    result = train(Toy(), TrainConfig(epochs=4, progress=False))
    assert result.epochs_trained == 4 and result.best_epoch == 4
