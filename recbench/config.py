"""Reading the validated Snakemake config: which datasets, which models with which parameters.

``config/schema.yaml`` checks types and ranges when the Snakefile loads; ``check`` adds what a
schema cannot: every model name is registered, every parameter is known to its model, every
dataset source exists. Each failure names the config key and the fix.
"""

from __future__ import annotations

import dataclasses

from recbench import studies, tuning
from recbench.data.sources import source_of
from recbench.data.split import make_split
from recbench.errors import ConfigError
from recbench.models import get_model_class, make_params
from recbench.verdicts import Rules


def dataset_names(config: dict, table2_only: bool = False) -> list[str]:
    """Dataset names; ``table2_only`` drops those marked ``table2: false`` (e.g. a dataset in the
    LOOM protocol, which Table 3 reports)."""
    return [d for d, s in config["datasets"].items() if not table2_only or s.get("table2", True)]


def prepared_name(config: dict, dataset: str) -> str:
    """The dataset whose prepared log this one splits (``prepared_from:``, else itself)."""
    return dataset_spec(config, dataset).get("prepared_from") or dataset


def split_config(config: dict, dataset: str) -> dict:
    """The dataset's own ``split:`` section if it has one (it replaces the global one whole,
    since each protocol has its own keys), else the global ``split:``."""
    return dict(dataset_spec(config, dataset).get("split") or config["split"])


def dataset_spec(config: dict, dataset: str) -> dict:
    if dataset not in config["datasets"]:
        raise ConfigError(
            f"unknown dataset {dataset!r}; the config defines {sorted(config['datasets'])}. "
            "Fix the target path, or add the dataset under `datasets:`."
        )
    return config["datasets"][dataset]


def model_names(config: dict, dataset: str | None = None) -> list[str]:
    """Model labels of the config, less those the dataset excludes."""
    names = list(config["models"])
    if dataset is not None:
        excluded = set(config["datasets"][dataset].get("exclude_models", []))
        names = [m for m in names if m not in excluded]
    return names


def model_spec(config: dict, dataset: str, model: str) -> tuple[str, dict]:
    """(registered class name, parameters) of a model label on a dataset.

    Parameters are the model entry's ``params`` updated by the dataset's ``model_params[label]``
    (nested dicts such as CREATE's ``graph`` merge key by key).
    A variant label ``BASE~key=value~...`` (an ablation point, see recbench/studies.py) is the
    base label's spec with the overrides applied.
    """
    base, overrides = studies.parse_label(model)
    if overrides:
        cls_name, params = model_spec(config, dataset, base)
        return cls_name, studies.apply_overrides(params, variant_overrides(config, dataset, model),
                                                 model)
    entry = _entry(config, model)
    params = dict(entry.get("params") or {})
    dataset_params = (dataset_spec(config, dataset).get("model_params") or {}).get(model) or {}
    return entry.get("class", model), deep_merge(params, dataset_params)


def variant_overrides(config: dict, dataset: str, model: str) -> dict:
    """The overrides a variant label stands for: those it spells out, or, for a label that
    names them by a digest (``studies.MAX_LABEL_BYTES``), those of the config's study point on
    ``dataset`` with that label."""
    base, overrides = studies.parse_label(model)
    if studies.DIGEST not in overrides:
        return overrides
    for name in config.get("studies") or {}:
        if dataset in studies.study_datasets(config, name):
            for point in study_points(config, name, dataset):
                if point.label == model:
                    return point.overrides
    raise ConfigError(f"model {model!r} names its overrides by a digest, but no study of the "
                      f"config has that point on {dataset!r}: the study's variants changed "
                      "since that label was made; use a label of the current config.")


def _entry(config: dict, model: str) -> dict:
    if model not in config["models"]:
        raise ConfigError(f"model {model!r} is not in config `models:` ({sorted(config['models'])})")
    return config["models"][model] or {}


def deep_merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``; nested dicts merge key by key instead of being replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def model_search(config: dict, model: str) -> dict:
    """The search space of a model label (``models.<label>.search``); none for an ablation
    variant, which keeps its base's tuned parameters and only has its epoch count validated."""
    base, overrides = studies.parse_label(model)
    if overrides:
        return {}
    return dict(_entry(config, base).get("search") or {})


def n_trials(config: dict, model: str) -> int:
    """Tuning trials of a label: 1 (the defaults) without a search space, else the model's
    ``trials`` or the config's ``tuning.trials``."""
    if not model_search(config, model):
        return 1
    entry = _entry(config, studies.parse_label(model)[0])
    return int(entry.get("trials") or config["tuning"]["trials"])


def model_uses_gpu(config: dict, model: str) -> bool:
    base = studies.parse_label(model)[0]
    return bool(get_model_class(_entry(config, base).get("class", base)).uses_gpu)


def check(config: dict) -> None:
    """Fail at workflow start, before any job, on a config a schema cannot catch."""
    if not config.get("datasets"):
        raise ConfigError("config has no `datasets:`; add at least one (see config/config.yaml).")
    if not config.get("models"):
        raise ConfigError("config has no `models:`; add at least one (see config/config.yaml).")
    for name, spec in config["datasets"].items():
        if spec.get("prepared_from"):
            origin = spec["prepared_from"]
            if origin not in config["datasets"] or config["datasets"][origin].get("prepared_from"):
                raise ConfigError(f"datasets.{name}.prepared_from: {origin!r} must be a dataset "
                                  "of `datasets:` with a source of its own.")
        else:
            source_of(name, spec)
        make_split(split_config(config, name))
        unknown = set(spec.get("exclude_models", [])) | set(spec.get("model_params") or {})
        unknown -= set(config["models"])
        if unknown:
            raise ConfigError(
                f"datasets.{name} names model(s) {sorted(unknown)} that are not in `models:`."
            )
        for model in model_names(config, name):
            cls_name, params = model_spec(config, name, model)
            make_params(get_model_class(cls_name), params, model)
            space = tuning.distributions(model_search(config, model), f"models.{model}.search")
            defaults = tuning.defaults_in_space(params, space, f"models.{model}.search")
            for key, value in defaults.items():  # every value of the space must be usable too
                for probe in _probes(space[key]):
                    make_params(get_model_class(cls_name),
                                studies.apply_overrides(params, {key: probe}),
                                f"{model} (search {key}={probe!r})")
    check_table3(config)
    Rules.from_config(config.get("reproduction"))
    for name, spec in (config.get("studies") or {}).items():
        if name not in studies.STUDIES:
            raise ConfigError(f"studies.{name}: unknown study; the reports know "
                              f"{sorted(studies.STUDIES)}.")
        for label in [spec["base"], *(spec.get("include") or [])]:
            if label not in config["models"]:
                raise ConfigError(f"studies.{name} names model {label!r}, which is not in "
                                  "`models:`; add it there or fix the name.")
        reference = (config.get("significance") or {}).get("reference")  # schema default
        if name in studies.VARIANT_STUDIES and reference and reference not in (
                spec.get("include") or []):
            raise ConfigError(f"studies.{name}.include must hold {reference!r} "
                              "(significance.reference): the report compares every point with it.")
        for dataset in spec.get("datasets") or []:
            if dataset not in config["datasets"]:
                raise ConfigError(f"studies.{name}.datasets: {dataset!r} is not in `datasets:`.")
            for point in study_points(config, name, dataset):
                cls_name, params = model_spec(config, dataset, point.label)
                make_params(get_model_class(cls_name), params, f"studies.{name}: {point.label}")


def table3(config: dict) -> dict:
    if not config.get("table3"):
        raise ConfigError("the config has no `table3:` section, which results/table3.md needs; "
                          "add it (config/config.yaml and config/paper.yaml have one).")
    return config["table3"]


def check_table3(config: dict) -> None:
    t3 = config.get("table3")
    if not t3:
        return
    for paper_name, dataset in t3["datasets"].items():
        if dataset not in config["datasets"]:
            raise ConfigError(f"table3.datasets.{paper_name}: {dataset!r} is not in `datasets:`.")
    for loom, own in (t3.get("bridge") or {}).items():
        if loom not in t3["datasets"].values() or own not in config["datasets"]:
            raise ConfigError(f"table3.bridge: {loom!r} -> {own!r} must map a table3 dataset to "
                              "a dataset of `datasets:` in the paper's own protocol.")
    for model in t3["models"]:
        _entry(config, model)


def study_points(config: dict, name: str, dataset: str) -> list[studies.Point]:
    """The points (model labels) of an ablation study on a dataset."""
    cls_name, params = model_spec(config, dataset, studies.study(config, name)["base"])
    # the base's full parameters, defaults included, so a point equal to the base shares its jobs
    resolved = {**dataclasses.asdict(make_params(get_model_class(cls_name), params)), **params}
    base = studies.study(config, name)["base"]
    return studies.points(config, name, dataset, resolved, set(model_search(config, base)))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} but no CUDA GPU is visible; use `device: auto` or cpu.")
    return device


def _probes(dist) -> list:
    """The values at the edges of a search distribution (all choices of a categorical one)."""
    return list(getattr(dist, "choices", None) or (dist.low, dist.high))
