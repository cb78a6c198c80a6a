"""Ablation studies: every point of a sweep is a model *variant* with its own label and job.

A study in the config names a base model label, the datasets, optionally its own seeds, fixed
overrides (``set``) and either a ``grid`` of parameters to sweep or named ``variants``;
``include`` adds plain model labels (Table 4's "sequential only" row is the SASRec label
itself), which come first::

    studies:
      fig4_warmup:
        base: CREATE
        datasets: [beauty, sports]
        grid: {warmup_epochs: [0, 10, 20, 50, 100]}
      readings:                       # results/readings.md
        base: CREATE
        datasets: [ml-1m]
        include: [SASRec]
        variants:                     # name -> overrides, each one point
          contrastive: {alignment: contrastive}
          decorrelated: {barlow_lambda: 0.0156, barlow_scale: sum}

A study of variants has one point more, named ``default``: the base itself (with ``set``), whose
label is the base label when there is no ``set``, so it shares its jobs with Table 2.

Each grid point becomes the label ``CREATE~warmup_epochs=10``: the base's parameters with the
overrides applied, keys sorted, values in YAML (``null``, ``0.1``, ``UltraGCN``); a dotted key
reaches into a nested dict (``graph.graph_last_fraction=0.4``). Overrides equal to the base's own
value are dropped (unless the base tunes that key), so the point that *is* the base configuration
is the base label itself and shares its jobs with Table 2. A variant label is an ordinary ``{model}`` wildcard: the one
``train`` and ``evaluate`` rules train and score it like any model, one job each per (dataset, variant, seed), so a
cluster runs a sweep in parallel.

A label longer than ``MAX_LABEL_BYTES`` (many overrides: a path component holds at most 255
bytes) names its overrides by a digest instead, ``CREATE~overrides=<12 hex digits>``;
``recbench.protocol.config.variant_overrides`` finds them again in the config's studies.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import yaml

from recbench.errors import ConfigError

SEP = "~"
#: the studies the reports know, with what each renders
STUDIES = {
    "table4": "results/table4.md (alignment ablation)",
    "table5": "results/table5.md (backbone grid)",
    "fig2_training_curves": "results/figures/fig2_training_curves.png",
    "fig3_graph_size": "results/figures/fig3_graph_size.png",
    "fig4_warmup": "results/figures/fig4_warmup.png",
    "fig5_barlow_weight": "results/figures/fig5_barlow_weight.png",
    "readings": "results/readings.md (named variants of the base, beside the reference)",
}
#: studies whose report needs named ``variants`` (a ``default`` point to compare with)
VARIANT_STUDIES = ("readings",)
#: the name of a variants study's point that is the base itself
DEFAULT = "default"
#: a longer label (UTF-8 bytes) is ``BASE~overrides=<digest>``; ".log" or ".tsv" still fit in 255
MAX_LABEL_BYTES = 200
DIGEST = "overrides"


@dataclass(frozen=True)
class Point:
    """One point of a study on one dataset."""

    label: str  # the {model} wildcard: a config model label, or BASE~key=value~...
    values: dict = field(default_factory=dict)  # swept values, plus the point's other top-level
    #                                             scalar parameters as resolved (what a report's
    #                                             rows name, e.g. Table 4's graph_backbone)
    name: str = ""  # a variant's name, "default" for the base, the label of an include
    overrides: dict = field(default_factory=dict)  # what the label stands for (kept overrides)


def format_value(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").strip()


def parse_label(label: str) -> tuple[str, dict]:
    """``CREATE~a=1~b.c=null`` -> ("CREATE", {"a": 1, "b.c": None})."""
    base, *parts = label.split(SEP)
    overrides = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ConfigError(f"model variant {label!r}: {part!r} is not key=value")
        overrides[key] = value if key == DIGEST else yaml.safe_load(value)
    return base, overrides


def get_nested(params: dict, key: str, default=None):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_overrides(params: dict, overrides: dict, label: str = "") -> dict:
    """A copy of ``params`` with dotted-key overrides applied (nested dicts copied, not shared)."""
    out = _deepcopy(params)
    for key, value in overrides.items():
        path, node = key.split("."), out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"model variant {label!r}: {key!r} reaches into {part!r}, "
                                  f"which is {child!r}, not a dict of parameters")
            node = child
        node[path[-1]] = value
    return out


def deep_merge(base: dict, update: dict) -> dict:
    """A copy of ``base`` updated by ``update``: nested dicts merge key by key, any other value
    replaces (a dataset's ``model_params`` over a model's ``params``, ``--config`` over a config
    file). ``apply_overrides`` is the same for dotted keys, refusing to reach into a non-dict."""
    out = _deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = _deepcopy(value) if isinstance(value, dict) else value
    return out


def _deepcopy(d):
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


_MISSING = object()


def kept_overrides(overrides: dict, base_params: dict, searched=()) -> dict:
    """The overrides that change the base: those equal to the base's value dropped, unless the
    base tunes that key (``searched``): its tuned value may differ from the config's."""
    return {k: v for k, v in overrides.items()
            if k in searched or get_nested(base_params, k, _MISSING) != v}


def variant_label(base: str, overrides: dict, base_params: dict, searched=()) -> str:
    """The canonical label of ``kept_overrides``, sorted; beyond MAX_LABEL_BYTES, a digest."""
    kept = kept_overrides(overrides, base_params, searched)
    label = SEP.join([base] + [f"{k}={format_value(v)}" for k, v in sorted(kept.items())])
    if len(label.encode()) <= MAX_LABEL_BYTES:
        return label
    return f"{base}{SEP}{DIGEST}={hashlib.sha1(label.encode()).hexdigest()[:12]}"


def study(config: dict, name: str) -> dict:
    studies = config.get("studies") or {}
    if name not in studies:
        raise ConfigError(
            f"the config has no `studies: {name}:`, which {STUDIES.get(name, name)} needs; add it "
            "(config/config.yaml has a reduced sweep, config/paper.yaml the paper's)."
        )
    return studies[name]


def study_seeds(config: dict, name: str) -> list[int]:
    return list(study(config, name).get("seeds") or config["seeds"])


def study_datasets(config: dict, name: str) -> list[str]:
    return list(study(config, name).get("datasets") or [])


def points(config: dict, name: str, dataset: str, base_params: dict, searched=()) -> list[Point]:
    """The study's points on a dataset, ``include`` labels first, then the grid in order, or the
    ``default`` point and the variants in config order.

    ``base_params`` are the base label's parameters on that dataset (``config.model_spec``),
    ``searched`` the keys its tuning searches. A variant's ``values`` are its own overrides as
    the config gives them (``set`` is every point's, the default's too).
    """
    spec = study(config, name)
    out = [Point(label, name=label) for label in spec.get("include") or []]
    base = spec["base"]
    fixed = dict(spec.get("set") or {})
    if name in VARIANT_STUDIES and "variants" not in spec:
        raise ConfigError(f"studies.{name} needs `variants:` (name -> overrides), which "
                          f"{STUDIES[name]} compares with the base's own point, `{DEFAULT}`.")
    if "variants" in spec:
        if "grid" in spec:
            raise ConfigError(f"studies.{name}: give either `grid:` or `variants:`, not both.")
        if DEFAULT in spec["variants"]:
            raise ConfigError(f"studies.{name}.variants: {DEFAULT!r} is the name of the base's "
                              "own point; give the variant another name.")
        for vname, own in {DEFAULT: {}, **spec["variants"]}.items():
            over = {**fixed, **(own or {})}
            out.append(Point(variant_label(base, over, base_params, searched), dict(own or {}),
                             vname, kept_overrides(over, base_params, searched)))
        return out
    grid = spec.get("grid") or {}
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        params = apply_overrides(base_params, {**fixed, **values})
        described = {k: v for k, v in params.items() if not isinstance(v, dict)}
        over = {**fixed, **values}
        label = variant_label(base, over, base_params, searched)
        out.append(Point(label, {**described, **values}, label,
                         kept_overrides(over, base_params, searched)))
    return out
