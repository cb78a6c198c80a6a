"""CREATE: Cross-REpresentation Aligned Transfer Encoders (the paper's Section 3).

Built by composition from the project's own models, never from copies of them:

- a sequential backbone, ``SASRec`` or ``BERT4Rec`` (baselines/sasrec.py, baselines/bert4rec.py),
  whose item embedding table is THE item table of the model;
- a graph backbone, ``LightGCN`` or ``UltraGCN`` (baselines/lightgcn.py, baselines/ultragcn.py),
  built on each user's last N (or last n%) training interactions and handed that same item table,
  so both encoders train one set of item embeddings; its user table exists only for training;
- an alignment between the user's sequential state h_u (the backbone's output at the last
  position of its training window) and the user's graph embedding e_u: none, contrastive
  (InfoNCE over the batch) or Barlow Twins (create_model/alignment.py).

Loss (Eq. 5): L = L_local + w_global * L_global + w_align * L_align. During the first
``warmup_epochs`` epochs only the graph backbone trains (L = L_global; the transformer gets no
gradient) and validation is skipped, since the sequential part is not trained yet; then the whole
model trains end to end, with early stopping on validation NDCG@10 as every neural model here.

Inference uses the sequential backbone alone with the enriched item table: no user embedding, no
folding-in, so a user unseen in training is scored like any other.

A step takes a batch of the backbone's training windows (one per user). Each window's user gets
one positive drawn uniformly from their graph edges and the graph backbone's own negatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from create_model.alignment import ALIGNMENTS, barlow_twins, info_nce
from recbench.errors import ConfigError
from recbench.memory import Need
from recbench.models import get_model_class, make_params, register
from recbench.training import NeuralRecommender, TrainConfig

SEQUENTIAL = ("SASRec", "BERT4Rec")
GRAPH = ("LightGCN", "UltraGCN")


def _for_backbone(params: dict, backbone: str, backbones: tuple[str, ...]) -> dict:
    """Shared keys plus the chosen backbone's own sub-dict; other backbones' sub-dicts dropped."""
    shared = {k: v for k, v in params.items() if k not in backbones}
    return {**shared, **(params.get(backbone) or {})}


@register("CREATE")
class CREATE(NeuralRecommender):
    @dataclass
    class Params(TrainConfig):
        epochs: int = 100
        batch_size: int = 128
        lr: float = 1e-3
        patience: int | None = 5
        sequential_backbone: str = "SASRec"
        graph_backbone: str = "LightGCN"
        # parameters of the backbones, as their own config entries take them; the graph's `dim`
        # is always the sequential one (one shared item table). A sub-dict named after a
        # backbone applies to that backbone only, so one config serves the backbone grid:
        #   graph: {graph_last_n: 50, LightGCN: {n_layers: 3}, UltraGCN: {negative_num: 50}}
        sequential: dict = field(default_factory=dict)
        graph: dict = field(default_factory=lambda: {"graph_last_n": 50})
        alignment: str = "barlow"  # none | contrastive | barlow
        w_global: float = 0.1
        w_align: float = 0.1
        barlow_lambda: float = 5e-3
        temperature: float = 0.2  # InfoNCE
        warmup_epochs: int = 5

        def validate(self):
            super().validate()
            if self.sequential_backbone not in SEQUENTIAL:
                raise ConfigError(f"models.CREATE.sequential_backbone must be one of {SEQUENTIAL}, "
                                  f"got {self.sequential_backbone!r}")
            if self.graph_backbone not in GRAPH:
                raise ConfigError(f"models.CREATE.graph_backbone must be one of {GRAPH}, got "
                                  f"{self.graph_backbone!r}")
            if self.alignment not in ALIGNMENTS:
                raise ConfigError(f"models.CREATE.alignment must be one of {ALIGNMENTS}, got "
                                  f"{self.alignment!r}")
            if min(self.w_global, self.w_align, self.barlow_lambda, self.warmup_epochs) < 0:
                raise ConfigError("models.CREATE: w_global, w_align, barlow_lambda and "
                                  "warmup_epochs must be >= 0")
            if self.temperature <= 0:
                raise ConfigError(f"models.CREATE.temperature must be > 0, got {self.temperature}")
            if "dim" in self.graph or any("dim" in (self.graph.get(g) or {}) for g in GRAPH):
                raise ConfigError("models.CREATE.graph.dim: the graph backbone shares the item "
                                  "table, so its dim is sequential.dim; remove graph.dim")
            # the backbones' own checks, with CREATE's key names in the messages
            self.backbone_params()

        def backbone_params(self):
            seq_cls = get_model_class(self.sequential_backbone)
            graph_cls = get_model_class(self.graph_backbone)
            seq = make_params(seq_cls, _for_backbone(self.sequential, self.sequential_backbone,
                                                     SEQUENTIAL), "CREATE.sequential")
            graph = make_params(graph_cls, {**_for_backbone(self.graph, self.graph_backbone, GRAPH),
                                            "dim": seq.dim}, "CREATE.graph")
            return seq_cls, seq, graph_cls, graph

    uses_gpu = True

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        seq_cls, seq_params, self._graph_cls, self._graph_params = params.backbone_params()
        self.seq = seq_cls(seq_params, seed=self.seed, device=str(self.device))
        self.max_history = self.seq.max_history
        self.no_validation_before = params.warmup_epochs + 1  # the loop skips validation before
        self.epoch = 0

    def build(self, train):
        self.seq.build(train)  # the item table lives in the sequential encoder
        self.graph = self._graph_cls(self._graph_params, seed=self.seed, device=str(self.device))
        self.graph.build(train, item_embedding=self.seq.encoder.item_emb)
        R = self.graph.R  # [U, I] binary CSR of the graph's edges
        self.edge_ptr = torch.from_numpy(R.indptr.astype(np.int64))  # [U + 1]
        self.edge_items = torch.from_numpy(R.indices.astype(np.int64))  # [E]
        self.window_users = torch.as_tensor(self.seq.window_users)  # [W] user of each window
        if (self.edge_ptr[self.window_users + 1] == self.edge_ptr[self.window_users]).any():
            raise ConfigError("CREATE: a user with a training window has no graph edge; "
                              "graph_last_n / graph_last_fraction must keep >= 1 edge per user")

    def training_memory(self) -> Need | None:
        """The sequential backbone's full-CE peak (None with ``sequential: {loss: sce}``)."""
        return self.seq.training_memory(
            label=f"CREATE's {self.params.sequential_backbone} backbone",
            key="in CREATE's `sequential:`, under models.CREATE.params or "
                "datasets.<name>.model_params.CREATE")

    def warming_up(self) -> bool:
        return self.epoch <= self.params.warmup_epochs

    def train_batches(self, epoch, generator):
        self.epoch = epoch
        return self.seq.train_batches(epoch, generator)

    def positives(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One item per user, uniformly among the user's graph edges. users [B] -> items [B]."""
        start, deg = self.edge_ptr[users], self.edge_ptr[users + 1] - self.edge_ptr[users]
        pick = (torch.rand(len(users), generator=generator) * deg).long()
        return self.edge_items[start + pick]

    def training_loss(self, idx, generator):
        users = self.window_users[idx]  # [B] CPU
        pos = self.positives(users, generator)  # [B]
        dev = self.device
        l_global, e_u = self.graph.graph_loss(users, pos, generator)  # scalar, [B, d]
        if self.warming_up():
            return l_global
        l_local, h_u = self.seq.local_loss(idx, generator)  # scalar, [B, d]
        loss = l_local + self.params.w_global * l_global
        if self.params.alignment == "barlow":
            loss = loss + self.params.w_align * barlow_twins(h_u, e_u, self.params.barlow_lambda)
        elif self.params.alignment == "contrastive":
            loss = loss + self.params.w_align * info_nce(h_u, e_u, self.params.temperature)
        return loss.to(dev)

    def score(self, batch):  # [B, n_items]: the sequential backbone alone
        return self.seq.score(batch)
