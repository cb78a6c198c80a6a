"""The model interface, ``register`` and ``build_model``.

A model is a class with two methods: ``fit`` on a training log (an ``Interactions``, plus the
validation ``EvalSet`` for models that stop early) and ``score`` a ``HistoryBatch`` against the
whole catalog. Its hyperparameters are a dataclass ``Params`` next to it, with defaults, which
``build_model`` validates (``recbench.params.make_params``: pydantic, by its annotations; a
``recbench.params.params_dataclass`` adds ranges and rules).
``@register("Name")`` makes it available to configs (``recbench.registry``); modules in
``baselines/`` and ``create_model/`` are found automatically, so a new baseline is one new module
there plus one config entry, and no rule changes.

The workflow checks a config's parameters before any job; to plan without importing torch it reads
the Params declared in each package's torch-free ``params`` module (``recbench.registry.declare``).
A model may instead keep its Params in its own class, as below; the workflow then imports the
model code to check them.

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

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from recbench import artefacts
from recbench.data.dataset import EvalSet, HistoryBatch, Interactions
from recbench.params import make_params
from recbench.registry import add_class, model_class

__all__ = ["Recommender", "build_model", "missing_members", "register"]


class Recommender:
    """Base class. Subclasses define ``Params`` (a dataclass), ``fit`` and ``score``."""

    @dataclass
    class Params:
        pass

    #: the evaluator passes at most this many last history items to ``score`` (None: all)
    max_history: ClassVar[int | None] = None
    #: "length": the evaluator batches histories of similar length together, so a model that
    #: computes per history position (a transformer) pads little; "random": in the set's order
    batching: ClassVar[str] = "random"
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

    # -- saving and loading (recbench.artefacts) -----------------------------------------------
    #: attributes that are settings or id maps, not fitted state
    _NOT_FITTED: ClassVar[frozenset[str]] = frozenset(
        {"params", "seed", "device", "workdir", "eval_filter_seen", "ids", "meta", "fit_facts"})

    def fitted_state(self) -> dict:
        """What ``fit`` learned, as ``torch.load(weights_only=True)`` reads it back: by default
        every attribute ``fit`` set (tensors, numpy arrays, generators' states, numbers). A model
        holding anything else (a library's object) overrides this and ``load_fitted_state``."""
        state = {}
        for name, value in vars(self).items():
            if name in self._NOT_FITTED or name.startswith("_"):
                continue
            if isinstance(value, torch.Generator):
                state[name] = {"generator": value.get_state()}
            elif isinstance(value, np.ndarray):
                state[name] = {"ndarray": torch.from_numpy(np.ascontiguousarray(value))}
            elif isinstance(value, (torch.Tensor, int, float, bool, str)) or value is None:
                state[name] = {"value": value}
            else:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a {type(value).__name__}, which a saved "
                    f"model cannot hold: override {type(self).__name__}.fitted_state and "
                    "load_fitted_state (see baselines/ials.py), or set save_models: false.")
        return state

    def load_fitted_state(self, state: dict, train: Interactions) -> None:
        """Restore ``fitted_state``; ``train``: the log the model was fitted on."""
        for name, entry in state.items():
            (kind, value), = entry.items()
            if kind == "generator":
                value = torch.Generator().set_state(value)
            elif kind == "ndarray":
                value = value.numpy()
            setattr(self, name, value)

    def recommend(self, users=None, *, histories=None, k: int = 10, filter_seen: bool = True,
                  batch_size: int = 1024, progress: bool | None = None):
        """Top-``k`` items per user (external ids) or per history (lists of external item ids):
        a DataFrame of user, item, rank, score; see ``recbench.artefacts.recommend``."""
        return artefacts.recommend(self, users, histories=histories, k=k, filter_seen=filter_seen,
                         batch_size=batch_size, progress=progress)


def register(name: str):
    """Class decorator: make a Recommender available under ``name`` in configs."""

    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, Recommender)):
            raise TypeError(f"@register({name!r}) needs a Recommender subclass")
        add_class(name, cls)
        cls.registry_name = name
        return cls

    return deco


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
    cls = model_class(name)
    return cls(make_params(cls.Params, params, label or name), seed=seed, device=device,
               workdir=workdir, eval_filter_seen=filter_seen)

