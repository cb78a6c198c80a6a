"""CREATE composes any backbone that provides the declared interfaces: built here from two
minimal fakes that implement only ``SequentialBackbone`` and ``GraphBackbone`` (no family base
class), it trains, shares one item table and learns."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recbench.evaluation import evaluate
from recbench.graph_model import GraphBackbone
from recbench.memory import Budget
from recbench import registry
from recbench.models import Recommender, build_model, missing_members, register
from recbench.nn.encoders import tail_windows, window_users
from recbench.params import GraphParams, SequentialParams
from recbench.sequential import LocalLoss, SequentialBackbone


class BagOfItems(Recommender, nn.Module):
    """A user state is the mean embedding of the window's items; it predicts the next item."""

    Params = SequentialParams

    def __init__(self, params, **kwargs):
        nn.Module.__init__(self)
        Recommender.__init__(self, params, **kwargs)
        self.max_history = params.max_len

    def build(self, train):
        self.n_items = train.n_items
        self.table = nn.Embedding(train.n_items + 1, self.params.dim, padding_idx=train.n_items)
        nn.init.normal_(self.table.weight, std=self.params.item_init_std())
        offsets, items = train.sequences()
        self.windows, _ = tail_windows(offsets, items, self.params.max_len + 1, pad=train.n_items)
        self.window_users = window_users(offsets)  # [W]

    @property
    def item_table(self):
        return self.table

    def train_batches(self, epoch, generator):
        return list(torch.randperm(len(self.windows), generator=generator).split(32))

    def state(self, x):  # x [B, L] left-padded -> [B, d]
        real = (x != self.n_items).float()
        return (self.table(x) * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp(min=1)

    def local_loss(self, idx, generator, item_weights=None):
        x, y = self.windows[idx, :-1], self.windows[idx, -1]  # [B, L], [B] the next item
        h = self.state(x)  # [B, d]
        table = self.table.weight[: self.n_items] if item_weights is None else item_weights
        return LocalLoss(F.cross_entropy(h @ table.T, y), h, h, torch.arange(len(idx)))

    def window_targets(self, idx):
        return torch.arange(len(idx)), self.windows[idx, -1]

    def user_states(self, idx, local):
        return local.last

    @classmethod
    def memory_budget(cls, p, sizes, dim=None, positions=None):
        return Budget({"table": 16 * sizes.n_items * (dim or p.dim)}, {})

    @classmethod
    def cheaper_params(cls, p):
        return None

    def max_positions(self):
        return None

    def score(self, batch, item_weights=None):
        table = self.table.weight[: self.n_items] if item_weights is None else item_weights
        return self.state(batch.items) @ table.T


class MatrixFactorisation(Recommender, nn.Module):
    """BPR matrix factorisation on the graph's edges, on an item table it is handed."""

    Params = GraphParams

    def __init__(self, params, **kwargs):
        nn.Module.__init__(self)
        Recommender.__init__(self, params, **kwargs)

    def build(self, train, item_embedding=None):
        self.users_, self.items_ = torch.from_numpy(train.users), torch.from_numpy(train.items)
        self.n_items = train.n_items
        self.user_table = nn.Embedding(train.n_users, self.params.dim)
        nn.init.normal_(self.user_table.weight, std=self.params.init_std)
        self.shared = item_embedding
        self.has_embedding = torch.zeros(train.n_users, dtype=torch.bool)
        self.has_embedding[self.users_] = True

    @property
    def n_edges(self):
        return len(self.users_)

    def edges(self, idx):
        return self.users_[idx], self.items_[idx]

    def train_batches(self, epoch, generator):
        return list(torch.randperm(self.n_edges, generator=generator).split(self.params.batch_size))

    def propagate(self, generator=None):
        return self.user_table.weight, self.shared.weight[: self.n_items]

    def sample_negatives(self, users, n, generator):
        return torch.randint(self.n_items, (len(users), n), generator=generator)

    def pair_loss(self, users, items, generator, final=None):
        u, i = final or self.propagate(generator)
        neg = self.sample_negatives(users, 1, generator)[:, 0]
        return F.softplus(((u[users] * i[neg]).sum(-1) - (u[users] * i[items]).sum(-1))).mean()

    def final_embeddings(self):
        return self.propagate()

    @classmethod
    def memory_budget(cls, p, sizes, dim=None, branch=False):
        return Budget({"user table": 16 * sizes.n_users * (dim or p.dim)}, {})


@pytest.fixture
def fakes():
    register("BagOfItems")(BagOfItems)
    register("MatrixFactorisation")(MatrixFactorisation)
    yield
    registry.remove("BagOfItems")
    registry.remove("MatrixFactorisation")


def test_the_fakes_provide_exactly_the_declared_interfaces():
    assert missing_members(BagOfItems, SequentialBackbone) == []
    assert missing_members(MatrixFactorisation, GraphBackbone) == []


@pytest.mark.parametrize("align_positions", ["last", "all"])
def test_create_composes_fake_backbones_and_learns(small_split, fakes, align_positions):
    model = build_model("CREATE", {
        "sequential_backbone": "BagOfItems", "graph_backbone": "MatrixFactorisation",
        "sequential": {"dim": 32, "max_len": 10}, "graph": {"batch_size": 512},
        "warmup_epochs": 1, "epochs": 6, "lr": 0.01, "batch_size": 64, "patience": None,
        "align_positions": align_positions, "progress": False}, seed=0)
    model.fit(small_split.train)
    assert model.graph.shared is model.seq.table  # one item table
    phases = [row["phase"] for row in model.train_result.history]
    assert phases == ["warmup"] + ["joint"] * 6
    assert {"L_local", "L_global", "L_align"} <= set(model.train_result.history[-1])
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.train)
    base = evaluate(pop, small_split.test)[0]["ndcg@10"]
    assert evaluate(model, small_split.test)[0]["ndcg@10"] > 2 * base
