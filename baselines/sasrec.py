"""SASRec (Kang and McAuley, 2018) with cross-entropy over the catalog (paper Section 3.3).

A causal transformer encoder reads a user's items in time order; the state at position t predicts
item t + 1 by a dot product with the shared item embedding table. Training: every user's
sequence[:-1] tail window of ``max_len`` items is the input and the window shifted by one the
target, at every position (full CE, Klenitskiy and Vasilev 2023; Mezentsev et al. 2024), or with
``loss: sce`` the scalable cross-entropy of Mezentsev et al. (2024) for large catalogs. The user
state for scoring is the output at the last position.
"""

from __future__ import annotations


from baselines.params import SASRecParams
from recbench.models import register
from recbench.nn.encoders import SequenceEncoder
from recbench.sequential import LocalLoss, SequentialRecommender


@register("SASRec")
class SASRec(SequentialRecommender):
    Params = SASRecParams

    def make_encoder(self, n_items):
        return SequenceEncoder(n_items, **self.params.encoder_kwargs(), causal=True)

    def window_length(self):
        return self.params.max_len + 1  # inputs are the first max_len items, targets the last

    def build(self, train):
        super().build(train)
        self.inputs, self.targets = self.windows[:, :-1], self.windows[:, 1:]  # [W, max_len], CPU
        self.input_lengths = self.lengths - 1  # [W] real inputs per row (>= 1)

    def scored_positions(self):
        return self.input_lengths

    def local_loss(self, idx, generator, item_weights=None) -> LocalLoss:
        """Next-item loss of windows ``idx`` at every real position; ``item_weights`` [n_items, d]:
        the output table to score against (default: the encoder's item table)."""
        L = int(self.input_lengths[idx].max())  # drop the batch's all-padding columns
        x, y = self.inputs[idx, -L:], self.targets[idx, -L:]  # [B, L] on the CPU
        where = (x != self.encoder.pad_id).view(-1).nonzero().squeeze(1)  # [N] real positions
        device = self.encoder.item_emb.weight.device
        h = self.encoder(x.to(device))  # [B, L, d]
        states = h.reshape(-1, h.shape[-1])[where.to(device)]  # [N, d]
        loss = self.catalog_loss(states, y.reshape(-1)[where].to(device), generator, item_weights)
        return LocalLoss(loss, h[:, -1], states, (where // L).to(device))

    def window_targets(self, idx):
        """(rows [N], items [N]): the target item of every real position of windows ``idx``, with
        the batch row of each (the positives ``local_loss`` predicts), on the CPU."""
        x, y = self.inputs[idx], self.targets[idx]  # [B, max_len]
        rows, cols = (x != self.encoder.pad_id).nonzero(as_tuple=True)
        return rows, y[rows, cols]

    def user_states(self, idx, local):
        """h_u: the state at each window's last position, from the loss pass itself."""
        return local.last

    def score(self, batch, item_weights=None):  # [B, n_items]
        self.eval()  # no dropout at inference
        device = self.encoder.item_emb.weight.device
        h = self.encoder(batch.items.to(device))[:, -1]  # [B, d] state at the last position
        return h @ (self.encoder.item_weights if item_weights is None else item_weights).T
