"""Graph models start here: ``GraphRecommender``, the base of LightGCN and UltraGCN, and
``GraphBackbone``, what a joint model (CREATE, MRGSRec) takes from one.

The base owns what every model trained on the user-item graph shares:

- the training graph: each user's last ``graph_last_n`` training interactions (or last
  ``graph_last_fraction`` of them; all by default), binary (``recbench.graph.training_graph``),
  its edges (``edges``), which users have one (``has_embedding``) and a negative sampler over it;
- an epoch: one pass over the edges in a random order, ``batch_size`` edges per step;
- scoring: a user's final embedding against every item's, a history without a learned user
  folded in (``recbench.nn.graph_encoders.user_states``).

A new graph model subclasses it, declares ``Params(GraphParams)`` (``recbench.params``; the
shipped ones are in ``baselines/params.py``) and writes ``make_encoder``, ``propagate``,
``pair_loss`` and ``final_embeddings``; ``baselines/ultragcn.py`` is the shortest example.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recbench.graph import training_graph
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

    # -- what the family shares --------------------------------------------------------------
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
