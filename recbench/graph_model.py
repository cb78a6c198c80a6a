"""Graph models start here: ``GraphRecommender``, the base of LightGCN and UltraGCN, and
``GraphBackbone``, what a joint model (CREATE, MRGSRec) takes from one.

The base owns what every model trained on the user-item graph shares:

- the training graph: each user's last ``graph_last_n`` training interactions (or last
  ``graph_last_fraction`` of them; all by default), binary (``recbench.graph.training_graph``),
  its edges (``edges``), which users have one (``has_embedding``) and a negative sampler over it;
- an epoch: one pass over the edges in a random order, ``batch_size`` edges per step;
- scoring: a user's final embedding against every item's, a history without a learned user
  folded in (``recbench.nn.graph_encoders.user_states``).

- memory: ``memory_budget``, a whole training run from the data's sizes alone (the user and item
  tables with their gradients and Adam's moments, the graph, a step, an evaluation batch),
  refused before training when it does not fit (``memory_need``); a subclass adds its own
  (``model_budget``: LightGCN's adjacency and propagation, UltraGCN's neighbour table).

A new graph model subclasses it, declares ``Params(GraphParams)`` (``recbench.params``; the
shipped ones are in ``baselines/params.py``) and writes ``make_encoder``, ``propagate``,
``pair_loss`` and ``final_embeddings``; ``baselines/ultragcn.py`` is the shortest example.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recbench.graph import training_graph
from recbench.memory import Budget, Need, Sizes, training_need
from recbench.nn.graph_encoders import NegativeSampler, user_states
from recbench.params import GraphParams
from recbench.training import NeuralRecommender

#: (users [U, d], items [I, d]): the embeddings one propagation of the graph gives
Final = tuple[torch.Tensor, torch.Tensor]


class GraphBackbone(Protocol):
    """What CREATE and MRGSRec take from their graph backbone (any model that provides this;
    the ``GraphRecommender`` subclasses do). Shapes: P pairs, U users, I items, d dims."""

    params: GraphParams
    has_embedding: torch.Tensor  # [U] bool: the user has an edge (after ``build``)

    def build(self, train, item_embedding: nn.Embedding | None = None) -> None:
        """Create the graph and the tables; ``item_embedding``: an item table owned elsewhere."""

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Edge indices [B] per step (a warm-up epoch of its own)."""

    @property
    def n_edges(self) -> int: ...

    def edges(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [P], items [P]) on the CPU of edges ``idx``."""

    def propagate(self, generator: torch.Generator | None = None) -> Final:
        """The embeddings of one training step (its random edge dropout from ``generator``)."""

    def pair_loss(self, users: torch.Tensor, items: torch.Tensor, generator: torch.Generator,
                  final: Final | None = None) -> torch.Tensor:
        """The model's own loss on positive pairs; ``final``: this step's ``propagate`` output
        when the caller has it (one propagation serves every term of a joint step)."""

    def sample_negatives(self, users: torch.Tensor, n: int,
                         generator: torch.Generator) -> torch.Tensor:
        """[P, n] uniform negatives of ``users`` [P] on the CPU."""

    def final_embeddings(self) -> Final:
        """The embeddings that score (cached in eval mode where propagation costs)."""

    @classmethod
    def memory_budget(cls, p: GraphParams, sizes: Sizes, dim: int | None = None,
                      branch: bool = False) -> Budget:
        """The memory of training it on data of ``sizes`` with ``dim``; ``branch``: as the
        graph branch of a joint model, which owns (and costs) the item table and the scoring."""


#: float32 [eval batch, n_items] matrices of an evaluation batch (scores and a filtered copy)
EVAL_COPIES = 2
#: bytes per graph edge held for the run: edge users and items (int64 each), the sampler's
#: sorted keys (int64), R's CSR (float32 data, int32 indices)
EDGE_BYTES = 8 + 8 + 8 + 4 + 4
#: bytes per edge while the graph is built: R in COO and CSR, its edges' int64 copies
EDGE_BUILD_BYTES = 48


def n_edges_bound(p, sizes: Sizes) -> int:
    """The graph's edges at most: each user's last ``graph_last_n`` (or ``graph_last_fraction``)
    of the training interactions, every one by default."""
    e = sizes.n_interactions
    if getattr(p, "graph_last_n", None) is not None:
        e = min(e, sizes.n_users * p.graph_last_n)
    elif getattr(p, "graph_last_fraction", None) is not None:
        e = min(e, math.ceil(e * p.graph_last_fraction) + sizes.n_users)
    return int(e)


class GraphRecommender(NeuralRecommender):
    """The base of a graph model (module docstring). Subclasses set ``Params``."""

    Params = GraphParams

    # -- what a subclass writes -------------------------------------------------------------
    def make_encoder(self, R: sp.csr_matrix, item_embedding: nn.Embedding | None) -> nn.Module:
        """The tables (and propagation) over the [U, I] graph ``R``; ``item_embedding``: an item
        table owned elsewhere (CREATE's and MRGSRec's sequential encoder's)."""
        raise NotImplementedError

    def propagate(self, generator=None) -> Final:
        raise NotImplementedError

    def pair_loss(self, users, items, generator, final=None) -> torch.Tensor:
        raise NotImplementedError

    def final_embeddings(self) -> Final:
        raise NotImplementedError

    @classmethod
    def model_budget(cls, p, sizes: Sizes, dim: int, edges: int) -> Budget:
        """What the subclass adds to ``memory_budget`` (its encoder's buffers and step)."""
        return Budget({}, {})

    # -- what the family shares --------------------------------------------------------------
    @classmethod
    def memory_budget(cls, p, sizes, dim=None, branch=False):
        """The tables (4 copies each: weights, gradient, Adam's 2 moments), the graph's edges,
        building it, an evaluation batch, and the subclass's ``model_budget``; as a ``branch``,
        neither the item table nor the score block."""
        d = dim or p.dim
        users, items, e = sizes.n_users, sizes.n_items, n_edges_bound(p, sizes)
        held = {"user table (weights, gradient, Adam's 2 moments)": 16 * users * d,
                f"training graph ({e:,} edges, sampler)": EDGE_BYTES * e + 16 * (users + 1)}
        evaluation = {"final embeddings": 4 * (users + items) * d}
        if not branch:
            held["item table (weights, gradient, Adam's 2 moments)"] = 16 * items * d
            held["training log (user, item, time int64)"] = 24 * sizes.n_interactions
            evaluation["score block (eval batch x items float32)"] = (
                4 * EVAL_COPIES * min(p.eval_batch_size, max(users, 1)) * items)
        phases = {"graph construction": {"graph COO/CSR copies": EDGE_BUILD_BYTES * e},
                  "evaluation": evaluation}
        return Budget(held, phases) + cls.model_budget(p, sizes, d, e)

    @classmethod
    def memory_need(cls, p, sizes, *, device=None, available=None, positions=None) -> Need:
        """The whole training run's ``Need``; its fix: a smaller evaluation batch or dim, a GPU."""
        name = getattr(cls, "registry_name", cls.__name__)
        return training_need(
            lambda d, b, _: cls.memory_budget(dataclasses.replace(p, eval_batch_size=b), sizes, d),
            f"{name}: training on {sizes.n_users:,} users, {sizes.n_items:,} items, "
            f"{n_edges_bound(p, sizes):,} edges", dim=p.dim, eval_batch=p.eval_batch_size,
            device=device, available=available)

    def build(self, train, item_embedding=None):
        """``item_embedding``: an item table owned elsewhere (CREATE shares its own)."""
        p = self.params
        self.R = training_graph(train, p.graph_last_n, p.graph_last_fraction,
                                self.registry_name)  # [U, I] CSR
        self.encoder = self.make_encoder(self.R, item_embedding)
        coo = self.R.tocoo()
        self.edge_users = torch.from_numpy(coo.row.astype(np.int64))  # [E] CPU
        self.edge_items = torch.from_numpy(coo.col.astype(np.int64))  # [E] CPU
        self.sampler = NegativeSampler(self.R, exclude_positives=p.exclude_positives)
        has_edges = torch.from_numpy(np.diff(self.R.indptr) > 0)  # [U]
        self.register_buffer("has_embedding", has_edges, persistent=False)

    @property
    def n_edges(self) -> int:
        return len(self.edge_users)

    def edges(self, idx):
        return self.edge_users[idx], self.edge_items[idx]

    def sample_negatives(self, users, n, generator):
        return self.sampler.sample(users, n, generator)

    def train_batches(self, epoch, generator):
        perm = torch.randperm(self.n_edges, generator=generator)
        return list(perm.split(self.params.batch_size))  # edge indices per step

    def training_loss(self, batch, generator):
        """The model's loss on edges ``batch`` [B] (``pair_loss`` of their users and items)."""
        return self.pair_loss(*self.edges(batch), generator)

    def score(self, batch):  # [B, n_items]
        user_final, item_final = self.final_embeddings()
        states = user_states(batch.users, batch.items, batch.pad, user_final, item_final,
                             self.has_embedding)  # [B, d]
        return states @ item_final.T
