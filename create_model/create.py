"""CREATE: Cross-REpresentation Aligned Transfer Encoders (the paper's Section 3).

Built by composition from the project's own models, never from copies of them, each reached
only through its family's declared interface (so any model that provides it composes):

- a sequential backbone, ``SASRec`` or ``BERT4Rec`` (``recbench.sequential.SequentialBackbone``),
  whose item embedding table is THE item table of the model;
- a graph backbone, ``LightGCN`` or ``UltraGCN`` (``recbench.graph_model.GraphBackbone``),
  built on each user's last N (or last n%) training interactions and handed that same item table,
  so both encoders train one set of item embeddings; its user table exists only for training;
- an alignment between the user's sequential state h_u and the user's graph embedding e_u: none,
  contrastive (InfoNCE) or Barlow Twins (create_model/alignment.py).

Loss (Eq. 5): L = L_local + w_global * L_global + w_align * L_align, in two phases:

- warm-up, epochs 1 .. ``warmup_epochs``: the graph branch alone (L_global at weight 1), the
  transformer gets no gradient, validation is skipped; at its end the graph branch's own
  validation NDCG@10 is logged as ``graph_val_ndcg@10``;
- joint, the ``epochs`` epochs after it (``epochs`` counts joint epochs only, as SASRec's count
  its epochs, so that the two get the same sequential budget; the training loop owns the
  warm-up and its unit, ``recbench.training``): one pass over the sequential backbone's training
  windows (its own batches), each step Eq. 5 on one batch. Validation and early stopping as in
  every neural model.

Where the paper leaves a choice open, each reading is a parameter, and
``create_model/readings.py`` lists them all (the paper's words, the alternatives, the defaults,
the predecessor MRGSRec's readings): ``graph_schedule`` (what a graph step trains on: every edge
of the graph, or the sequential batch's own (user, next item) pairs), ``graph_negatives``,
``score_table``, ``align_positions``, ``barlow_scale``, ``barlow_lambda``, the backbones'
``sequential.{input_norm, norm_first, init}`` and ``graph.LightGCN.{hop_norm, edge_dropout}``, and
the optimiser's ``weight_decay`` and ``max_grad_norm``.

Scales, so that the three terms work together:

- every graph loss is a per-example mean: LightGCN's BPR is; UltraGCN runs with
  ``reduction: mean`` (per-positive means, L2 on the rows the step touched, not the whole shared
  item table each step); catalogue-wide negatives are a mean over the non-interacted items;
- the graph's user table starts at the shared item table's scale (the std the sequential
  encoder's ``init`` gives it) unless ``graph.init_std`` is set.

Each step returns its terms (L_local, L_global, L_align) beside the total, so ``history.csv`` has
one column per term.

Inference uses the sequential backbone alone with the enriched item table (``score_table``: the
shared table itself, or the graph branch's propagated item embeddings): no user embedding, no
folding-in, so a user unseen in training is scored like any other.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from create_model.alignment import barlow_twins, info_nce
from create_model.params import BRANCHES, CREATEParams, family_models
from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.graph_model import GraphBackbone
from recbench.memory import training_need
from recbench.models import missing_members, register
from recbench.registry import discover, model_class
from recbench.sequential import SequentialBackbone
from recbench.training import NeuralRecommender

log = logging.getLogger(__name__)

#: the interface each branch's backbone provides
INTERFACES = {"sequential": SequentialBackbone, "graph": GraphBackbone}


def _backbone_class(name: str, branch: str) -> type:
    """The registered model ``name``, which must provide ``branch``'s interface
    (recbench/sequential.py, graph_model.py); its Params were checked by ``CREATEParams``."""
    key, interface = BRANCHES[branch][0], INTERFACES[branch]
    cls = model_class(name)
    missing = missing_members(cls, interface)
    if missing:
        fits = sorted(n for n, c in discover().items() if not missing_members(c, interface)
                      and n in family_models(branch))
        raise ConfigError(f"models.CREATE.{key}: {name!r} is no {branch} backbone (it must "
                          f"provide {interface.__name__}; it lacks {', '.join(missing)}); the "
                          f"registered ones are {fits}.")
    return cls


@register("CREATE")
class CREATE(NeuralRecommender):
    Params = CREATEParams

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        seq_params, self._graph_params = params.backbone_params()
        seq_cls = _backbone_class(params.sequential_backbone, "sequential")
        self._graph_cls = _backbone_class(params.graph_backbone, "graph")
        self.seq: SequentialBackbone = seq_cls(seq_params, seed=self.seed, device=str(self.device))
        self.max_history = self.seq.max_history
        self.batching = self.seq.batching  # its histories are scored by the sequential side
        self._valid = None

    @property
    def warmup_epochs(self) -> int:
        """The graph-only epochs the loop runs before the ``epochs`` joint ones."""
        return self.params.warmup_epochs

    def fit(self, train, valid=None):
        self._valid = valid  # for the graph branch's own validation NDCG at the end of warm-up
        try:
            super().fit(train, valid)
        finally:
            self._valid = None

    def build(self, train):
        self.seq.build(train)  # the item table lives in the sequential encoder
        self.graph: GraphBackbone = self._graph_cls(self._graph_params, seed=self.seed,
                                                    device=str(self.device))
        self.graph.build(train, item_embedding=self.seq.item_table)
        self.window_users = torch.as_tensor(self.seq.window_users)  # [W] user of each window
        if not bool(self.graph.has_embedding[self.window_users].all()):
            raise ConfigError("CREATE: a user with a training window has no graph edge; "
                              "graph_last_n / graph_last_fraction must keep >= 1 edge per user")

    @classmethod
    def memory_budget(cls, p, sizes, dim=None, positions=None, sequential=None):
        """Its sequential backbone's budget (``sequential``: other Params for it) plus its graph
        backbone's on the shared item table: a joint step holds both branches' transients.
        Evaluation scores with the sequential side alone (its score block, CREATE's
        ``eval_batch_size``)."""
        seq_p, graph_p = p.backbone_params()
        seq_cls = _backbone_class(p.sequential_backbone, "sequential")
        graph_cls = _backbone_class(p.graph_backbone, "graph")
        d = dim or seq_p.dim
        seq_p = dataclasses.replace(sequential or seq_p, eval_batch_size=p.eval_batch_size)
        return (seq_cls.memory_budget(seq_p, sizes, d, positions)
                + graph_cls.memory_budget(graph_p, sizes, d, branch=True))

    @classmethod
    def memory_need(cls, p, sizes, *, device=None, available=None, positions=None):
        """The whole training run's ``Need``; its fix: the backbone's SCE, a smaller evaluation
        batch or dim, a GPU."""
        seq_p = p.backbone_params()[0]
        cheaper = _backbone_class(p.sequential_backbone, "sequential").cheaper_params(seq_p)
        key = ("in CREATE's `sequential:`, under models.CREATE.params or "
               "datasets.<name>.model_params.CREATE")

        def budget(d, b, use_cheaper):
            return cls.memory_budget(dataclasses.replace(p, eval_batch_size=b), sizes, d,
                                     positions, sequential=cheaper[1] if use_cheaper else None)

        return training_need(
            budget, f"CREATE ({p.sequential_backbone} + {p.graph_backbone}): training on "
            f"{sizes.n_users:,} users, {sizes.n_items:,} items, {sizes.n_interactions:,} "
            "interactions", dim=seq_p.dim, eval_batch=p.eval_batch_size,
            cheaper=cheaper and f"{cheaper[0]} ({key})", device=device, available=available,
            dim_key="`sequential: {{dim: {}}}`", dim_step=seq_p.n_heads)

    def max_positions(self):
        return self.seq.max_positions()

    def train_batches(self, epoch, generator):
        """(phase, windows [B] or None, edges or None) per step.

        ``graph_schedule: edges``: warm-up steps are the graph's own edge batches (its
        ``batch_size`` edges each); a joint step takes window batch s and the s-th of as many
        equal chunks of a fresh edge permutation, so both passes finish together.
        ``graph_schedule: sequential``: every step, warm-up or joint, is one batch of the
        sequential backbone's windows; L_global is on their (user, next item) pairs."""
        if epoch <= self.warmup_epochs:  # the loop's epochs number the warm-up first
            if self.params.graph_schedule == "edges":
                return [("warmup", None, edges) for edges in self.graph.train_batches(epoch,
                                                                                     generator)]
            return [("warmup", w, None) for w in self.seq.train_batches(epoch, generator)]
        windows = self.seq.train_batches(epoch, generator)
        if self.params.graph_schedule == "sequential":
            return [("joint", w, None) for w in windows]
        edges = torch.randperm(self.graph.n_edges, generator=generator)
        return [("joint", w, e) for w, e in zip(windows, edges.tensor_split(len(windows)))]

    def graph_pairs(self, windows, edges) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [P], items [P]) on the CPU, the positives of a step's L_global: the edge chunk's
        edges, or (``edges=None``) every real position's (user, target item) of the windows,
        one pair per position, so a repeated target counts as often as the CE counts it
        (``window_targets`` of the backbone: SASRec's next items, BERT4Rec's window items)."""
        if edges is not None:
            return self.graph.edges(edges)
        rows, items = self.seq.window_targets(windows)
        return self.window_users[windows][rows], items

    def alignment_loss(self, idx, local, final) -> torch.Tensor:
        """L_align of windows ``idx`` between their sequential states and their users' e_u
        (``local``: the step's ``LocalLoss``, ``final``: its graph output).

        ``align_positions: last``: h_u, the state that scores the next item (the backbone's
        ``user_states``), one pair per user. ``all``: every state the local loss scores (SASRec:
        every real position; BERT4Rec: every masked position, the states that predict an item),
        each paired with its user's e_u; Barlow Twins standardises over those N pairs, InfoNCE
        scores each state against the batch's users (``info_nce`` with ``rows``)."""
        e_u = final[0][self.window_users[idx].to(local.last.device)]  # [B, d]
        if self.params.align_positions == "all":
            h, rows = local.states, local.rows  # [N, d], [N]
        else:
            h, rows = self.seq.user_states(idx, local), None  # [B, d]
        if self.params.alignment == "barlow":
            return barlow_twins(h, e_u if rows is None else e_u[rows], self.params.barlow_lambda,
                                self.params.barlow_scale)
        return info_nce(h, e_u, self.params.temperature, rows=rows)

    def loss_terms(self, batch, generator) -> dict[str, torch.Tensor]:
        """The unweighted terms of one step: L_global, and after the warm-up L_local and (with an
        alignment) L_align. LightGCN propagates once per step; that propagation serves L_global,
        e_u and (``score_table: propagated``) the output table of L_local."""
        phase, windows, edges = batch
        final = self.graph.propagate(generator)  # ([U, d], [I, d])
        l_global = self.graph.pair_loss(*self.graph_pairs(windows, edges), generator, final=final)
        if phase == "warmup":
            return {"L_global": l_global}
        table = final[1] if self.params.score_table == "propagated" else None
        local = self.seq.local_loss(windows, generator, item_weights=table)
        terms = {"L_local": local.loss, "L_global": l_global}
        if self.params.alignment != "none":
            terms["L_align"] = self.alignment_loss(windows, local, final)
        return terms

    def term_weights(self, phase: str) -> dict[str, float]:
        """Eq. 5's weights; in the warm-up L_global alone, at weight 1 (the standalone model)."""
        p = self.params
        return {"L_local": 1.0, "L_global": 1.0 if phase == "warmup" else p.w_global,
                "L_align": p.w_align}

    def training_loss(self, batch, generator):
        terms = self.loss_terms(batch, generator)
        weights = self.term_weights(batch[0])
        loss = sum(weights[name] * terms[name] for name in ("L_local", "L_global", "L_align")
                   if name in terms)
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}

    def end_of_warmup(self) -> dict:
        """The graph branch's own validation NDCG@10 after the warm-up (with a validation set),
        in the protocol early stopping uses (``eval_filter_seen``)."""
        if self._valid is None:
            return {}
        self.graph.eval()
        metrics = evaluate(self.graph, self._valid, batch_size=self.params.eval_batch_size,
                           filter_seen=self.eval_filter_seen, device=self.device)[0]
        self.graph.train()
        log.info("CREATE: graph branch (%s) after %d warm-up epochs: val ndcg@10 %.4f",
                 self.params.graph_backbone, self.warmup_epochs, metrics["ndcg@10"])
        return {"graph_val_ndcg@10": metrics["ndcg@10"]}

    def score(self, batch):  # [B, n_items]: the sequential backbone alone
        """The sequential state of each history against the item table of ``score_table``; the
        propagated table is computed once per evaluation (cached in eval mode), and no user
        embedding enters (``batch.users`` is never read)."""
        if self.training:
            self.eval()  # no dropout; LightGCN's output cached until train()/eval() again
        table = self.graph.final_embeddings()[1] if self.params.score_table == "propagated" \
            else None
        return self.seq.score(batch, item_weights=table)
