"""CREATE's hyperparameters (``CREATEParams``), without torch, and what validates them.

The model is ``create_model/create.py``; this module is what the workflow reads to check a
config's CREATE entries before any job (``recbench.registry.declare``). ``CREATEParams`` is a
pydantic dataclass (``recbench.params.params_dataclass``); its validator builds the backbones'
Params from ``sequential:`` and ``graph:`` by their declarations (so without torch), once, and
keeps them (``backbone_params``): a bad backbone key is named as ``models.CREATE.graph.<key>``
(``models.CREATE.graph.<Backbone>.<key>`` where a backbone's own sub-dict set it). That the
backbone classes provide the interfaces CREATE composes them through is checked when the model
is built (``create.py``).
"""

from __future__ import annotations

import typing
from dataclasses import field
from typing import Any, Literal

from pydantic import model_validator

from recbench.params import (Count, GraphParams, Negatives, NonNegative, NonNegativeInt,
                             ParamError, ParamsError, Positive, SequentialParams, TrainConfig,
                             make_params, params_dataclass)
from recbench.registry import declare, known_models, params_class

#: Eq. 3's Barlow Twins as a sum or divided by d (create_model/alignment.py)
BarlowScale = Literal["sum", "mean"]
BARLOW_SCALES = typing.get_args(BarlowScale)
#: L_align: none, InfoNCE or Barlow Twins (create_model/alignment.py)
Alignment = Literal["none", "contrastive", "barlow"]
ALIGNMENTS = typing.get_args(Alignment)
#: the readings of CREATE's own open points (create_model/readings.py) and their values
GraphSchedule = Literal["edges", "sequential"]
ScoreTable = Literal["raw", "propagated"]
AlignPositions = Literal["last", "all"]
CHOICES = {
    "graph_schedule": typing.get_args(GraphSchedule),
    "graph_negatives": typing.get_args(Negatives),
    "score_table": typing.get_args(ScoreTable),
    "align_positions": typing.get_args(AlignPositions),
}
#: keys of ``graph:`` that CREATE sets itself, and where to set them instead
GRAPH_SET_BY_CREATE = {
    "dim": "the graph backbone shares the item table, so its dim is sequential.dim",
    "negatives": "set models.CREATE.graph_negatives instead",
}
#: keys of ``sequential:`` that CREATE sets itself, and where to set them instead
SEQUENTIAL_SET_BY_CREATE = {
    "batch_size": "CREATE's own batch_size is the sequential backbone's windows per step; set "
                  "models.CREATE.batch_size instead",
}
#: the two branches: the key naming the backbone and the Params family it must have
BRANCHES = {"sequential": ("sequential_backbone", SequentialParams),
            "graph": ("graph_backbone", GraphParams)}


def family_models(branch: str) -> list[str]:
    """The models whose Params are of ``branch``'s family."""
    family = BRANCHES[branch][1]
    return sorted(n for n in known_models() if issubclass(params_class(n), family))


def _backbone_params(name: str, branch: str) -> type:
    """The Params class of the model ``name`` if they are ``branch``'s family's."""
    key, family = BRANCHES[branch]
    if name not in known_models() or not issubclass(params_class(name), family):
        what = "an unknown model" if name not in known_models() else f"not a {branch} model"
        raise ParamError(key, f"must name a {branch} model (Params subclassing "
                              f"{family.__name__}): one of {family_models(branch)}, got "
                              f"{name!r}, {what}.")
    return params_class(name)


def _set_by_create(branch: str, entries: dict, set_by_create: dict) -> None:
    """Refuse a key of ``branch:`` (or of a backbone's sub-dict in it) that CREATE sets."""
    models = known_models()
    for key, why in set_by_create.items():
        places = [key] * (key in entries) + [
            f"{m}.{key}" for m, sub in entries.items()
            if m in models and isinstance(sub, dict) and key in sub]
        if places:
            raise ParamError(f"{branch}.{places[0]}", f"is set by CREATE: {why}; remove "
                                                      f"{branch}.{places[0]}.")


def _branch(params_cls: type, branch: str, entries: dict, backbone: str, *, defaults: dict,
            fixed: dict):
    """The backbone's Params from ``branch:``: ``defaults``, then the shared keys and the
    backbone's own sub-dict (other models' sub-dicts dropped), then what CREATE ``fixed``. A
    problem names the key where the config set it."""
    models = known_models()
    own = entries.get(backbone) or {}
    shared = {k: v for k, v in entries.items() if k not in models}
    try:
        return make_params(params_cls, {**defaults, **shared, **own, **fixed}, where=branch)
    except ParamsError as exc:
        raise ParamsError([(f"{backbone}.{key}" if key.split(".")[0] in own else key, text)
                           for key, text in exc.problems], exc.where) from None


@declare("CREATE", "create_model.create:CREATE")
@params_dataclass
class CREATEParams(TrainConfig):
    epochs: Count = 100  # joint epochs, after the warm-up ones (recbench.training)
    batch_size: Count = 128  # sequential windows per step
    lr: Positive = 1e-3
    patience: Count | None = 5
    sequential_backbone: str = "SASRec"
    graph_backbone: str = "LightGCN"
    # parameters of the backbones, as their own config entries take them; the graph's `dim`
    # is always the sequential one (one shared item table). A sub-dict named after a
    # backbone applies to that backbone only, so one config serves the backbone grid:
    #   graph: {graph_last_n: 50, LightGCN: {n_layers: 3}, UltraGCN: {negative_num: 50}}
    # The graph's batch_size is its warm-up batch (edges per step, graph_schedule: edges).
    sequential: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=lambda: {"graph_last_n": 50})
    alignment: Alignment = "barlow"  # none | contrastive | barlow
    w_global: NonNegative = 0.1
    w_align: NonNegative = 0.1
    barlow_lambda: NonNegative = 5e-3
    barlow_scale: BarlowScale = "mean"  # Eq. 3 as a sum ("sum") or divided by d ("mean")
    temperature: Positive = 0.2  # InfoNCE
    warmup_epochs: NonNegativeInt = 5  # graph-only epochs before the `epochs` joint ones
    # the readings of the paper's open points (create_model/readings.py):
    graph_schedule: GraphSchedule = "edges"  # edges: passes over the graph's edges; sequential:
    #                                          the sequential batch's (user, next item) pairs
    graph_negatives: Negatives = "sampled"  # sampled (the backbone's) | catalog (all j not in H_u)
    score_table: ScoreTable = "raw"  # raw: the shared item table; propagated: the graph's items
    # last: the state that scores; all: every scored position
    align_positions: AlignPositions = "last"

    @model_validator(mode="after")
    def _build_backbones(self):
        """The backbones' Params, validated by their declarations and kept for
        ``backbone_params`` (rebuilt when a field is assigned: validation reruns)."""
        _set_by_create("graph", self.graph, GRAPH_SET_BY_CREATE)
        _set_by_create("sequential", self.sequential, SEQUENTIAL_SET_BY_CREATE)
        seq_cls = _backbone_params(self.sequential_backbone, "sequential")
        graph_cls = _backbone_params(self.graph_backbone, "graph")
        seq = _branch(seq_cls, "sequential", self.sequential, self.sequential_backbone,
                      defaults={}, fixed={"batch_size": self.batch_size})
        # the graph's users start at the shared item table's scale; the backbone's own
        # settings for a branch beside per-example losses (UltraGCN: reduction mean)
        graph = _branch(graph_cls, "graph", self.graph, self.graph_backbone,
                        defaults={"init_std": seq.item_init_std(), "progress": False,
                                  **graph_cls.branch_defaults()},
                        fixed={"dim": seq.dim, "negatives": self.graph_negatives})
        object.__setattr__(self, "_backbones", (seq, graph))  # no field: not in asdict, repr
        return self

    def backbone_params(self) -> tuple[SequentialParams, GraphParams]:
        """The two backbones' Params, as validation built them (by their declarations, so
        without torch)."""
        return self._backbones
