"""Helpers more than one test directory uses (tests/ is on sys.path: tests/conftest.py)."""

#: a model a researcher adds: one module with @register, a Params dataclass, fit and score
TOY_MODULE = '''
from dataclasses import dataclass

import torch
from recbench.models import Recommender, register


@register("ToyPop")
class ToyPop(Recommender):
    @dataclass
    class Params:
        smoothing: float = 1.0

    def fit(self, train, valid=None):
        self.pop = torch.from_numpy(train.popularity() + self.params.smoothing).float()

    def score(self, batch):
        return self.pop.expand(len(batch.lengths), -1)
'''


def reversed_keys(value):
    """``value`` with every mapping's keys in reverse order, at every depth (lists as they are)."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value
