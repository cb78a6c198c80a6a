"""Sequential models start here: ``SequentialRecommender``, the base of SASRec, BERT4Rec and
MRGSRec, and ``SequentialBackbone``, what a joint model (CREATE) takes from one.

The base owns what every transformer over a user's recent items shares:

- the training windows: every training user's last ``window_length()`` items (users with at
  least two), left-padded, with the user of each window (``window_users``); an epoch is one pass
  over them, ``batch_size`` windows per step (``train_batches``), in a random order
  (``batching: random``) or grouped by length (``batching: length``, ``length_batches``). A
  step computes only its batch's longest window: the columns that are padding in every row are
  dropped, and since the encoder's positions count from the right end (recbench/nn/encoders.py)
  every item keeps its position. Evaluation groups histories by length the same way
  (``recbench.evaluation.evaluate`` reads the model's ``batching``);
- the item table: the encoder's embedding (``item_table``), whose first ``n_items`` rows are also
  the output layer (``item_weights``);
- the catalog loss: full cross-entropy or SCE by ``loss`` (``catalog_loss``);
- the memory of a whole training run (``memory_budget``: the item table with its gradient and
  Adam's moments, the windows, a step's catalogue loss and activations, an evaluation batch),
  from the data's sizes alone, refused before training when it does not fit (``memory_need``).

A new sequential model subclasses it, declares ``Params(SequentialParams)``
(``recbench.params``; the shipped ones are in ``baselines/params.py``) and writes
``make_encoder``, ``local_loss`` and ``score``; to serve as CREATE's backbone also ``window_targets`` and ``user_states`` (``SequentialBackbone`` lists the
whole interface). ``baselines/sasrec.py`` is the shortest example; MRGSRec is a sequential model
with its own ``training_loss`` that is no backbone.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import nn

import dataclasses

from recbench.memory import Budget, Need, Sizes, training_need
from recbench.nn.encoders import SequenceEncoder, tail_windows, window_users
from recbench.nn.losses import full_ce, full_ce_bytes, scalable_ce, sce_bytes
from recbench.params import SequentialParams
from recbench.training import NeuralRecommender


class LocalLoss(NamedTuple):
    """What a sequential model's ``local_loss`` returns for a batch of B windows."""

    loss: torch.Tensor  # scalar: CE (or SCE) over the scored positions
    last: torch.Tensor  # [B, d] the state at each window's last position
    states: torch.Tensor  # [N, d] the states the loss scores (SASRec: every real position)
    rows: torch.Tensor  # [N] the batch row (window) of each


#: ``batching: length`` sorts windows by length within megabatches of this many batches
MEGABATCH = 50


def length_batches(order: torch.Tensor, lengths: torch.Tensor, batch_size: int,
                   generator: torch.Generator, megabatch: int = MEGABATCH) -> list[torch.Tensor]:
    """Batches of windows of similar length, in random order.

    ``order`` [W] a random permutation of the windows, ``lengths`` [W] their real lengths. The
    permutation is cut into megabatches of ``megabatch * batch_size`` windows, each sorted by
    length (stable) and split into batches of ``batch_size`` (so only the last megabatch has a
    short batch); the batches' order is then shuffled with ``generator``. Returns window
    indices [B] per step.
    """
    batches = []
    for chunk in order.split(megabatch * batch_size):
        by_length = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches += list(by_length.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def largest_batch(lengths: torch.Tensor, batch_size: int) -> int:
    """The most positions one batch of ``batch_size`` rows can hold: the sum of the longest rows."""
    return int(lengths.topk(min(batch_size, len(lengths))).values.sum()) if len(lengths) else 0


class SequentialBackbone(Protocol):
    """What CREATE takes from its sequential backbone (any model that provides this; the
    ``SequentialRecommender`` subclasses do). Shapes: B windows, N scored positions, d dims."""

    params: SequentialParams
    max_history: int | None
    batching: str  # "random" | "length": how train_batches (and the evaluator) batch windows
    window_users: torch.Tensor  # [W] the training user of each window (after ``build``)

    def build(self, train) -> None:
        """Create the layers (the item table among them) and the training windows."""

    @property
    def item_table(self) -> nn.Embedding:
        """The item embedding a graph branch shares (its first n_items rows)."""

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Window indices [B] per step."""

    def local_loss(self, idx: torch.Tensor, generator: torch.Generator,
                   item_weights: torch.Tensor | None = None) -> LocalLoss:
        """The model's own loss on windows ``idx``, scored against ``item_weights`` [n_items, d]
        (default: its item table)."""

    def window_targets(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [N], items [N]) on the CPU: the items ``local_loss`` predicts, with their row."""

    def user_states(self, idx: torch.Tensor, local: LocalLoss) -> torch.Tensor:
        """h_u [B, d] of windows ``idx``: the state that would score each user's next item."""

    @classmethod
    def memory_budget(cls, p: SequentialParams, sizes: Sizes, dim: int | None = None,
                      positions: int | None = None) -> Budget:
        """The memory of training it on data of ``sizes`` with ``dim`` (default ``p.dim``);
        ``positions``: the most a batch scores, when known."""

    @classmethod
    def cheaper_params(cls, p: SequentialParams) -> tuple[str, SequentialParams] | None:
        """(what to set, Params) of a catalogue loss without [positions x items] matrices."""

    def max_positions(self) -> int | None:
        """The most positions a batch scores (after ``build``)."""

    def score(self, batch, item_weights: torch.Tensor | None = None) -> torch.Tensor:
        """[B, n_items] scores of the histories against ``item_weights`` (default: the table)."""


#: float32 [B, L, d] tensors a transformer layer keeps for its backward (the input, its norms,
#: q, k, v, the attention output, the residuals, the feed-forward's input, hidden layer (counted
#: at its width) and output, the dropout masks), and [B, heads, L, L] ones (the attention
#: weights, their dropout mask and output)
ACTIVATIONS_PER_LAYER = 16
ATTENTION_COPIES = 3
#: float32 [eval batch, n_items] matrices of an evaluation batch: the scores and their filtered
#: copy (``recbench.evaluation``)
EVAL_COPIES = 2


def ffn_width(p: SequentialParams) -> int:
    """The feed-forward width of a transformer layer (``ffn_dim``, ``ffn_mult`` * dim, or dim)."""
    if getattr(p, "ffn_dim", None):
        return p.ffn_dim
    return getattr(p, "ffn_mult", 1) * p.dim


def sequential_budget(p: SequentialParams, sizes: Sizes, catalog_loss_bytes: int,
                      positions: int) -> Budget:
    """The transformer family's part of a training run (``p.dim`` already the dim to cost):
    the item table, the encoder's layers, the windows, a step's activations and catalogue loss
    (``catalog_loss_bytes``), an evaluation batch's scores."""
    d, L = p.dim, p.max_len + 1
    users, items = sizes.n_users, sizes.n_items
    batch = max(min(p.batch_size, users), 1)
    layer_params = 4 * d * d + 2 * d * ffn_width(p) + 9 * d + ffn_width(p)
    activations = 4 * p.n_layers * (
        batch * L * (ACTIVATIONS_PER_LAYER * d + 2 * ffn_width(p))
        + ATTENTION_COPIES * batch * p.n_heads * L * L)
    return Budget(
        held={
            "item table (weights, gradient, Adam's 2 moments)": 4 * 4 * items * d,
            "transformer layers (same, 4 copies)": 4 * 4 * (p.n_layers * layer_params + L * d),
            "training windows (users x max_len int64)": 8 * users * (L + 2),
            "training log (user, item, time int64)": 24 * sizes.n_interactions,
        },
        phases={
            "training step": {f"catalogue loss ({p.loss}) over {positions:,} positions":
                              catalog_loss_bytes,
                              "transformer activations": activations},
            "evaluation": {"score block (eval batch x items float32)":
                           4 * EVAL_COPIES * min(p.eval_batch_size, max(users, 1)) * items},
        })


def catalog_loss_bytes(p: SequentialParams, positions: int, n_items: int) -> int:
    """Peak bytes of ``catalog_loss`` (full CE or SCE, by ``p.loss``) over ``positions`` states."""
    if p.loss == "sce":
        return sce_bytes(positions, n_items, p.dim, p.sce_n_buckets, p.sce_bucket_size_x,
                         p.sce_bucket_size_y)
    return full_ce_bytes(positions, n_items, p.dim)


def max_positions(p: SequentialParams, sizes: Sizes) -> int:
    """The most positions a batch can score without knowing the windows: batch_size full
    windows, at most every interaction."""
    return max(min(p.batch_size * p.max_len, sizes.n_interactions), 1)


class SequentialRecommender(NeuralRecommender):
    """The base of a sequential model (module docstring). Subclasses set ``Params``."""

    Params = SequentialParams

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.max_history = params.max_len  # the evaluator passes at most this many items
        self.batching = params.batching  # the evaluator groups histories by length with "length"

    # -- what a subclass writes -------------------------------------------------------------
    def make_encoder(self, n_items: int) -> SequenceEncoder:
        """The transformer (with the item table) over a catalog of ``n_items``."""
        raise NotImplementedError

    def window_length(self) -> int:
        """Items per training window: ``max_len`` (a subclass that shifts targets adds one)."""
        return self.params.max_len

    def scored_positions(self) -> torch.Tensor:
        """[W] how many positions of each window the catalog loss scores, at most (the bound of
        ``training_memory``): every real one by default."""
        return self.lengths

    # -- what the family shares --------------------------------------------------------------
    def build(self, train):
        self.encoder = self.make_encoder(train.n_items)
        offsets, items = train.sequences()
        # [W, window_length] left-padded with n_items, real lengths [W], on the CPU
        self.windows, self.lengths = tail_windows(offsets, items, self.window_length(),
                                                  pad=train.n_items)
        self.window_users = window_users(offsets)  # [W] training user of each window

    @property
    def item_table(self) -> nn.Embedding:
        return self.encoder.item_emb

    def train_batches(self, epoch, generator):
        order = torch.randperm(len(self.windows), generator=generator)
        if self.batching == "length":
            return length_batches(order, self.lengths, self.params.batch_size, generator)
        return list(order.split(self.params.batch_size))  # index tensors [B]

    def training_loss(self, idx, generator):
        """The model's own loss on windows ``idx`` (``local_loss``; a model without one writes
        its own ``training_loss``)."""
        return self.local_loss(idx, generator).loss

    def catalog_loss(self, states: torch.Tensor, targets: torch.Tensor,
                     generator: torch.Generator, item_weights: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """CE or SCE (by ``loss``) of states [N, d] against targets [N], scored against
        ``item_weights`` [n_items, d] (default: the encoder's own item table)."""
        p = self.params
        weights = self.encoder.item_weights if item_weights is None else item_weights
        if p.loss == "sce":
            return scalable_ce(states, weights, targets, n_buckets=p.sce_n_buckets,
                               bucket_size_x=p.sce_bucket_size_x,
                               bucket_size_y=p.sce_bucket_size_y, generator=generator)
        return full_ce(states, weights, targets)

    # -- memory ------------------------------------------------------------------------------
    @classmethod
    def memory_budget(cls, p, sizes, dim=None, positions=None):
        """``sequential_budget`` with the model's catalogue loss (``catalog_loss_bytes``)."""
        p = p if dim is None or dim == p.dim else dataclasses.replace(p, dim=dim)
        n = positions or max_positions(p, sizes)
        return sequential_budget(p, sizes, catalog_loss_bytes(p, n, sizes.n_items), n)

    @classmethod
    def cheaper_params(cls, p) -> tuple[str, SequentialParams] | None:
        """(what to set, the Params with it) of a loss that never builds [positions x items]
        matrices, where ``p``'s loss does; None where it does not."""
        if p.loss != "ce":
            return None
        return "`loss: sce`", dataclasses.replace(p, loss="sce")

    @classmethod
    def memory_need(cls, p, sizes, *, device=None, available=None, positions=None) -> Need:
        """The whole training run's ``Need``; its fix: ``loss: sce``, a smaller evaluation
        batch or dim, a GPU."""
        name = getattr(cls, "registry_name", cls.__name__)
        key = f"models.{name}.params or datasets.<name>.model_params.{name}"
        cheaper = cls.cheaper_params(p)

        def budget(d, b, use_cheaper):
            q = cheaper[1] if use_cheaper else p
            return cls.memory_budget(dataclasses.replace(q, eval_batch_size=b), sizes, d,
                                     positions)

        return training_need(
            budget, f"{name}: training on {sizes.n_users:,} users, {sizes.n_items:,} items, "
            f"{sizes.n_interactions:,} interactions", dim=p.dim, eval_batch=p.eval_batch_size,
            cheaper=cheaper and f"{cheaper[0]} ({key}; never builds [positions x items] logits)",
            device=device, available=available, dim_step=p.n_heads)

    def max_positions(self) -> int | None:
        """The most positions a batch scores, once the windows are built (else None)."""
        if getattr(self, "lengths", None) is None:
            return None
        return largest_batch(self.scored_positions(), self.params.batch_size) or None
