"""CREATE's hyperparameters (``CREATEParams``), without torch, and what validates them.

The model is ``create_model/create.py``; this module is what the workflow reads to check a
config's CREATE entries before any job (``recbench.registry.declare``). The backbones' parameters
are checked here by their declared Params; that the backbone classes provide the interfaces
CREATE composes them through is checked when the model is built (``create.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recbench.errors import ConfigError
from recbench.params import NEGATIVES, GraphParams, SequentialParams, TrainConfig, make_params
from recbench.registry import declare, known_models, params_class

#: Eq. 3's Barlow Twins as a sum or divided by d (create_model/alignment.py)
BARLOW_SCALES = ("sum", "mean")
#: L_align: none, InfoNCE or Barlow Twins (create_model/alignment.py)
ALIGNMENTS = ("none", "contrastive", "barlow")
#: the readings of CREATE's own open points (create_model/readings.py) and their values
CHOICES = {
    "graph_schedule": ("edges", "sequential"),
    "graph_negatives": NEGATIVES,
    "score_table": ("raw", "propagated"),
    "align_positions": ("last", "all"),
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
        what = "unknown model" if name not in known_models() else "not a"
        raise ConfigError(f"models.CREATE.{key}: {what} {name!r}"
                          f"{'' if what == 'unknown model' else f' {branch} model'}; the "
                          f"{branch} models (Params subclassing {family.__name__}) are "
                          f"{family_models(branch)}.")
    return params_class(name)


def _for_backbone(params: dict, backbone: str) -> dict:
    """Shared keys plus the chosen backbone's own sub-dict; other models' sub-dicts dropped."""
    models = known_models()
    shared = {k: v for k, v in params.items() if k not in models}
    return {**shared, **(params.get(backbone) or {})}


@declare("CREATE", "create_model.create:CREATE")
@dataclass
class CREATEParams(TrainConfig):
    epochs: int = 100  # joint epochs, after the warm-up ones (recbench.training)
    batch_size: int = 128  # sequential windows per step
    lr: float = 1e-3
    patience: int | None = 5
    sequential_backbone: str = "SASRec"
    graph_backbone: str = "LightGCN"
    # parameters of the backbones, as their own config entries take them; the graph's `dim`
    # is always the sequential one (one shared item table). A sub-dict named after a
    # backbone applies to that backbone only, so one config serves the backbone grid:
    #   graph: {graph_last_n: 50, LightGCN: {n_layers: 3}, UltraGCN: {negative_num: 50}}
    # The graph's batch_size is its warm-up batch (edges per step, graph_schedule: edges).
    sequential: dict = field(default_factory=dict)
    graph: dict = field(default_factory=lambda: {"graph_last_n": 50})
    alignment: str = "barlow"  # none | contrastive | barlow
    w_global: float = 0.1
    w_align: float = 0.1
    barlow_lambda: float = 5e-3
    barlow_scale: str = "mean"  # Eq. 3 as a sum ("sum") or divided by d ("mean")
    temperature: float = 0.2  # InfoNCE
    warmup_epochs: int = 5  # graph-only epochs before the `epochs` joint ones
    # the readings of the paper's open points (create_model/readings.py):
    graph_schedule: str = "edges"  # edges: passes over the graph's edges; sequential: the
    #                                sequential batch's (user, next item) pairs
    graph_negatives: str = "sampled"  # sampled (the backbone's) | catalog (every j not in H_u)
    score_table: str = "raw"  # raw: the shared item table; propagated: the graph's items
    align_positions: str = "last"  # last: the state that scores; all: every scored position

    def validate(self):
        super().validate()
        if self.alignment not in ALIGNMENTS:
            raise ConfigError(f"models.CREATE.alignment must be one of {ALIGNMENTS}, got "
                              f"{self.alignment!r}")
        if self.barlow_scale not in BARLOW_SCALES:
            raise ConfigError(f"models.CREATE.barlow_scale must be one of {BARLOW_SCALES}, "
                              f"got {self.barlow_scale!r}")
        for key, values in CHOICES.items():
            if getattr(self, key) not in values:
                raise ConfigError(f"models.CREATE.{key} must be one of {values}, got "
                                  f"{getattr(self, key)!r}")
        if min(self.w_global, self.w_align, self.barlow_lambda, self.warmup_epochs) < 0:
            raise ConfigError("models.CREATE: w_global, w_align, barlow_lambda and "
                              "warmup_epochs must be >= 0")
        if self.temperature <= 0:
            raise ConfigError(f"models.CREATE.temperature must be > 0, got {self.temperature}")
        models = known_models()
        for branch, set_by_create in (("graph", GRAPH_SET_BY_CREATE),
                                      ("sequential", SEQUENTIAL_SET_BY_CREATE)):
            entries = getattr(self, branch)
            own = [v for k, v in entries.items() if k in models and isinstance(v, dict)]
            for key, why in set_by_create.items():
                if key in entries or any(key in sub for sub in own):
                    raise ConfigError(f"models.CREATE.{branch}.{key}: {why}; remove "
                                      f"{branch}.{key}")
        # the backbones' own checks, with CREATE's key names in the messages
        self.backbone_params()

    def backbone_params(self) -> tuple[SequentialParams, GraphParams]:
        """The two backbones' Params, validated (by their declarations, so without torch)."""
        seq_params = _backbone_params(self.sequential_backbone, "sequential")
        graph_params = _backbone_params(self.graph_backbone, "graph")
        seq = make_params(seq_params, {**_for_backbone(self.sequential, self.sequential_backbone),
                                       "batch_size": self.batch_size}, "CREATE.sequential")
        graph = _for_backbone(self.graph, self.graph_backbone)
        # the graph's users start at the shared item table's scale; the backbone's own
        # settings for a branch beside per-example losses (UltraGCN: reduction mean)
        defaults = {"init_std": seq.item_init_std(), "progress": False,
                    **graph_params.branch_defaults()}
        graph = make_params(graph_params, {**defaults, **graph, "dim": seq.dim,
                                           "negatives": self.graph_negatives}, "CREATE.graph")
        return seq, graph
