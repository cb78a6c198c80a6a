"""SASRec (Kang and McAuley, 2018) with cross-entropy over the catalog (paper Section 3.3).

A causal transformer encoder reads a user's items in time order; the state at position t predicts
item t + 1 by a dot product with the shared item embedding table. Training: every user's
sequence[:-1] tail window of ``max_len`` items is the input and the window shifted by one the
target, at every position (full CE, Klenitskiy and Vasilev 2023; Mezentsev et al. 2024), or with
``loss: sce`` the scalable cross-entropy of Mezentsev et al. (2024) for large catalogs. The user
state for scoring is the output at the last position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from recbench.errors import ConfigError
from recbench.memory import Need
from recbench.models import register
from recbench.nn.encoders import INITS, SequenceEncoder, init_std, tail_windows, window_users
from recbench.nn.losses import full_ce, full_ce_bytes, scalable_ce
from recbench.training import NeuralRecommender, TrainConfig


@dataclass
class SequentialParams(TrainConfig):
    """Parameters shared by SASRec and BERT4Rec (TrainConfig adds epochs, batch_size, lr, ...)."""

    dim: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    max_len: int = 50  # transformer sequence length: the last max_len items of a history
    loss: str = "ce"  # "ce": full softmax over the catalog; "sce": scalable cross-entropy
    sce_n_buckets: int = 256
    sce_bucket_size_x: int = 256  # states per bucket
    sce_bucket_size_y: int = 256  # items (negatives) per bucket
    # the encoder's input and form (recbench/nn/encoders.py); defaults: today's SASRec
    input_norm: bool = False  # LayerNorm on item + position embeddings before dropout
    norm_first: bool = True  # pre-norm layers + final LayerNorm; False: post-norm
    init: str = "scaled"  # "scaled": normal std d^-1/2; "trunc_normal": std 0.02 (MRGSRec's)

    def validate(self) -> None:
        super().validate()
        if self.loss not in ("ce", "sce"):
            raise ConfigError(f"loss must be 'ce' or 'sce', got {self.loss!r}.")
        if min(self.dim, self.n_layers, self.n_heads, self.max_len) < 1:
            raise ConfigError("dim, n_layers, n_heads and max_len must be >= 1, got "
                              f"{self.dim}, {self.n_layers}, {self.n_heads}, {self.max_len}.")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim={self.dim} must be divisible by n_heads={self.n_heads}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}.")
        if min(self.sce_n_buckets, self.sce_bucket_size_x, self.sce_bucket_size_y) < 1:
            raise ConfigError("sce_n_buckets, sce_bucket_size_x and sce_bucket_size_y must be >= 1.")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {self.init!r}.")

    def encoder_kwargs(self) -> dict:
        """The ``SequenceEncoder`` arguments these parameters set."""
        return {"dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "dropout": self.dropout, "max_len": self.max_len, "input_norm": self.input_norm,
                "norm_first": self.norm_first, "init": self.init}

    def item_init_std(self) -> float:
        """The std the item table starts at (``recbench.nn.encoders.init_std``)."""
        return init_std(self.dim, self.init)


class LocalLoss(NamedTuple):
    """What a sequential backbone's ``local_loss`` returns for a batch of B windows."""

    loss: torch.Tensor  # scalar: CE (or SCE) over the scored positions
    last: torch.Tensor  # [B, d] the state at each window's last position
    states: torch.Tensor  # [N, d] the states the loss scores (SASRec: every real position)
    rows: torch.Tensor  # [N] the batch row (window) of each


def catalog_loss(model, states: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator, item_weights: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """CE or SCE (by ``model.params.loss``) of states [N, d] against targets [N], scored against
    ``item_weights`` [n_items, d] (default: the encoder's own item table)."""
    p = model.params
    weights = model.encoder.item_weights if item_weights is None else item_weights
    if p.loss == "sce":
        return scalable_ce(states, weights, targets, n_buckets=p.sce_n_buckets,
                           bucket_size_x=p.sce_bucket_size_x,
                           bucket_size_y=p.sce_bucket_size_y, generator=generator)
    return full_ce(states, weights, targets)


def largest_batch(lengths: torch.Tensor, batch_size: int) -> int:
    """The most positions one batch of ``batch_size`` rows can hold: the sum of the longest rows."""
    return int(lengths.topk(min(batch_size, len(lengths))).values.sum()) if len(lengths) else 0


def catalog_loss_memory(n_states: int, n_items: int, dim: int, loss: str, label: str,
                        key: str) -> Need | None:
    """The memory full CE needs for ``n_states`` positions per batch (None for SCE)."""
    if loss != "ce" or n_states == 0:
        return None
    return Need(
        full_ce_bytes(n_states, n_items, dim),
        f"{label}: full cross-entropy over {n_items:,} items for up to {n_states:,} positions per "
        f"batch (float32 [{n_states:,} x {n_items:,}] logits, their softmax and gradient)",
        f"Set `loss: sce` ({key}; scalable cross-entropy never builds that matrix), or lower "
        "batch_size or max_len, or use a machine with more memory",
    )


@register("SASRec")
class SASRec(NeuralRecommender):
    @dataclass
    class Params(SequentialParams):
        pass

    uses_gpu = True

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.max_history = params.max_len  # the evaluator passes at most this many items

    def build(self, train):
        p = self.params
        self.encoder = SequenceEncoder(train.n_items, **p.encoder_kwargs(), causal=True)
        offsets, items = train.sequences()
        # windows of max_len + 1 items: inputs are the first max_len, targets the last max_len
        windows, lengths = tail_windows(offsets, items, p.max_len + 1, pad=train.n_items)
        self.window_users = window_users(offsets)  # [U] training user of each window
        self.inputs, self.targets = windows[:, :-1], windows[:, 1:]  # [U, max_len] each, CPU
        self.input_lengths = lengths - 1  # [U] real inputs per row (>= 1)

    def train_batches(self, epoch, generator):
        order = torch.randperm(len(self.inputs), generator=generator)
        return list(order.split(self.params.batch_size))  # index tensors [B]

    def training_memory(self, label: str = "SASRec",
                        key: str = "models.SASRec.params or datasets.<name>.model_params.SASRec"
                        ) -> Need | None:
        """Full CE's peak for the batch with the most real positions (None with SCE)."""
        n = largest_batch(self.input_lengths, self.params.batch_size)
        return catalog_loss_memory(n, self.encoder.n_items, self.params.dim, self.params.loss,
                                   label, key)

    def training_loss(self, idx, generator):
        return self.local_loss(idx, generator).loss

    def local_loss(self, idx, generator, item_weights=None) -> LocalLoss:
        """Next-item loss of windows ``idx`` at every real position; ``item_weights`` [n_items, d]:
        the output table to score against (default: the encoder's item table)."""
        L = int(self.input_lengths[idx].max())  # drop the batch's all-padding columns
        x, y = self.inputs[idx, -L:], self.targets[idx, -L:]  # [B, L] on the CPU
        where = (x != self.encoder.pad_id).view(-1).nonzero().squeeze(1)  # [N] real positions
        device = self.encoder.item_emb.weight.device
        h = self.encoder(x.to(device))  # [B, L, d]
        states = h.reshape(-1, h.shape[-1])[where.to(device)]  # [N, d]
        loss = catalog_loss(self, states, y.reshape(-1)[where].to(device), generator, item_weights)
        return LocalLoss(loss, h[:, -1], states, (where // L).to(device))

    def window_targets(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [N], items [N]): the target item of every real position of windows ``idx``, with
        the batch row of each (the positives ``local_loss`` predicts), on the CPU."""
        x, y = self.inputs[idx], self.targets[idx]  # [B, max_len]
        rows, cols = (x != self.encoder.pad_id).nonzero(as_tuple=True)
        return rows, y[rows, cols]

    def score(self, batch, item_weights=None):  # [B, n_items]
        self.eval()  # no dropout at inference
        device = self.encoder.item_emb.weight.device
        h = self.encoder(batch.items.to(device))[:, -1]  # [B, d] state at the last position
        return h @ (self.encoder.item_weights if item_weights is None else item_weights).T
