"""The baselines' hyperparameters: each model's Params, declared by its registered name.

Pydantic dataclasses without torch (``recbench.params.params_dataclass``), so that the workflow
checks a config's parameters, and plans, without importing model code
(``recbench.registry.declare``). A range is the key's type (``Count``, ``Positive``, ...), a rule
over several keys a ``model_validator``. Each model's class in this package says
``Params = <Name>Params``; its module docstring says what the parameters do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from recbench.params import (Count, DropRate, Fraction, GraphParams, GraphSize, NonNegative,
                             NonNegativeInt, ParamError, Positive, SequentialParams, make_params,
                             params_dataclass)
from recbench.registry import declare


@declare("Random", "baselines.random:RandomRecommender")
@params_dataclass
class RandomParams:
    pass


@declare("PopRnd", "baselines.poprnd:PopRnd")
@params_dataclass
class PopRndParams:
    pass


@declare("SVD", "baselines.svd:PureSVD")
@params_dataclass
class SVDParams:
    rank: Count = 64
    scaling: float = 1.0
    n_iter: int = 7  # power iterations of the randomized SVD


@declare("iALS", "baselines.ials:IALS")
@params_dataclass
class IALSParams:
    factors: int = 64
    regularization: float = 0.01
    alpha: float = 10.0
    iterations: int = 15
    num_threads: int = 0  # 0: the job's thread budget (torch's, see recbench/threads.py)


@declare("EASE", "baselines.ease:EASE")
@params_dataclass
class EASEParams:
    l2: float = 100.0
    max_items: int = 40_000


@declare("SASRec", "baselines.sasrec:SASRec")
@params_dataclass
class SASRecParams(SequentialParams):
    pass


@declare("BERT4Rec", "baselines.bert4rec:BERT4Rec")
@params_dataclass
class BERT4RecParams(SequentialParams):
    mask_prob: Fraction = 0.2
    ffn_mult: Count = 4  # feed-forward width = ffn_mult * dim (BERT's 4x)

    @model_validator(mode="after")
    def _room_for_the_mask(self):
        if self.max_len < 2:
            raise ParamError("max_len", f"must be >= 2, got {self.max_len}: BERT4Rec's window "
                                        "holds history items plus one [MASK].")
        return self


@declare("LightGCN", "baselines.lightgcn:LightGCN")
@params_dataclass
class LightGCNParams(GraphParams):
    epochs: Count = 40
    batch_size: Count = 2048
    lr: Positive = 1e-3
    eval_every: Count = 2
    patience: Count | None = 5  # evaluations, i.e. 10 epochs
    # GraphParams: dim 64, init_std 0.1 (normal init of both tables, as in the authors' code),
    # exclude_positives, negatives ("sampled": one uniform negative), graph_last_n / _fraction
    n_layers: NonNegativeInt = 3
    reg: NonNegative = 1e-4  # L2 on the batch's layer-0 embeddings (LightGCN's "decay")
    hop_norm: bool = False  # L2-normalise each hop's output before the layer mean
    edge_dropout: DropRate = 0.0  # drop each edge with this probability per training propagation


@declare("UltraGCN", "baselines.ultragcn:UltraGCN")
@params_dataclass
class UltraGCNParams(GraphParams):
    epochs: Count = 40
    batch_size: Count = 1024
    lr: Positive = 1e-2  # official: 1e-3 over up to 2000 epochs; see the module docstring
    eval_every: Count = 2
    patience: Count | None = 5  # evaluations, i.e. 10 epochs: outlasts the early plateau
    dim: Count = 128
    init_std: Positive = 1e-3  # normal init of both tables
    exclude_positives: bool = False  # redraw negatives that are the user's items (official: no)
    # GraphParams' negatives: "sampled": negative_num uniform; "catalog": every j not in H_u
    n_neighbours: NonNegativeInt = 10  # item-item constraint: top co-occurring items per item
    w1: NonNegative = 1e-7  # positive, uniform weight (L_O)
    w2: NonNegative = 1.0  # positive, degree weight beta_u * beta_i (L_C)
    w3: NonNegative = 1e-7  # negative, uniform weight (L_O)
    w4: NonNegative = 1.0  # negative, degree weight beta_u * beta_j (L_C)
    negative_num: Count = 200  # uniform negatives per positive
    negative_weight: NonNegative = 200.0  # weight of the mean negative loss
    gamma: NonNegative = 1e-4  # L2 norm of both tables
    lambda_ii: NonNegative = 1e-3  # item-item constraint loss L_I
    # "sum": the official loss (batch sums, L2 of the whole tables); "mean": per-positive means,
    # L2 of the rows the step touched (CREATE's default, see recbench/nn/graph_encoders.py)
    reduction: Literal["sum", "mean"] = "sum"

    @classmethod
    def branch_defaults(cls) -> dict:
        """Beside a per-example cross-entropy, per-positive means (``reduction: mean``)."""
        return {"reduction": "mean"}


@declare("MRGSRec", "baselines.mrgsrec:MRGSRec")
@params_dataclass
class MRGSRecParams(SequentialParams, GraphSize):
    # training (TrainConfig)
    epochs: Count = 100
    batch_size: Count = 256
    lr: Positive = 1e-3
    patience: Count | None = 5
    # sequential encoder (SequentialParams: dim, n_layers, n_heads, loss, sce_*)
    dim: Count = 64
    max_len: Count = 10
    dropout: DropRate = 0.3
    ffn_dim: Count = 256  # transformer feed-forward width (the reference's dim_feedforward)
    # graph encoder (LightGCN on the shared item table)
    graph_layers: NonNegativeInt = 1
    graph_init_std: Positive = 0.1  # normal init of the user table
    # GraphSize: graph_last_n, graph_last_fraction (each user's last N or fraction)
    exclude_positives: bool = True  # sampled negatives: redraw a user's graph items
    # fusion and losses
    fusion_dim: Count = 256  # hidden width of the fusion MLP
    n_negatives: Count | None = None  # BPR negatives per position; None: the whole catalog
    w_local: NonNegative = 1.0
    w_global: NonNegative = 0.1
    w_fusion: Annotated[Positive, Field(description=(
        "the fused prediction is the one scored at inference"))] = 0.5
    w_contrastive: NonNegative = 0.05
    temperature: Positive = 1.0  # InfoNCE between the views

    def graph_params(self):
        """The LightGCN backbone's Params (its training settings are unused)."""
        return make_params(LightGCNParams, {
            "dim": self.dim, "n_layers": self.graph_layers, "reg": 0.0,
            "init_std": self.graph_init_std, "exclude_positives": self.exclude_positives,
            "graph_last_n": self.graph_last_n,
            "graph_last_fraction": self.graph_last_fraction}, "MRGSRec.graph")

