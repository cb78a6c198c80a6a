"""The one registry of models: each name maps to its torch-free Params and the class that
implements it, which is imported only when the model is built.

- ``@declare("Name", "package.module:Class")`` on a Params dataclass in a model package's
  torch-free ``params`` module (``baselines/params.py``, ``create_model/params.py``). The
  workflow plans and checks a config from these alone, without importing torch or model code.
- ``@recbench.models.register("Name")`` on the model class, which says ``Params = NameParams``.
  Registration checks that class and declaration agree.
- A model may skip the declaration and keep its ``Params`` in its own class: a new baseline can
  be one module with ``@register``. Its name is found by importing the model packages' modules
  (``discover``), which imports torch.

``params_class`` and ``model_class`` are the two lookups. A name that is neither declared nor
registered is a ``ConfigError`` listing the known ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from recbench.errors import ConfigError

#: the packages whose modules hold models and whose ``params`` module declares their Params
MODEL_PACKAGES = ("baselines", "create_model")


@dataclass
class Entry:
    """What the registry knows of one model name."""

    params: type | None = None  # the declared torch-free Params (None: the class's own)
    target: str | None = None  # "module:Class" that implements it (declared models)
    cls: type | None = None  # the class, once its module is imported (``register``)


#: model name -> its entry
ENTRIES: dict[str, Entry] = {}


def declare(name: str, target: str):
    """Class decorator on a Params dataclass: the Params of the model ``name``, implemented by
    ``target`` ("module:Class")."""
    if target.count(":") != 1:
        raise ValueError(f"declare({name!r}, {target!r}): the target is 'module:Class'")

    def deco(params_cls):
        entry = ENTRIES.setdefault(name, Entry())
        if entry.params is not None and entry.params is not params_cls:
            raise ConfigError(f"model name {name!r} has its Params declared twice "
                              f"({entry.params.__module__} and {params_cls.__module__})")
        entry.params, entry.target = params_cls, target
        params_cls.model_name = name
        return params_cls

    return deco


def add_class(name: str, cls: type) -> None:
    """Record ``cls`` as the model ``name`` (``recbench.models.register`` calls this)."""
    declarations()
    entry = ENTRIES.setdefault(name, Entry())
    if entry.cls is not None and entry.cls is not cls:
        raise ConfigError(f"model name {name!r} is registered twice "
                          f"({entry.cls.__module__} and {cls.__module__})")
    if entry.params is not None and cls.Params is not entry.params:
        raise TypeError(f"@register({name!r}): {cls.__name__}.Params must be the Params "
                        f"declared for {name!r} ({entry.params.__module__}."
                        f"{entry.params.__qualname__}): set `Params = "
                        f"{entry.params.__qualname__}`")
    entry.cls = cls


def remove(name: str) -> None:
    """Forget the model ``name`` (a model defined in a test or a notebook)."""
    ENTRIES.pop(name, None)


def declarations() -> dict[str, type]:
    """Every declared Params by model name (imports each model package's torch-free ``params``)."""
    for pkg in MODEL_PACKAGES:
        try:
            importlib.import_module(f"{pkg}.params")
        except ModuleNotFoundError as exc:
            if exc.name not in (pkg, f"{pkg}.params"):
                raise
    return {name: e.params for name, e in ENTRIES.items() if e.params is not None}


def discover() -> dict[str, type]:
    """Import every module of the model packages, so that every ``@register`` has run; returns
    each registered class by name."""
    for pkg_name in MODEL_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError:
            continue
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    return {name: e.cls for name, e in ENTRIES.items() if e.cls is not None}


def known_models() -> set[str]:
    """Names of the declared models and of those registered so far (no model code imported)."""
    declarations()
    return set(ENTRIES)


def _unknown(name: str) -> ConfigError:
    return ConfigError(
        f"unknown model {name!r}; registered models are {sorted(discover())}. Add a module with "
        f"@register({name!r}) to baselines/, or fix the name (or `class:`) in config `models:`.")


def params_class(name: str) -> type:
    """The Params dataclass of the model ``name``: its declaration, else the class's own
    (importing the model code, and torch, to find it)."""
    declared = declarations().get(name)
    return declared if declared is not None else model_class(name).Params


def model_class(name: str) -> type:
    """The class of the model ``name``, importing its module (only that one for a declared
    model; every model module for an undeclared name)."""
    declarations()
    entry = ENTRIES.get(name)
    if entry is not None and entry.cls is None and entry.target is not None:
        module, qualname = entry.target.split(":")
        importlib.import_module(module)
        if entry.cls is None:
            raise ConfigError(f"model {name!r} is declared as {entry.target}, but importing "
                              f"{module} registered no class under that name: add "
                              f"@register({name!r}) to {qualname} there.")
    if entry is None or entry.cls is None:
        discover()
        entry = ENTRIES.get(name)
    if entry is None or entry.cls is None:
        raise _unknown(name)
    return entry.cls
