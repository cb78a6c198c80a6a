"""Reading the validated Snakemake config: which datasets, which models with which parameters.

``config/schema.yaml`` checks types and ranges when the Snakefile loads; ``check`` adds what a
schema cannot: every model name is registered, every parameter is known to its model, every
dataset source exists. Each failure names the config key and the fix.
"""

from __future__ import annotations

from recbench.data.sources import source_of
from recbench.errors import ConfigError
from recbench.models import get_model_class, make_params


def dataset_names(config: dict) -> list[str]:
    return list(config["datasets"])


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

    Parameters are the model entry's ``params`` updated by the dataset's ``model_params[label]``.
    """
    if model not in config["models"]:
        raise ConfigError(f"model {model!r} is not in config `models:` ({sorted(config['models'])})")
    entry = config["models"][model] or {}
    params = dict(entry.get("params") or {})
    params.update((dataset_spec(config, dataset).get("model_params") or {}).get(model) or {})
    return entry.get("class", model), params


def model_uses_gpu(config: dict, model: str) -> bool:
    entry = config["models"][model] or {}
    return bool(get_model_class(entry.get("class", model)).uses_gpu)


def check(config: dict) -> None:
    """Fail at workflow start, before any job, on a config a schema cannot catch."""
    if not config.get("datasets"):
        raise ConfigError("config has no `datasets:`; add at least one (see config/config.yaml).")
    if not config.get("models"):
        raise ConfigError("config has no `models:`; add at least one (see config/config.yaml).")
    for name, spec in config["datasets"].items():
        source_of(name, spec)
        unknown = set(spec.get("exclude_models", [])) | set(spec.get("model_params") or {})
        unknown -= set(config["models"])
        if unknown:
            raise ConfigError(
                f"datasets.{name} names model(s) {sorted(unknown)} that are not in `models:`."
            )
        for model in model_names(config, name):
            cls_name, params = model_spec(config, name, model)
            make_params(get_model_class(cls_name), params, model)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} but no CUDA GPU is visible; use `device: auto` or cpu.")
    return device
