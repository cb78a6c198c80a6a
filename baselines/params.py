"""The baselines' hyperparameters: each model's Params, declared by its registered name.

Plain dataclasses without torch, so that the workflow checks a config's parameters, and plans,
without importing model code (``recbench.registry.declare``). Each model's class in this package
says ``Params = <Name>Params``; its module docstring says what the parameters do.
"""

from __future__ import annotations

from dataclasses import dataclass

from recbench.errors import ConfigError
from recbench.params import (GraphParams, GraphSize, SequentialParams, check_graph_size,
                             make_params)
from recbench.registry import declare


@declare("Random", "baselines.random:RandomRecommender")
@dataclass
class RandomParams:
    pass


@declare("PopRnd", "baselines.poprnd:PopRnd")
@dataclass
class PopRndParams:
    pass


@declare("SVD", "baselines.svd:PureSVD")
@dataclass
class SVDParams:
    rank: int = 64
    scaling: float = 1.0
    n_iter: int = 7  # power iterations of the randomized SVD

    def validate(self):
        if self.rank < 1:
            raise ConfigError(f"models.SVD.rank must be >= 1, got {self.rank}")


@declare("iALS", "baselines.ials:IALS")
@dataclass
class IALSParams:
    factors: int = 64
    regularization: float = 0.01
    alpha: float = 10.0
    iterations: int = 15
    num_threads: int = 0  # 0: the job's thread budget (torch's, see recbench/threads.py)


@declare("EASE", "baselines.ease:EASE")
@dataclass
class EASEParams:
    l2: float = 100.0
    max_items: int = 40_000


@declare("SASRec", "baselines.sasrec:SASRec")
@dataclass
class SASRecParams(SequentialParams):
    pass


@declare("BERT4Rec", "baselines.bert4rec:BERT4Rec")
@dataclass
class BERT4RecParams(SequentialParams):
    mask_prob: float = 0.2
    ffn_mult: int = 4  # feed-forward width = ffn_mult * dim (BERT's 4x)

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.mask_prob <= 1.0:
            raise ConfigError(f"mask_prob must lie in (0, 1], got {self.mask_prob}.")
        if self.max_len < 2:
            raise ConfigError("BERT4Rec needs max_len >= 2 (history items plus one [MASK]).")
        if self.ffn_mult < 1:
            raise ConfigError(f"ffn_mult must be >= 1, got {self.ffn_mult}.")


@declare("LightGCN", "baselines.lightgcn:LightGCN")
@dataclass
class LightGCNParams(GraphParams):
    epochs: int = 40
    batch_size: int = 2048
    lr: float = 1e-3
    eval_every: int = 2
    patience: int | None = 5  # evaluations, i.e. 10 epochs
    # GraphParams: dim 64, init_std 0.1 (normal init of both tables, as in the authors' code),
    # exclude_positives, negatives ("sampled": one uniform negative), graph_last_n / _fraction
    n_layers: int = 3
    reg: float = 1e-4  # L2 on the batch's layer-0 embeddings (LightGCN's "decay")
    hop_norm: bool = False  # L2-normalise each hop's output before the layer mean
    edge_dropout: float = 0.0  # drop each edge with this probability per training propagation

    def validate(self):
        super().validate()
        if self.dim < 1 or self.n_layers < 0:
            raise ConfigError(f"models.LightGCN: dim must be >= 1 and n_layers >= 0, got "
                              f"dim={self.dim}, n_layers={self.n_layers}")
        if self.reg < 0 or self.init_std <= 0:
            raise ConfigError(f"models.LightGCN: reg must be >= 0 and init_std > 0, got "
                              f"reg={self.reg}, init_std={self.init_std}")
        if not 0.0 <= self.edge_dropout < 1.0:
            raise ConfigError(f"models.LightGCN.edge_dropout must lie in [0, 1), got "
                              f"{self.edge_dropout}")


@declare("UltraGCN", "baselines.ultragcn:UltraGCN")
@dataclass
class UltraGCNParams(GraphParams):
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


@declare("MRGSRec", "baselines.mrgsrec:MRGSRec")
@dataclass
class MRGSRecParams(SequentialParams, GraphSize):
    # training (TrainConfig)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    patience: int | None = 5
    # sequential encoder (SequentialParams: dim, n_layers, n_heads, loss, sce_*)
    dim: int = 64
    max_len: int = 10
    dropout: float = 0.3
    ffn_dim: int = 256  # transformer feed-forward width (the reference's dim_feedforward)
    # graph encoder (LightGCN on the shared item table)
    graph_layers: int = 1
    graph_init_std: float = 0.1  # normal init of the user table
    # GraphSize: graph_last_n, graph_last_fraction (each user's last N or fraction)
    exclude_positives: bool = True  # sampled negatives: redraw a user's graph items
    # fusion and losses
    fusion_dim: int = 256  # hidden width of the fusion MLP
    n_negatives: int | None = None  # BPR negatives per position; None: the whole catalog
    w_local: float = 1.0
    w_global: float = 0.1
    w_fusion: float = 0.5
    w_contrastive: float = 0.05
    temperature: float = 1.0  # InfoNCE between the views

    def validate(self) -> None:
        super().validate()
        checks = {
            "ffn_dim": self.ffn_dim >= 1,
            "graph_layers": self.graph_layers >= 0,
            "graph_init_std": self.graph_init_std > 0,
            "fusion_dim": self.fusion_dim >= 1,
            "n_negatives": self.n_negatives is None or self.n_negatives >= 1,
            "w_local": self.w_local >= 0,
            "w_global": self.w_global >= 0,
            "w_fusion": self.w_fusion >= 0,
            "w_contrastive": self.w_contrastive >= 0,
            "temperature": self.temperature > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                "models.MRGSRec: parameter(s) out of range: "
                + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
                + ". ffn_dim, fusion_dim, n_negatives must be >= 1 (n_negatives may be "
                "null), graph_layers >= 0, graph_init_std > 0, loss weights w_* >= 0, "
                "temperature > 0.")
        check_graph_size(self.graph_last_n, self.graph_last_fraction, "models.MRGSRec")
        if self.w_fusion == 0:
            raise ConfigError("models.MRGSRec.w_fusion must be > 0: the fused prediction is "
                              "the one scored at inference.")

    def graph_params(self):
        """The LightGCN backbone's Params (its training settings are unused)."""
        return make_params(LightGCNParams, {
            "dim": self.dim, "n_layers": self.graph_layers, "reg": 0.0,
            "init_std": self.graph_init_std, "exclude_positives": self.exclude_positives,
            "graph_last_n": self.graph_last_n,
            "graph_last_fraction": self.graph_last_fraction}, "MRGSRec.graph")

