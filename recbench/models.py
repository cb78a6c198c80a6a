"""The model interface and the registry that finds models by name.

A model is a class with two methods: ``fit`` on a training log (an ``Interactions``, plus the
validation ``EvalSet`` for models that stop early) and ``score`` a ``HistoryBatch`` against the
whole catalog. Its hyperparameters are a dataclass ``Params`` next to it, with defaults.
``@register("Name")`` makes it available to configs; modules in ``baselines/`` and
``create_model/`` are imported automatically, so a new baseline is one new module there plus one
config entry, and no rule changes.

The workflow checks a config's parameters before any job; to plan without importing torch it reads
the Params from each package's torch-free ``params`` module (``recbench.params.declare``). A model
may instead keep its Params in its own class, as below; the workflow then imports the model code
to check them.

    @register("MyPop")
    class MyPop(Recommender):
        @dataclass
        class Params:
            smoothing: float = 1.0

        def fit(self, train, valid=None):
            self.pop = torch.from_numpy(train.popularity() + self.params.smoothing).float()

        def score(self, batch):  # [B, n_items]
            return self.pop.expand(len(batch.lengths), -1)
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from recbench.data.dataset import EvalSet, HistoryBatch, Interactions
from recbench.errors import ConfigError
from recbench.params import MODEL_PACKAGES, declarations, make_params

__all__ = ["Recommender", "register", "discover", "get_model_class", "build_model", "make_params",
           "missing_members", "REGISTRY"]

REGISTRY: dict[str, type["Recommender"]] = {}


class Recommender:
    """Base class. Subclasses define ``Params`` (a dataclass), ``fit`` and ``score``."""

    @dataclass
    class Params:
        pass

    #: the evaluator passes at most this many last history items to ``score`` (None: all)
    max_history: ClassVar[int | None] = None
    #: the name configs use (set by ``@register``; the class name for an unregistered one)
    registry_name: ClassVar[str] = ""

    def __init__(self, params: "Recommender.Params", *, seed: int = 0, device: str = "cpu",
                 workdir: Path | None = None, eval_filter_seen: bool = False):
        self.params = params
        self.seed = seed
        self.device = torch.device(device)
        self.workdir = workdir  # where a model may write history.csv and other per-seed files
        #: the evaluation protocol early stopping selects on: history items filtered from the
        #: validation ranking or not (``evaluation.filter_seen``)
        self.eval_filter_seen = eval_filter_seen

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "registry_name" not in vars(cls):
            cls.registry_name = cls.__name__

    def fit(self, train: Interactions, valid: EvalSet | None = None) -> None:
        raise NotImplementedError

    def score(self, batch: HistoryBatch) -> torch.Tensor:
        """Scores of every catalog item for each history: [B, n_items]."""
        raise NotImplementedError


def register(name: str):
    """Class decorator: make a Recommender available under ``name`` in configs."""

    def deco(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ConfigError(f"model name {name!r} is registered twice "
                              f"({REGISTRY[name].__module__} and {cls.__module__})")
        if not (isinstance(cls, type) and issubclass(cls, Recommender)):
            raise TypeError(f"@register({name!r}) needs a Recommender subclass")
        declared = declarations().get(name)
        if declared is not None and cls.Params is not declared:
            raise TypeError(f"@register({name!r}): {cls.__name__}.Params must be the Params "
                            f"declared for {name!r} ({declared.__module__}."
                            f"{declared.__qualname__}): set `Params = {declared.__qualname__}`")
        REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return deco


def discover() -> dict[str, type[Recommender]]:
    """Import every module of the model packages so their @register calls run."""
    for pkg_name in MODEL_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError:
            continue
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    return REGISTRY


def get_model_class(name: str) -> type[Recommender]:
    if name not in REGISTRY:
        discover()
    if name not in REGISTRY:
        raise ConfigError(
            f"unknown model {name!r}; registered models are {sorted(REGISTRY)}. Add a module with "
            f"@register({name!r}) to baselines/, or fix the name (or `class:`) in config `models:`."
        )
    return REGISTRY[name]


def missing_members(cls: type, interface: type) -> list[str]:
    """The methods and properties of the Protocol ``interface`` that ``cls`` does not have."""
    names = [n for n, v in vars(interface).items()
             if not n.startswith("_") and (callable(v) or isinstance(v, property))]
    return [n for n in names if not hasattr(cls, n)]


def build_model(name: str, params: dict | None = None, *, seed: int = 0, device: str = "cpu",
                workdir: Path | None = None, label: str = "",
                filter_seen: bool = False) -> Recommender:
    """The model ``name`` with ``params`` validated; ``filter_seen``: the evaluation protocol
    (``evaluation.filter_seen``) a neural model's early stopping selects on."""
    cls = get_model_class(name)
    return cls(make_params(cls.Params, params, label or name), seed=seed, device=device, workdir=workdir,
               eval_filter_seen=filter_seen)
