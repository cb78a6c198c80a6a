"""BERT4Rec (Sun et al., 2019) trained by masked item prediction (paper Section 3.3).

A bidirectional transformer encoder reads a user's last ``max_len`` items in which a random subset
(each real position with probability ``mask_prob``, at least one per sequence) is replaced by a
learned [MASK] token; the states at the masked positions predict the hidden items with CE over the
catalog (or SCE). At inference one [MASK] is appended after the last ``max_len - 1`` history
items and its state scores the catalog.
"""

from __future__ import annotations


import torch

from baselines.params import BERT4RecParams
from recbench.models import register
from recbench.nn.encoders import SequenceEncoder
from recbench.sequential import LocalLoss, SequentialRecommender

IGNORE = -100  # target of an unmasked position


@register("BERT4Rec")
class BERT4Rec(SequentialRecommender):
    Params = BERT4RecParams

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.max_history = params.max_len - 1  # the appended [MASK] takes the last position

    def make_encoder(self, n_items):
        p = self.params
        return SequenceEncoder(n_items, **p.encoder_kwargs(), causal=False, mask_token=True,
                               ffn_dim=p.ffn_mult * p.dim)

    def mask_items(self, x: torch.Tensor, generator: torch.Generator):
        """x [B, L] left-padded ids -> (inputs [B, L] with [MASK] at masked positions,
        targets [B, L]: the hidden item where masked, IGNORE elsewhere)."""
        real = x != self.encoder.pad_id  # [B, L]
        masked = (torch.rand(x.shape, generator=generator) < self.params.mask_prob) & real
        none = ~masked.any(1)  # rows without a masked item: mask their last item
        masked[none, -1] = True
        inputs = x.masked_fill(masked, self.encoder.mask_id)
        targets = x.masked_fill(~masked, IGNORE)
        return inputs, targets

    def scored_positions(self):
        """A row of n items masks about mask_prob * n; 1.5 times that (at least 1) bounds it."""
        masked = (self.lengths.double() * self.params.mask_prob * 1.5).ceil().clamp(min=1)
        return torch.minimum(masked, self.lengths.double())

    def local_loss(self, idx, generator, item_weights=None) -> LocalLoss:
        """Masked-item loss of windows ``idx``: ``states`` are the masked positions' (the ones
        scored); ``item_weights`` [n_items, d]: the output table (default: the encoder's)."""
        L = int(self.lengths[idx].max())  # drop the batch's all-padding columns
        inputs, targets = self.mask_items(self.windows[idx, -L:], generator)  # [B, L] on the CPU
        where = (targets != IGNORE).view(-1).nonzero().squeeze(1)  # [N] masked positions
        device = self.encoder.item_emb.weight.device
        h = self.encoder(inputs.to(device))  # [B, L, d]
        states = h.reshape(-1, h.shape[-1])[where.to(device)]  # [N, d]
        loss = self.catalog_loss(states, targets.reshape(-1)[where].to(device), generator,
                                 item_weights)
        return LocalLoss(loss, h[:, -1], states, (where // L).to(device))

    def window_targets(self, idx):
        """(rows [N], items [N]): every real item of windows ``idx`` (each is a masked target in
        some step), with the batch row of each, on the CPU."""
        x = self.windows[idx]  # [B, max_len]
        rows, cols = (x != self.encoder.pad_id).nonzero(as_tuple=True)
        return rows, x[rows, cols]

    def user_states(self, idx, local):
        """h_u: the output at a [MASK] appended after each window's last max_len - 1 items (the
        state that scores, as ``score`` makes it)."""
        enc = self.encoder
        L = min(int(self.lengths[idx].max()), self.params.max_len - 1)  # the batch's longest
        items = self.windows[idx, -L:]  # [B, L] the window's last items, left-padded
        mask = torch.full((len(items), 1), enc.mask_id, dtype=items.dtype)
        return enc(torch.cat([items, mask], dim=1).to(enc.item_emb.weight.device))[:, -1]

    def score(self, batch, item_weights=None):  # [B, n_items]
        self.eval()  # no dropout at inference
        device = self.encoder.item_emb.weight.device
        items = batch.items.to(device)  # [B, L], L <= max_len - 1
        mask = torch.full((len(items), 1), self.encoder.mask_id, dtype=items.dtype, device=device)
        h = self.encoder(torch.cat([items, mask], dim=1))[:, -1]  # [B, d] state of the [MASK]
        return h @ (self.encoder.item_weights if item_weights is None else item_weights).T
