"""The hyperparameters every neural model starts from: plain dataclasses, no torch.

- ``TrainConfig``: the training loop's settings (``recbench.training.train``); every neural
  model's ``Params`` inherits them, so a config sets ``epochs`` or ``lr`` next to ``dim``.
- ``SequentialParams``: a transformer over a user's last ``max_len`` items and its catalog loss
  (full cross-entropy or SCE); the parameters of ``recbench.sequential.SequentialRecommender``.
- ``GraphParams``: a model trained on the user-item graph of each user's last N (or last n%)
  training interactions; the parameters of ``recbench.graph_model.GraphRecommender``.
  ``GraphSize`` is the graph-size part alone (MRGSRec's graph view takes it too).

Each model's own ``Params`` builds on these, torch-free, and is declared with the class that
implements it in ``recbench.registry``, so that the workflow plans and checks a config
(``recbench.protocol.config.check``) without importing model code.
``make_params(params_cls, mapping, label)`` validates a config mapping against a Params class,
naming any unknown or mistyped key and the model's config key.

Each ``validate`` raises ``ConfigError`` naming the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass

from recbench.errors import ConfigError

#: the initialisations of ``recbench.nn.encoders.SequenceEncoder``
INITS = ("scaled", "trunc_normal")
#: std of ``init="trunc_normal"`` before truncation at +-2 std (the predecessor's 0.02)
TRUNC_STD = 0.02
#: a graph model's negatives: ``sampled`` (uniform draws) or ``catalog`` (every j not in H_u)
NEGATIVES = ("sampled", "catalog")
#: a sequential model's catalog loss: full cross-entropy or scalable cross-entropy
CATALOG_LOSSES = ("ce", "sce")
#: how a sequential model batches its windows and histories: in random order, or grouped by
#: length (``recbench.sequential.length_batches``), each batch trimmed to its longest window
BATCHINGS = ("random", "length")


def init_std(dim: int, init: str = "scaled") -> float:
    """The std of the item table as ``SequenceEncoder`` initialises it (so that another table, e.g.
    CREATE's graph users, can start at its scale): d^-1/2, or that of a normal with std 0.02
    truncated at +-2 std (0.02 * 0.880)."""
    if init not in INITS:
        raise ConfigError(f"init must be one of {INITS}, got {init!r}")
    if init == "scaled":
        return dim ** -0.5
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)  # standard normal density at 2
    inside = math.erf(2 / math.sqrt(2))  # P(|z| < 2)
    return TRUNC_STD * math.sqrt(1 - 4 * phi / inside)


@dataclass
class TrainConfig:
    """Optimisation settings; neural models' ``Params`` inherit them, so configs set them directly."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 5  # evaluations without a better val NDCG@10 before stopping; None: never
    eval_every: int = 1  # epochs between two validation evaluations
    amp: bool = False  # float16 autocast + GradScaler; CUDA only, ignored on CPU
    max_grad_norm: float | None = None  # clip the global gradient norm; None: no clipping
    eval_batch_size: int = 1024
    progress: bool | None = None  # tqdm bar per epoch; None: only on a terminal

    def validate(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "patience": self.patience is None or self.patience >= 1,
            "eval_every": self.eval_every >= 1,
            "max_grad_norm": self.max_grad_norm is None or self.max_grad_norm > 0,
            "eval_batch_size": self.eval_batch_size >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"training parameter(s) out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}. "
                "epochs, batch_size, eval_every, eval_batch_size and patience must be >= 1 (patience "
                "may be null), lr > 0, weight_decay >= 0, max_grad_norm > 0 or null."
            )

    def train_config(self) -> "TrainConfig":
        """The TrainConfig part of a model's Params (which subclass this)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


@dataclass
class SequentialParams(TrainConfig):
    """A sequential model's parameters (TrainConfig adds epochs, batch_size, lr, ...)."""

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
    # "random": batches of windows in random order; "length": windows of similar length batched
    # together (training and evaluation), so a batch computes little padding
    batching: str = "random"

    def validate(self) -> None:
        super().validate()
        if self.batching not in BATCHINGS:
            raise ConfigError(f"batching must be one of {BATCHINGS}, got {self.batching!r}: "
                              "'random' shuffles the windows, 'length' groups windows of similar "
                              "length into each batch.")
        if self.loss not in CATALOG_LOSSES:
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
        """The std the item table starts at (``init_std``)."""
        return init_std(self.dim, self.init)


def check_graph_size(last_n: int | None, last_fraction: float | None, where: str) -> None:
    """The one check of a graph's size: each user's last N interactions or last fraction of
    them, not both; N >= 1, the fraction in (0, 1]. ``where`` names the keys' owner."""
    if last_n is not None and last_fraction is not None:
        raise ConfigError(f"{where}: set graph_last_n or graph_last_fraction, not both (null for "
                          "the other).")
    if last_n is not None and last_n < 1:
        raise ConfigError(f"{where}.graph_last_n must be >= 1, got {last_n}")
    if last_fraction is not None and not 0.0 < last_fraction <= 1.0:
        raise ConfigError(f"{where}.graph_last_fraction must be in (0, 1], got {last_fraction}")


@dataclass
class GraphSize:
    """Which training interactions make the graph: each user's last N, or last fraction, or all."""

    graph_last_n: int | None = None  # graph: each user's last N interactions (None: all)
    graph_last_fraction: float | None = None  # or each user's last fraction of them


@dataclass
class GraphParams(TrainConfig, GraphSize):
    """A graph model's parameters (TrainConfig adds epochs, batch_size, lr, ...)."""

    dim: int = 64
    init_std: float = 0.1  # normal init of the user and item tables
    exclude_positives: bool = True  # redraw a sampled negative that is one of the user's items
    negatives: str = "sampled"  # "sampled": uniform draws; "catalog": every j not in H_u

    def validate(self) -> None:
        super().validate()
        name = model_name(type(self))
        check_graph_size(self.graph_last_n, self.graph_last_fraction, f"models.{name}")
        if self.negatives not in NEGATIVES:
            raise ConfigError(f"models.{name}.negatives must be one of {NEGATIVES}, got "
                              f"{self.negatives!r}")

    @classmethod
    def branch_defaults(cls) -> dict:
        """Parameters this graph model takes when it is the graph branch of a joint model whose
        other losses are per-example means (CREATE): none unless a model says otherwise."""
        return {}


def model_name(params_cls: type) -> str:
    """The model a Params class belongs to: its declared name, else its owner class's name."""
    return getattr(params_cls, "model_name", None) or params_cls.__qualname__.split(".")[0]


def uses_gpu(params_cls: type) -> bool:
    """Whether the model trains on a GPU when there is one: the neural models, whose Params are
    the training loop's (``TrainConfig``). It sets the Snakemake job's gpu resource."""
    return issubclass(params_cls, TrainConfig)


def _check_type(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if annotation in (typing.Any, None) or isinstance(annotation, str):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, annotation)


def make_params(params_cls: type, params: dict | None, label: str = ""):
    """Validate a config mapping against the dataclass ``params_cls``, naming any unknown or
    mistyped key; ``label`` is the model's config key (default: the model's name)."""
    params = dict(params or {})
    label = label or model_name(params_cls)
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(
            f"models.{label}: unknown parameter(s) {unknown}; {model_name(params_cls)} accepts "
            f"{sorted(fields) or 'none'}."
        )
    hints = typing.get_type_hints(params_cls)
    for key, value in params.items():
        if not _check_type(value, hints.get(key, typing.Any)):
            raise ConfigError(
                f"models.{label}.{key}: expected {hints[key]}, got {value!r} "
                f"({type(value).__name__}). Fix the value in the config."
            )
    obj = params_cls(**params)
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ConfigError as exc:  # a range check: name the model, as the checks above do
            if str(exc).startswith(f"models.{label}"):
                raise
            raise ConfigError(f"models.{label}: {exc}") from exc
    return obj
