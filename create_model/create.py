"""CREATE: Cross-REpresentation Aligned Transfer Encoders (the paper's Section 3).

Built by composition from the project's own models, never from copies of them:

- a sequential backbone, ``SASRec`` or ``BERT4Rec`` (baselines/sasrec.py, baselines/bert4rec.py),
  whose item embedding table is THE item table of the model;
- a graph backbone, ``LightGCN`` or ``UltraGCN`` (baselines/lightgcn.py, baselines/ultragcn.py),
  built on each user's last N (or last n%) training interactions and handed that same item table,
  so both encoders train one set of item embeddings; its user table exists only for training;
- an alignment between the user's sequential state h_u and the user's graph embedding e_u: none,
  contrastive (InfoNCE over the batch) or Barlow Twins (create_model/alignment.py). h_u is the
  state that scores the next item: SASRec's output at the last position of the user's training
  window; BERT4Rec's output at a [MASK] appended after the window's last items (Section 3.3).

Loss (Eq. 5): L = L_local + w_global * L_global + w_align * L_align.

Schedule (an epoch is a full pass over the graph's edges in both phases):

- warm-up, epochs 1 .. ``warmup_epochs``: exactly an epoch of the standalone graph model. The
  graph backbone's own batches (its ``batch_size`` edges, its negatives, its loss, weight 1) over
  every edge of the graph in a random order; the transformer gets no gradient and validation is
  skipped, since the sequential part is not trained yet. At the end of warm-up the graph branch's
  own validation NDCG@10 (its user and item embeddings) is logged as ``graph_val_ndcg@10``.
- joint, the epochs after: one pass over the sequential backbone's training windows (its own
  batches) with the graph's edges interleaved, so that both passes finish together. Step s takes
  sequential batch s and the s-th of as many equal chunks of a fresh edge permutation; its loss is
  Eq. 5 with L_local the backbone's CE over the batch's positions, L_global the graph loss of that
  edge chunk, and L_align between h_u and e_u of the sequential batch's users. LightGCN
  propagates once per step; that propagation serves both L_global and e_u. Validation and early
  stopping as in every neural model. ``epochs`` counts both phases.

Scales, so that the three terms work together:

- every graph loss is a per-example mean: LightGCN's BPR is; UltraGCN runs with
  ``reduction: mean`` (per-positive means, L2 on the rows the step touched, not the whole shared
  item table each step);
- the graph's user table starts at the shared item table's scale (std d^-1/2, the transformer's
  initialisation) unless ``graph.init_std`` is set;
- Barlow Twins takes ``barlow_scale``: ``sum`` (Eq. 3 as printed, ~d for unrelated views) or
  ``mean`` (Eq. 3 / d), and standardises each view relative to its own scale.

Each step returns its terms (L_local, L_global, L_align) beside the total, so ``history.csv`` has
one column per term.

Inference uses the sequential backbone alone with the enriched item table: no user embedding, no
folding-in, so a user unseen in training is scored like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from create_model.alignment import ALIGNMENTS, BARLOW_SCALES, barlow_twins, info_nce
from recbench.errors import ConfigError
from recbench.memory import Need
from recbench.models import get_model_class, make_params, register
from recbench.training import NeuralRecommender, TrainConfig

log = logging.getLogger(__name__)

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
        epochs: int = 100  # warm-up epochs included
        batch_size: int = 128  # sequential windows per joint step
        lr: float = 1e-3
        patience: int | None = 5
        sequential_backbone: str = "SASRec"
        graph_backbone: str = "LightGCN"
        # parameters of the backbones, as their own config entries take them; the graph's `dim`
        # is always the sequential one (one shared item table). A sub-dict named after a
        # backbone applies to that backbone only, so one config serves the backbone grid:
        #   graph: {graph_last_n: 50, LightGCN: {n_layers: 3}, UltraGCN: {negative_num: 50}}
        # The graph's batch_size is its warm-up batch (edges per step).
        sequential: dict = field(default_factory=dict)
        graph: dict = field(default_factory=lambda: {"graph_last_n": 50})
        alignment: str = "barlow"  # none | contrastive | barlow
        w_global: float = 0.1
        w_align: float = 0.1
        barlow_lambda: float = 5e-3
        barlow_scale: str = "mean"  # Eq. 3 as a sum ("sum") or divided by d ("mean")
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
            if self.barlow_scale not in BARLOW_SCALES:
                raise ConfigError(f"models.CREATE.barlow_scale must be one of {BARLOW_SCALES}, "
                                  f"got {self.barlow_scale!r}")
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
            graph = _for_backbone(self.graph, self.graph_backbone, GRAPH)
            # the graph's users start at the shared item table's scale (SequenceEncoder: d^-1/2)
            defaults = {"init_std": seq.dim ** -0.5, "progress": False}
            if self.graph_backbone == "UltraGCN":
                defaults["reduction"] = "mean"  # per-example, like the cross-entropy beside it
            graph = make_params(graph_cls, {**defaults, **graph, "dim": seq.dim}, "CREATE.graph")
            return seq_cls, seq, graph_cls, graph

    uses_gpu = True

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        seq_cls, seq_params, self._graph_cls, self._graph_params = params.backbone_params()
        self.seq = seq_cls(seq_params, seed=self.seed, device=str(self.device))
        self.max_history = self.seq.max_history
        self.no_validation_before = params.warmup_epochs + 1  # the loop skips validation before
        self._valid = None

    def fit(self, train, valid=None):
        self._valid = valid  # for the graph branch's own validation NDCG at the end of warm-up
        try:
            super().fit(train, valid)
        finally:
            self._valid = None

    def build(self, train):
        self.seq.build(train)  # the item table lives in the sequential encoder
        self.graph = self._graph_cls(self._graph_params, seed=self.seed, device=str(self.device))
        self.graph.build(train, item_embedding=self.seq.encoder.item_emb)
        self.window_users = torch.as_tensor(self.seq.window_users)  # [W] user of each window
        if not bool(self.graph.has_embedding[self.window_users].all()):
            raise ConfigError("CREATE: a user with a training window has no graph edge; "
                              "graph_last_n / graph_last_fraction must keep >= 1 edge per user")

    def training_memory(self) -> Need | None:
        """The sequential backbone's full-CE peak (None with ``sequential: {loss: sce}``)."""
        return self.seq.training_memory(
            label=f"CREATE's {self.params.sequential_backbone} backbone",
            key="in CREATE's `sequential:`, under models.CREATE.params or "
                "datasets.<name>.model_params.CREATE")

    def train_batches(self, epoch, generator):
        """Warm-up: the graph's own edge batches, ("graph", edges [b]). Joint: pairs
        ("joint", windows [B], edges [E / n_steps]), both passes finishing together."""
        if epoch <= self.params.warmup_epochs:
            return [("graph", edges) for edges in self.graph.train_batches(epoch, generator)]
        windows = self.seq.train_batches(epoch, generator)
        edges = torch.randperm(len(self.graph.edge_users), generator=generator)
        return [("joint", w, e) for w, e in zip(windows, edges.tensor_split(len(windows)))]

    def user_states(self, idx, h_last):
        """h_u [B, d] of windows ``idx``: SASRec's last position (``h_last``, from its loss pass);
        BERT4Rec's output at a [MASK] appended after the window's last max_len - 1 items."""
        if self.params.sequential_backbone == "SASRec":
            return h_last
        enc = self.seq.encoder
        items = self.seq.windows[idx, 1:]  # [B, max_len - 1] the window's last items, left-padded
        mask = torch.full((len(items), 1), enc.mask_id, dtype=items.dtype)
        return enc(torch.cat([items, mask], dim=1).to(enc.item_emb.weight.device))[:, -1]

    def alignment_loss(self, idx, h_last, final) -> torch.Tensor:
        """L_align between h_u and e_u of windows ``idx`` (``final``: this step's graph output)."""
        h_u = self.user_states(idx, h_last)  # [B, d]
        e_u = final[0][self.window_users[idx].to(h_u.device)]  # [B, d]
        if self.params.alignment == "barlow":
            return barlow_twins(h_u, e_u, self.params.barlow_lambda, self.params.barlow_scale)
        return info_nce(h_u, e_u, self.params.temperature)

    def training_loss(self, batch, generator):
        if batch[0] == "graph":  # warm-up: the standalone graph model's step
            l_global = self.graph.training_loss(batch[1], generator)
            return {"loss": l_global, "L_global": l_global.detach()}
        _, idx, edges = batch
        final = self.graph.encoder()  # ([U, d], [I, d]); LightGCN: this step's one propagation
        l_global = self.graph.training_loss(edges, generator, final=final)
        l_local, h_last = self.seq.local_loss(idx, generator)  # scalar, [B, d]
        loss = l_local + self.params.w_global * l_global
        terms = {"L_local": l_local.detach(), "L_global": l_global.detach()}
        if self.params.alignment != "none":
            l_align = self.alignment_loss(idx, h_last, final)
            loss = loss + self.params.w_align * l_align
            terms["L_align"] = l_align.detach()
        return {"loss": loss, **terms}

    def epoch_metrics(self, epoch) -> dict:
        """The graph branch's own validation NDCG@10 at the end of warm-up (with a validation set),
        in the protocol early stopping uses (``eval_filter_seen``)."""
        if epoch != self.params.warmup_epochs or self._valid is None:
            return {}
        from recbench.evaluation import evaluate  # evaluation imports models, not the reverse

        self.graph.eval()
        metrics = evaluate(self.graph, self._valid, batch_size=self.params.eval_batch_size,
                           filter_seen=self.eval_filter_seen, device=self.device)[0]
        self.graph.train()
        log.info("CREATE: graph branch (%s) after %d warm-up epochs: val ndcg@10 %.4f",
                 self.params.graph_backbone, epoch, metrics["ndcg@10"])
        return {"graph_val_ndcg@10": metrics["ndcg@10"]}

    def score(self, batch):  # [B, n_items]: the sequential backbone alone
        return self.seq.score(batch)
