"""The hyperparameters every neural model starts from: pydantic dataclasses, no torch.

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

Validation is pydantic's: a Params class is a ``@params_dataclass`` (a pydantic dataclass with
``PARAMS_CONFIG``: unknown keys refused, no coercion but int -> float, assignments validated),
its choices ``Literal[...]``, its ranges the ``Annotated`` types below (``Count``, ``Positive``,
...), its rules over several keys ``model_validator(mode="after")`` methods that raise
``ParamError`` naming the key to change. Building one from a config mapping is
``make_params(params_cls, mapping, label)``, the one way the workflow, the jobs and a saved
model's loading build Params; a bad value raises ``ParamsError`` (a ``ConfigError``) naming the
key as a config path (``models.<label>.<key>``), the value, what is allowed and the fix.
Constructing a Params directly (``TrainConfig(lr=0)``) raises the same error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import types
import typing
import warnings
from typing import Annotated, Literal

import pydantic
from pydantic import ConfigDict, Field, ValidationError, model_validator

from recbench.errors import ConfigError

#: the validation every Params class gets: unknown keys refused, a value of the wrong type
#: refused rather than converted (bool is no int, "3" no number; an int is a valid float),
#: and an assignment (``config.epochs = 3``) validated like a construction
PARAMS_CONFIG = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

#: an integer >= 1 (epochs, sizes, counts)
Count = Annotated[int, Field(ge=1)]
#: an integer >= 0
NonNegativeInt = Annotated[int, Field(ge=0)]
#: a number > 0 (learning rates, temperatures, init stds)
Positive = Annotated[float, Field(gt=0)]
#: a number >= 0 (loss weights, regularisation)
NonNegative = Annotated[float, Field(ge=0)]
#: a probability of dropping something: [0, 1)
DropRate = Annotated[float, Field(ge=0, lt=1)]
#: a share of a whole: (0, 1]
Fraction = Annotated[float, Field(gt=0, le=1)]

#: the initialisations of ``recbench.nn.encoders.SequenceEncoder``: "scaled": normal std
#: d^-1/2; "trunc_normal": std 0.02 truncated at +-2 std (MRGSRec's)
Init = Literal["scaled", "trunc_normal"]
INITS = typing.get_args(Init)
#: std of ``init="trunc_normal"`` before truncation at +-2 std (the predecessor's 0.02)
TRUNC_STD = 0.02
#: a graph model's negatives: ``sampled`` (uniform draws) or ``catalog`` (every j not in H_u)
Negatives = Literal["sampled", "catalog"]
NEGATIVES = typing.get_args(Negatives)
#: a sequential model's catalog loss: full cross-entropy or scalable cross-entropy
CatalogLoss = Literal["ce", "sce"]
CATALOG_LOSSES = typing.get_args(CatalogLoss)
#: how a sequential model batches its windows and histories: in random order, or grouped by
#: length (``recbench.sequential.length_batches``), each batch trimmed to its longest window
Batching = Literal["random", "length"]
BATCHINGS = typing.get_args(Batching)


class ParamError(ValueError):
    """Raised by a Params validator when a rule over its values fails: ``key`` is the parameter
    to change (a dotted path below the model's; "" for the model as a whole) and the message
    says what it must be, as a phrase that follows the key ("must be divisible by ...")."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class ParamsError(ConfigError):
    """A Params refused its values: ``problems`` are (key below ``where``, what is wrong and the
    fix), ``where`` the config path of the whole mapping (``models.<label>``). A problem's text
    follows its key: "must be ..." of the key, or ": ..." of the mapping at the key."""

    def __init__(self, problems: list[tuple[str, str]], where: str):
        self.problems, self.where = list(problems), where
        super().__init__("\n".join(_join(where, key) + ("" if text.startswith(":") else " ")
                                   + text for key, text in self.problems))

    def __reduce__(self):
        return type(self), (self.problems, self.where)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _where(params_cls: type) -> str:
    """Where a directly constructed Params' problems are: its model's config key if declared."""
    name = getattr(params_cls, "model_name", None)
    return f"models.{name}" if name else params_cls.__qualname__


def params_dataclass(cls: type) -> type:
    """Class decorator: ``cls`` as a pydantic dataclass validated by ``PARAMS_CONFIG`` whose
    construction and assignments raise ``ParamsError`` rather than pydantic's
    ``ValidationError``. ``dataclasses.fields``, ``asdict`` and ``replace`` work on it as on any
    dataclass (``replace`` validates the new values)."""
    cls = pydantic.dataclasses.dataclass(cls, config=PARAMS_CONFIG)
    init, validated_setattr = cls.__init__, cls.__setattr__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        with _params_errors(type(self)):
            init(self, *args, **kwargs)

    def __setattr__(self, name, value):
        if "__pydantic_validator__" not in vars(type(self)):
            # a plain dataclass subclassing this one sets its fields unchecked in its own
            # __init__; make_params validates it as a whole
            return object.__setattr__(self, name, value)
        with _params_errors(type(self)):
            validated_setattr(self, name, value)

    cls.__init__, cls.__setattr__ = __init__, __setattr__
    return cls


@contextlib.contextmanager
def _params_errors(params_cls: type):
    """pydantic's errors of ``params_cls``'s values as a ``ParamsError``, and a nested Params'
    (one its validators built, ``where`` the key holding it) under that key."""
    try:
        yield
    except ValidationError as exc:
        raise ParamsError(_problems(exc, params_cls), _where(params_cls)) from None
    except ParamsError as exc:
        raise ParamsError([(_join(exc.where, key), text) for key, text in exc.problems],
                          _where(params_cls)) from None


@functools.cache
def _validating(params_cls: type) -> type:
    """The class that validates ``params_cls``: itself if it is a ``params_dataclass``, else
    (a plain dataclass: a model that keeps its Params in its own class) a validating subclass."""
    if "__pydantic_validator__" in vars(params_cls):
        return params_cls
    if not dataclasses.is_dataclass(params_cls):
        raise TypeError(f"{params_cls.__qualname__} is not a dataclass: a model's Params is a "
                        "@recbench.params.params_dataclass (or a plain @dataclass)")
    sub = types.new_class(params_cls.__name__, (params_cls,))
    sub.__qualname__, sub.__module__ = params_cls.__qualname__, params_cls.__module__
    return params_dataclass(sub)


def make_params(params_cls: type, params: dict | None, label: str = "", *,
                where: str | None = None):
    """``params_cls`` built from the config mapping ``params``, validated; a problem raises
    ``ParamsError`` naming each bad key as ``models.<label>.<key>`` (``label``: the model's
    config key, default its name), or as ``<where>.<key>`` where ``where`` is given (a validator
    building a nested Params passes the key that holds it)."""
    where = where or f"models.{label or model_name(params_cls)}"
    validating = _validating(params_cls)
    try:
        obj = validating(**dict(params or {}))
    except ParamsError as exc:
        raise ParamsError(exc.problems, where) from None
    if validating is params_cls:
        return obj
    return params_cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(params_cls)
                         if f.init})


# -- the messages -------------------------------------------------------------------------------

#: pydantic's error types of a value outside a range (its type is right)
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
#: pydantic's error types of a key the class does not have
_UNKNOWN_ERRORS = {"unexpected_keyword_argument", "extra_forbidden", "no_such_attribute"}
_NOUNS = {"integer": "an integer", "number": "a number", "string": "a string",
          "object": "a mapping", "array": "a list"}


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@functools.cache
def _schema(params_cls: type) -> dict:
    """The JSON schema of the keys of ``params_cls`` (what the messages say is allowed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a default JSON cannot hold
            return pydantic.TypeAdapter(params_cls).json_schema()["properties"]
    except Exception:  # a field of a type JSON schema cannot describe: pydantic's words then
        return {}


def _bounds(prop: dict) -> str:
    low = next(((b, prop[k]) for k, b in (("minimum", "["), ("exclusiveMinimum", "("))
                if k in prop), None)
    high = next(((b, prop[k]) for k, b in (("maximum", "]"), ("exclusiveMaximum", ")"))
                 if k in prop), None)
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""


def _alternatives(prop: dict, with_type: bool) -> list[str]:
    """What a key of JSON schema ``prop`` may be, one phrase per alternative; ``with_type``
    False: the range alone where there is one (the value's type was right)."""
    if "anyOf" in prop:
        return [a for p in prop["anyOf"] for a in _alternatives(p, with_type)]
    if "enum" in prop or "const" in prop:
        return [_short(v) for v in prop.get("enum", [prop.get("const")])]
    kind = prop.get("type")
    if kind == "boolean":
        return ["true", "false"]
    if kind == "null":
        return ["null"]
    noun, bounds = _NOUNS.get(kind, "a value"), _bounds(prop)
    return [f"{noun} {bounds}" if with_type and bounds else bounds or noun]


def _allowed(params_cls: type, key: str, error: dict) -> str:
    """'must be ...' (or 'must lie in ...') of the key ``key`` that ``error`` refused."""
    prop = _schema(params_cls).get(key)
    if prop is None:
        return "must be " + error["msg"].removeprefix("Input should be ")
    alternatives = _alternatives(prop, with_type=error["type"] not in _RANGE_ERRORS)
    verb = "lie" if alternatives[0].startswith("in ") else "be"
    phrase = (alternatives[0] if len(alternatives) == 1
              else ", ".join(alternatives[:-1]) + " or " + alternatives[-1])
    hint = f" ({prop['description']})" if prop.get("description") else ""
    return f"must {verb} {phrase}{hint}"


def _problems(exc: ValidationError, params_cls: type) -> list[tuple[str, str]]:
    """(key, what is wrong and the fix) of each error pydantic found in ``params_cls``'s values."""
    unknown, by_key, problems = [], {}, []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if error["type"] in _UNKNOWN_ERRORS:
            unknown.append(loc[0])
        elif loc:  # a key's value; a union's members each report: keep the first
            by_key.setdefault(loc[0], (loc, error))
        elif isinstance(error.get("ctx", {}).get("error"), ParamError):  # a rule of a validator
            rule = error["ctx"]["error"]
            problems.append((rule.key, f"{'' if rule.key else ': '}{rule}"))
        else:
            problems.append(("", f": {error['msg']}"))
    for key, (loc, error) in by_key.items():
        value = error["input"]
        problems.append((".".join(loc), f"{_allowed(params_cls, key, error)}, got "
                         f"{_short(value)} ({type(value).__name__}). Fix the value in the config."))
    if unknown:
        accepted = sorted(f.name for f in dataclasses.fields(params_cls) if f.init)
        owner = getattr(params_cls, "model_name", None) or "the model"
        problems.insert(0, ("", f": unknown parameter(s) {sorted(unknown)}; {owner} accepts "
                                f"{accepted or 'none'}. Fix the key's name, or remove it."))
    return problems


# -- the families' parameters -------------------------------------------------------------------

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


@params_dataclass
class TrainConfig:
    """Optimisation settings; neural models' ``Params`` inherit them, so configs set them directly."""

    epochs: Count = 100
    batch_size: Count = 128
    lr: Positive = 1e-3
    weight_decay: NonNegative = 0.0
    patience: Count | None = 5  # evaluations without a better val NDCG@10 before stopping; None: never
    eval_every: Count = 1  # epochs between two validation evaluations
    amp: bool = False  # float16 autocast + GradScaler; CUDA only, ignored on CPU
    max_grad_norm: Positive | None = None  # clip the global gradient norm; None: no clipping
    eval_batch_size: Count = 1024
    progress: bool | None = None  # tqdm bar per epoch; None: only on a terminal

    def train_config(self) -> "TrainConfig":
        """The TrainConfig part of a model's Params (which subclass this)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


@params_dataclass
class SequentialParams(TrainConfig):
    """A sequential model's parameters (TrainConfig adds epochs, batch_size, lr, ...)."""

    dim: Count = 64
    n_layers: Count = 2
    n_heads: Count = 2
    dropout: DropRate = 0.2
    max_len: Count = 50  # transformer sequence length: the last max_len items of a history
    loss: CatalogLoss = "ce"  # "ce": full softmax over the catalog; "sce": scalable cross-entropy
    sce_n_buckets: Count = 256
    sce_bucket_size_x: Count = 256  # states per bucket
    sce_bucket_size_y: Count = 256  # items (negatives) per bucket
    # the encoder's input and form (recbench/nn/encoders.py); defaults: today's SASRec
    input_norm: bool = False  # LayerNorm on item + position embeddings before dropout
    norm_first: bool = True  # pre-norm layers + final LayerNorm; False: post-norm
    init: Init = "scaled"  # "scaled": normal std d^-1/2; "trunc_normal": std 0.02 (MRGSRec's)
    batching: Annotated[Batching, Field(description=(
        "'random' shuffles the windows, 'length' groups windows of similar length into each "
        "batch"))] = "random"

    @model_validator(mode="after")
    def _heads_divide_dim(self):
        if self.dim % self.n_heads:
            raise ParamError("dim", f"must be divisible by n_heads ({self.n_heads}), got "
                                    f"{self.dim}: each head takes dim / n_heads dimensions.")
        return self

    def encoder_kwargs(self) -> dict:
        """The ``SequenceEncoder`` arguments these parameters set."""
        return {"dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "dropout": self.dropout, "max_len": self.max_len, "input_norm": self.input_norm,
                "norm_first": self.norm_first, "init": self.init}

    def item_init_std(self) -> float:
        """The std the item table starts at (``init_std``)."""
        return init_std(self.dim, self.init)


@params_dataclass
class GraphSize:
    """Which training interactions make the graph: each user's last N, or last fraction, or all."""

    graph_last_n: Count | None = None  # graph: each user's last N interactions (None: all)
    graph_last_fraction: Fraction | None = None  # or each user's last fraction of them

    @model_validator(mode="after")
    def _one_graph_size(self):
        if self.graph_last_n is not None and self.graph_last_fraction is not None:
            raise ParamError("", "set graph_last_n or graph_last_fraction, not both (null for "
                                 "the other).")
        return self


@params_dataclass
class GraphParams(TrainConfig, GraphSize):
    """A graph model's parameters (TrainConfig adds epochs, batch_size, lr, ...)."""

    dim: Count = 64
    init_std: Positive = 0.1  # normal init of the user and item tables
    exclude_positives: bool = True  # redraw a sampled negative that is one of the user's items
    negatives: Negatives = "sampled"  # "sampled": uniform draws; "catalog": every j not in H_u

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
