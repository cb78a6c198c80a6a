"""UltraGCN (Mao et al., CIKM 2021): infinite-layer graph convolution approximated by constraint losses.

No propagation: the model is a user table and an item table, trained on the graph's edges with
the loss of ``recbench.nn.graph_encoders.UltraGCNEncoder`` (degree-weighted BCE with
``negative_num`` uniform negatives per positive, the item-item constraint over each positive
item's ``n_neighbours`` top co-occurring items, and an L2 norm). The defaults are the official
code's ML-1M settings (github.com/xue-pai/UltraGCN, ml-1m_config.ini): dim 128, 10 neighbours,
w1 = w3 = 1e-7, w2 = w4 = 1, 200 negatives of weight 200, gamma (L2) 1e-4, lambda (item-item,
here ``lambda_ii``) 1e-3, init std 1e-3, batch 1024, negatives not filtered. One exception: lr
defaults to 1e-2, not the official 1e-3. From its tiny init UltraGCN first sits on a popularity
plateau for ~10^4 steps at lr 1e-3 (the official ML-1M log: epochs 0-10 of 778 steps); the
default synthetic data has ~40 steps per epoch, so lr 1e-3 would need hundreds of epochs, lr 1e-2
leaves the plateau after ~15. For the paper's datasets set ``lr: 1.0e-3`` and more epochs.

The graph is each user's last ``graph_last_n`` training interactions (or last
``graph_last_fraction`` of them; all by default), binary; an epoch is one pass over its edges.
``negatives: catalog`` replaces the ``negative_num`` sampled negatives of L_O and L_C by the mean
over every item not among the user's graph items (``recbench.nn.graph_encoders``).

Scoring: the evaluated user's embedding against every item embedding. A history without a
learned user (users < 0, or a user with no edge in the graph) is folded in: its state is the mean
of its distinct items' embeddings (``recbench.nn.graph_encoders.user_states``).
"""

from __future__ import annotations

from dataclasses import dataclass

from recbench.errors import ConfigError
from recbench.graph_model import GraphRecommender
from recbench.models import register
from recbench.nn.graph_encoders import UltraGCNEncoder
from recbench.params import GraphParams


@register("UltraGCN")
class UltraGCN(GraphRecommender):
    @dataclass
    class Params(GraphParams):
        epochs: int = 40
        batch_size: int = 1024
        lr: float = 1e-2  # official: 1e-3 over up to 2000 epochs; see the module docstring
        eval_every: int = 2
        patience: int | None = 5  # evaluations, i.e. 10 epochs: outlasts the early plateau
        dim: int = 128
        init_std: float = 1e-3  # normal init of both tables
        exclude_positives: bool = False  # redraw negatives that are the user's items (official: no)
        # GraphParams' negatives: "sampled": negative_num uniform; "catalog": every j not in H_u
        n_neighbours: int = 10  # item-item constraint: top co-occurring items per item
        w1: float = 1e-7  # positive, uniform weight (L_O)
        w2: float = 1.0  # positive, degree weight beta_u * beta_i (L_C)
        w3: float = 1e-7  # negative, uniform weight (L_O)
        w4: float = 1.0  # negative, degree weight beta_u * beta_j (L_C)
        negative_num: int = 200  # uniform negatives per positive
        negative_weight: float = 200.0  # weight of the mean negative loss
        gamma: float = 1e-4  # L2 norm of both tables
        lambda_ii: float = 1e-3  # item-item constraint loss L_I
        # "sum": the official loss (batch sums, L2 of the whole tables); "mean": per-positive means,
        # L2 of the rows the step touched (CREATE's default, see recbench/nn/graph_encoders.py)
        reduction: str = "sum"

        def validate(self):
            super().validate()
            bad = {k: getattr(self, k) for k, ok in {
                "dim": self.dim >= 1, "n_neighbours": self.n_neighbours >= 0,
                "negative_num": self.negative_num >= 1, "init_std": self.init_std > 0,
                **{k: getattr(self, k) >= 0 for k in ("w1", "w2", "w3", "w4", "negative_weight",
                                                      "gamma", "lambda_ii")},
            }.items() if not ok}
            if bad:
                raise ConfigError(f"models.UltraGCN: out of range {bad}; dim and negative_num "
                                  "must be >= 1, init_std > 0, the weights and n_neighbours >= 0.")
            if self.reduction not in ("sum", "mean"):
                raise ConfigError(f"models.UltraGCN.reduction must be 'sum' or 'mean', got "
                                  f"{self.reduction!r}")

        @classmethod
        def branch_defaults(cls) -> dict:
            """Beside a per-example cross-entropy, per-positive means (``reduction: mean``)."""
            return {"reduction": "mean"}

    def make_encoder(self, R, item_embedding):
        p = self.params
        return UltraGCNEncoder(
            R, dim=p.dim, n_neighbours=p.n_neighbours, w1=p.w1, w2=p.w2, w3=p.w3, w4=p.w4,
            negative_weight=p.negative_weight, gamma=p.gamma, lambda_ii=p.lambda_ii,
            init_std=p.init_std, reduction=p.reduction, item_embedding=item_embedding)

    def propagate(self, generator=None):
        """(users [U, d], items [I, d]): the tables themselves (UltraGCN does not propagate)."""
        return self.encoder()

    def final_embeddings(self):
        """(users [U, d], items [I, d]) for scoring: the tables."""
        return self.encoder()

    def pair_loss(self, users, items, generator, final=None):
        """The loss of the positive pairs (users [B], items [B], CPU). ``final`` is not needed:
        without propagation the loss reads the tables themselves."""
        dev = self.device
        neg = None
        if self.params.negatives == "sampled":
            neg = self.sample_negatives(users, self.params.negative_num, generator)  # [B, M]
            neg = neg.to(dev)
        return self.encoder.loss(users.to(dev), items.to(dev), neg)
