"""MRGSRec (Baikalov and Frolov, WWW 2024 Companion, "End-to-End Graph-Sequential Representation
Learning for Accurate Recommendations"): a sequential and a graph encoder trained jointly, their
user representations fused by an MLP for the prediction.

Built from the project's pieces (the architecture and defaults follow the public reference code,
github.com/NonameUntitled/MRGSRec; no code is taken from it):

- one item table, shared by both views: the rows of ``SequenceEncoder``'s embedding
  (recbench/nn/encoders.py) are also the layer-0 item embeddings of a ``LightGCN`` graph encoder
  (baselines/lightgcn.py, built on each user's training interactions, with its own user table);
- sequential view: the causal transformer's state h_t at every position t of the user's training
  window (the last ``max_len`` items before the target);
- graph view: the user's LightGCN embedding g_u (``graph_layers`` propagation layers); the
  propagated item embeddings I_g are the output layer of the sequential view, as in the reference;
- fusion: f_t = MLP([h_t ; g_u]) (Linear 2d -> ``fusion_dim``, GELU, Linear -> d), scored against
  the item table: s_t = f_t @ E^T. Inference scores the last position: f_L @ E^T.

Every real position t with next item y predicts y four ways, and the loss is

    L = w_local * CE(h_t @ I_g^T, y)                  local: full CE, or SCE (``loss: sce``)
      + w_global * BPR(g_u @ I_g^T, y)                global: the graph view alone
      + w_fusion * BPR(f_t @ E^T, y)                  fusion: the prediction used at inference
      + w_contrastive * InfoNCE(h_t -> g_u)           the two views of one user pulled together

where BPR(s, y) = mean_j softplus(s_j - s_y) over every catalog item j (as the reference), or over
``n_negatives`` uniform negatives per position (the graph module's sampler; for large catalogs),
and InfoNCE scores each position's h_t against the graph embeddings of the batch's users (cosine
at ``temperature``), its own user being the positive. Weights and defaults are the reference's:
1, 0.1, 0.5, 0.05; dim 64, max_len 10, 2 layers, 2 heads, feed-forward and fusion width 256,
dropout 0.3, batch 256, lr 1e-3, one graph layer, contrastive temperature 1.

How this differs from the reference, and why:

- attention is causal and there is no user token. The reference prepends a user token to the
  item sequence whose attention row sees every position, fuses that token's output with g_u and
  trains the fusion to predict every next item of the sequence: during training the fused state
  sees the items it is asked to predict. Here the fused prediction at position t reads h_t (items
  up to t only) and g_u, so changing a later item never changes an earlier prediction; the
  user's identity enters through the graph view only;
- the contrastive term contrasts each position with the batch's distinct users (an [N, B] InfoNCE
  with its own user as the positive); the reference's NT-Xent pairs each position with a copy of
  its user's graph embedding, so positions of one user are also each other's negatives;
- the graph encoder is the project's LightGCN (mean of layers 0..K), without the reference's L2
  normalisation of the propagated layer and its edge dropout; the transformer is the project's
  pre-norm encoder (right-aligned learned positions, as the reference's reversed positions);
- evaluation: the project's global temporal split (README, "Split") instead of leave-one-out, and
  the catalog is every training item; early stopping on validation NDCG@10 as every neural model.

A user without a learned graph embedding (``HistoryBatch.users == -1``, or no edge in the graph)
gets g = the mean of its history items' propagated embeddings (``fold_in``, as LightGCN scores
such users); the history is the last ``max_len`` items the evaluator passes. Like LightGCN's own
user embeddings, g_u of a training user summarises all of the user's training interactions; test
targets lie after the split time and never enter the graph.
"""

from __future__ import annotations

import dataclasses


import torch
import torch.nn.functional as F
from torch import nn

from baselines.lightgcn import LightGCN
from baselines.params import MRGSRecParams
from recbench.errors import ConfigError
from recbench.graph_model import GraphBackbone
from recbench.models import register
from recbench.nn.encoders import SequenceEncoder
from recbench.nn.graph_encoders import user_states
from recbench.nn.losses import FULL_CE_COPIES
from recbench.sequential import SequentialRecommender, catalog_loss_bytes, max_positions, \
    sequential_budget


def bpr(states: torch.Tensor, items: torch.Tensor, pos: torch.Tensor,
        neg: torch.Tensor | None = None) -> torch.Tensor:
    """mean softplus(s_neg - s_pos): states [N, d], items [C, d], pos [N], neg [N, M] or None (all C)."""
    if neg is None:
        s = states @ items.T  # [N, C]
        return F.softplus(s - s.gather(1, pos[:, None])).mean()
    s_pos = (states * items[pos]).sum(-1)  # [N]
    s_neg = torch.einsum("nd,nmd->nm", states, items[neg])  # [N, M]
    return F.softplus(s_neg - s_pos[:, None]).mean()


@register("MRGSRec")
class MRGSRec(SequentialRecommender):
    Params = MRGSRecParams

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self._graph_params = params.graph_params()

    def make_encoder(self, n_items):
        return SequenceEncoder(n_items, **self.params.encoder_kwargs(), causal=True,
                               ffn_dim=self.params.ffn_dim)

    def window_length(self):
        return self.params.max_len + 1  # inputs are the first max_len items, targets the last

    def build(self, train):
        p = self.params
        super().build(train)  # the encoder (THE item table) and the windows
        self.inputs, self.targets = self.windows[:, :-1], self.windows[:, 1:]  # [W, max_len], CPU
        self.input_lengths = self.lengths - 1  # [W] real inputs per row (>= 1)
        self.graph: GraphBackbone = LightGCN(self._graph_params, seed=self.seed,
                                             device=str(self.device))
        self.graph.build(train, item_embedding=self.item_table)  # one item table
        self.fusion = nn.Sequential(nn.Linear(2 * p.dim, p.fusion_dim), nn.GELU(),
                                    nn.Linear(p.fusion_dim, p.dim))
        if not bool(self.graph.has_embedding[self.window_users].all()):
            raise ConfigError("MRGSRec: a user with a training window has no graph edge; "
                              "graph_last_n / graph_last_fraction must keep >= 1 edge per user")

    @classmethod
    def memory_budget(cls, p, sizes, dim=None, positions=None):
        """The sequential family's budget with MRGSRec's catalogue terms (full CE or SCE, and the
        two BPR terms: over every item with ``n_negatives: null``, about 3 float32 [positions x
        items] matrices each), plus its LightGCN branch on the shared item table."""
        p = p if dim is None or dim == p.dim else dataclasses.replace(p, dim=dim)
        n = positions or max_positions(p, sizes)
        bpr = (2 * 4 * FULL_CE_COPIES * n * sizes.n_items if p.n_negatives is None
               else 2 * 4 * 4 * n * p.n_negatives * p.dim)
        seq = sequential_budget(p, sizes, catalog_loss_bytes(p, n, sizes.n_items) + bpr, n)
        return seq + LightGCN.memory_budget(p.graph_params(), sizes, p.dim, branch=True)

    @classmethod
    def cheaper_params(cls, p):
        if p.loss == "sce" and p.n_negatives is not None:
            return None
        return ("`loss: sce` and `n_negatives: 256`",
                dataclasses.replace(p, loss="sce", n_negatives=p.n_negatives or 256))

    def fuse(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Sequential states h [..., d] and graph states g [..., d] -> fused states [..., d]."""
        return self.fusion(torch.cat([h, g], dim=-1))

    def loss_terms(self, idx: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The four unweighted losses of the windows ``idx`` [B] (see the module docstring)."""
        p = self.params
        dev = self.encoder.item_emb.weight.device
        L = int(self.input_lengths[idx].max())  # drop the batch's all-padding columns
        x, y = self.inputs[idx, -L:], self.targets[idx, -L:]  # [B, L] CPU
        real = (x != self.encoder.pad_id).view(-1).nonzero().squeeze(1)  # [N] real positions
        rows = real // L  # [N] batch row of each position
        targets = y.reshape(-1)[real]  # [N]
        users = self.window_users[idx]  # [B]

        h = self.encoder(x.to(dev))  # [B, L, d]
        states = h.reshape(-1, h.shape[-1])[real.to(dev)]  # [N, d]
        user_final, item_final = self.graph.propagate()  # [U, d], [I, d]
        g = user_final[users.to(dev)]  # [B, d]
        g_pos = g[rows.to(dev)]  # [N, d]
        tgt = targets.to(dev)
        neg = None
        if p.n_negatives is not None:
            neg = self.graph.sample_negatives(users[rows], p.n_negatives, generator)  # [N, M]
            neg = neg.to(dev)

        local = self.catalog_loss(states, tgt, generator, item_weights=item_final)
        fused = self.fuse(states, g_pos)  # [N, d]
        sims = F.normalize(states, dim=-1) @ F.normalize(g, dim=-1).T / p.temperature  # [N, B]
        return {
            "local": local,
            "global": bpr(g_pos, item_final, tgt, neg),
            "fusion": bpr(fused, self.encoder.item_weights, tgt, neg),
            "contrastive": F.cross_entropy(sims, rows.to(dev)),
        }

    def scored_positions(self):
        return self.input_lengths

    def training_loss(self, idx, generator):
        p = self.params
        t = self.loss_terms(idx, generator)
        return (p.w_local * t["local"] + p.w_global * t["global"] + p.w_fusion * t["fusion"]
                + p.w_contrastive * t["contrastive"])

    def graph_states(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(graph user states [B, d], propagated items [I, d]); folded in for unknown users."""
        user_final, item_final = self.graph.final_embeddings()  # cached in eval mode
        g = user_states(batch.users, batch.items, batch.pad, user_final, item_final,
                        self.graph.has_embedding)  # [B, d]
        return g, item_final

    def score(self, batch):  # [B, n_items]
        if self.training:
            self.eval()  # no dropout at inference (eval() also drops the graph's cached output)
        batch = batch.to(self.encoder.item_emb.weight.device)
        h = self.encoder(batch.items)[:, -1]  # [B, d] sequential state at the last position
        g, _ = self.graph_states(batch)  # [B, d]
        return self.fuse(h, g) @ self.encoder.item_weights.T  # [B, d] @ [d, I]
