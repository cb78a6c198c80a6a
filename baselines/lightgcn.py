"""LightGCN (He et al., SIGIR 2020): BPR on the K-layer mean of a parameter-free graph propagation.

The graph is each user's last ``graph_last_n`` training interactions (or last
``graph_last_fraction`` of them; all by default), binary. An epoch is one pass over the graph's
edges in a random order; each positive (u, i) gets one uniform negative, redrawn while it is one
of u's graph items (``exclude_positives``), or with ``negatives: catalog`` every item not among
u's graph items (the paper's Section 3.4 BPR, as a per-positive mean; see
``recbench.nn.graph_encoders``). Every step propagates the whole graph (sparse), as LightGCN's
gradient flows through every layer. ``hop_norm`` and ``edge_dropout`` (off by default) are the
form CREATE's predecessor MRGSRec uses: L2-normalised hop outputs, edges dropped at every training
propagation (``recbench.nn.graph_encoders.LightGCNEncoder``).

Scoring: the evaluated user's final embedding against every item's final embedding. A history
without a learned user (users < 0, or a user with no edge in the graph) is folded in: its state
is the mean of its distinct items' final embeddings (``recbench.nn.graph_encoders.user_states``).

Regularisation is LightGCN's own: ``reg`` * L2 of the batch's layer-0 embeddings, inside the
loss. ``weight_decay`` (AdamW's decoupled decay on the whole tables) stays 0 by default.
"""

from __future__ import annotations


import torch

from baselines.params import LightGCNParams
from recbench.graph_model import GraphRecommender
from recbench.memory import Budget
from recbench.models import register
from recbench.nn.graph_encoders import CATALOG_BLOCK, LightGCNEncoder

#: bytes per entry of the [U+I, U+I] adjacency (2 per edge) while ``normalized_adjacency``
#: builds it (scipy's block and scaled copies, the COO int64 indices, coalesce, CSR)
ADJACENCY_BUILD_BYTES = 64


@register("LightGCN")
class LightGCN(GraphRecommender):
    Params = LightGCNParams

    def make_encoder(self, R, item_embedding):
        p = self.params
        return LightGCNEncoder(R, dim=p.dim, n_layers=p.n_layers, reg=p.reg, init_std=p.init_std,
                               item_embedding=item_embedding, hop_norm=p.hop_norm,
                               edge_dropout=p.edge_dropout)

    @classmethod
    def model_budget(cls, p, sizes, dim, edges):
        """The normalised adjacency (CSR: float32 values, int64 columns, 2 entries per edge) and
        R's CSR buffers; building them; a step's propagation (its K+1 layers, their mean and
        their gradients) and batch loss."""
        nodes, entries = sizes.n_users + sizes.n_items, 2 * edges
        held = {"normalised adjacency (CSR)": 12 * entries + 8 * (nodes + 1)
                + 8 * (sizes.n_users + 1 + edges)}
        step = {f"propagation ({p.n_layers + 1} layers and gradients)":
                4 * 2 * (p.n_layers + 2) * nodes * dim}
        if p.edge_dropout > 0:
            held["edge of each adjacency entry (int64)"] = 8 * entries
            step["dropped adjacency"] = 12 * entries
        if p.negatives == "catalog":
            step["catalogue-wide BPR blocks"] = 3 * 4 * CATALOG_BLOCK
        return Budget(held, {"graph construction": {"adjacency copies":
                                                    ADJACENCY_BUILD_BYTES * entries},
                             "training step": step})

    def build(self, train, item_embedding=None):
        super().build(train, item_embedding)
        self._final = None  # cached (users, items) final embeddings while evaluating

    def train(self, mode: bool = True):
        self._final = None  # weights change (training) or were just restored: recompute
        return super().train(mode)

    def propagate(self, generator: torch.Generator | None = None):
        """(users [U, d], items [I, d]) of one training step (edges dropped by ``generator``)."""
        return self.encoder(generator)

    def pair_loss(self, users, items, generator, final=None):
        """BPR of the positive pairs (users [B], items [B], CPU); ``final``: this step's
        ``propagate`` output when the caller has it (CREATE reuses one propagation)."""
        dev = self.device
        if final is None:
            final = self.propagate(generator)
        if self.params.negatives == "catalog":
            return self.encoder.catalog_bpr_loss(users.to(dev), items.to(dev), final=final)
        neg = self.sample_negatives(users, 1, generator)[:, 0]  # [B]
        return self.encoder.bpr_loss(users.to(dev), items.to(dev), neg.to(dev), final=final)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U, d], items [I, d]); cached in eval mode until train()/eval() is called."""
        if self.training or torch.is_grad_enabled():
            return self.encoder()
        if self._final is None:
            self._final = self.encoder()
        return self._final
