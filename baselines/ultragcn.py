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


from baselines.params import UltraGCNParams
from recbench.graph_model import GraphRecommender
from recbench.memory import Budget
from recbench.models import register
from recbench.nn.graph_encoders import CATALOG_BLOCK, UltraGCNEncoder


#: bytes per stored item pair while ``recbench.graph.item_neighbours`` runs: R^T R in float64
#: CSR, its COO copy, the weights, their sort and gathers (72 measured by tracemalloc on a
#: 21M-pair graph)
PAIR_BYTES = 72


@register("UltraGCN")
class UltraGCN(GraphRecommender):
    Params = UltraGCNParams

    def make_encoder(self, R, item_embedding):
        p = self.params
        return UltraGCNEncoder(
            R, dim=p.dim, n_neighbours=p.n_neighbours, w1=p.w1, w2=p.w2, w3=p.w3, w4=p.w4,
            negative_weight=p.negative_weight, gamma=p.gamma, lambda_ii=p.lambda_ii,
            init_std=p.init_std, reduction=p.reduction, item_embedding=item_embedding)

    @classmethod
    def model_budget(cls, p, sizes, dim, edges):
        """The item-item neighbour table (int64 and float32, ``n_neighbours`` per item), the
        degree weights, R's CSR buffers, and a step's gathered rows with their gradients; while
        the graph is built, the co-occurrence matrix R^T R the neighbours are found on and its
        sort (``PAIR_BYTES`` per stored pair; ``Sizes.pairs_bound`` of them)."""
        per_row = 1 + (p.negative_num if p.negatives == "sampled" else 0) + p.n_neighbours
        step = {"gathered rows and gradients": 4 * 4 * p.batch_size * per_row * dim}
        if p.negatives == "catalog":
            step["catalogue-wide blocks"] = 3 * 4 * CATALOG_BLOCK
        build = {}
        if p.n_neighbours > 0:
            pairs, upper = sizes.pairs_bound(p.graph_last_n)
            build[f"item co-occurrence R^T R ({'at most' if upper else 'at least'} "
                  f"{pairs:,} item pairs)"] = PAIR_BYTES * pairs
        return Budget(
            {"item-item neighbours": 12 * sizes.n_items * p.n_neighbours
             + 4 * (sizes.n_users + sizes.n_items) + 8 * (sizes.n_users + 1 + edges)},
            {"training step": step, "graph construction": build})

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
