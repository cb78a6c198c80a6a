"""Reading the validated Snakemake config: which datasets, which models with which parameters.

``validate`` types ``--config`` values by ``config/schema.yaml``, checks types and ranges against
it and fills its defaults when the workflow loads; ``check`` adds what a schema cannot: every
model name is registered, every model's parameters are valid by its Params (built by
``recbench.params.make_params``, as the job will build them; each distinct mapping once,
``built_params``), every dataset source exists. Each failure names the config key and the fix,
in a few lines. ``run_name`` tells the default run
(whose reports are the committed ones under results/) from any other.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import yaml

from recbench.canonical import canonical
from recbench.protocol import reading_selection, studies, tuning
from recbench.data.sources import source_of
from recbench.data.split import make_split
from recbench.errors import ConfigError
from recbench.params import make_params, uses_gpu
from recbench.registry import params_class
from recbench.protocol.verdicts import Rules


#: JSON schema type -> the Python types a YAML value of it has (bool is no number)
_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
               "null": type(None), "array": list, "object": dict}
#: a run name or dataset name: one folder name
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: dataset names that would collide with report folders (results/runs/<run>/, results/figures/)
RESERVED_NAMES = ("runs", "figures")
#: errors listed by a failed validation, at most
SHOWN_ERRORS = 3
#: the Params planning has built: (Params class, the mapping's text) -> Params (``built_params``)
_BUILT: dict[tuple[type, str], object] = {}


def _has_type(value, types: list[str]) -> bool:
    return any(isinstance(value, _JSON_TYPES[t]) and not (isinstance(value, bool) and t in (
        "integer", "number")) for t in types)


def typed(value, schema: dict | bool | None):
    """A ``--config`` value typed as ``schema`` says.

    Snakemake (9.27) reads ``--config key=value`` with YAML's base loader inside lists and
    mappings, and a scalar that is not a number as text: ``seeds=[0]`` arrives as ``['0']``,
    ``tuning={trials: 5}`` as ``{'trials': '5'}``, ``flag=true`` as ``'true'``. Each such text is
    read as YAML and kept where the schema allows the result's type (``'5'`` for an integer,
    ``'null'`` for a nullable one, never for a string key, where ``'0123'`` stays text); where the
    schema says nothing (a model's ``params``) it is what YAML makes of it, as in a config file.
    A dotted key (``evaluation.filter_seen=true``) never reaches the workflow: Snakemake's command
    line refuses it; ``evaluation={filter_seen: true}`` is the nested form."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: typed(v, props.get(k, extra)) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v, schema.get("items")) for v in value]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if not isinstance(value, str) or "string" in types:
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str) and "number" in types:  # YAML 1.1 reads 1e-3 as text
        try:
            parsed = float(value)
        except ValueError:
            pass
    return parsed if not types or _has_type(parsed, types) else value


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _problem(error) -> str:
    """One line of a schema violation: the key's dotted path, what is wrong, what is allowed."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    kind, expected = error.validator, error.validator_value
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        what = f"unknown key(s) {unknown}" + (f"; the keys here are {known}" if known else "")
    elif kind == "type":
        what = f"{_short(error.instance)} is not of type {expected!r}"
    elif kind == "enum":
        what = f"{_short(error.instance)} is not one of {expected}"
    else:
        what = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where}: {what}"


def validate(config: dict, overrides: dict | None, schema_path: str | os.PathLike) -> None:
    """Type the ``--config`` ``overrides`` by the schema (``typed``) into ``config``, validate it
    and fill the schema's defaults, in place. A violation raises ``ConfigError`` naming each key
    (at most ``SHOWN_ERRORS``), never the schema."""
    import jsonschema
    from snakemake.utils import validate as fill_defaults

    schema = yaml.safe_load(Path(schema_path).read_text())
    config.update(studies.deep_merge(config, typed(overrides or {}, schema)))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = [f"  {_problem(e)}" for e in errors[:SHOWN_ERRORS]]
        more = (f"\n  ... and {len(errors) - SHOWN_ERRORS} more"
                if len(errors) > SHOWN_ERRORS else "")
        raise ConfigError(
            f"the config does not fit {Path(schema_path).name} ({len(errors)} problem"
            f"{'s' * (len(errors) > 1)}):\n" + "\n".join(shown) + more + "\nFix the key(s) in "
            "the config file or the --config value (lists: seeds=[0]; nested keys: "
            "\"evaluation={filter_seen: true}\")."
        )
    fill_defaults(config, str(schema_path))


def load_validated(path: str | os.PathLike, schema_path: str | os.PathLike) -> dict:
    """A config file as the workflow sees it: validated, the schema's defaults filled."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    validate(config, None, schema_path)
    return config


def run_name(config: dict, default: dict, configfiles, default_file) -> str | None:
    """None for the default run: ``config`` equals ``default`` (config/config.yaml, as
    ``load_validated`` reads it), ``tracking`` aside (where runs are logged changes no result);
    its reports are the committed ones under results/. Any other
    run is named by the config's ``run:``, else the stem of its last config file other than the
    default one (``paper`` for config/paper.yaml), else ``custom`` (the default config changed by
    ``--config``); its reports go to results/runs/<name>/."""
    untracked = {k: v for k, v in config.items() if k != "tracking"}
    if untracked == {k: v for k, v in default.items() if k != "tracking"}:
        return None
    default_file = Path(default_file).resolve()
    files = [Path(f) for f in configfiles or [] if Path(f).resolve() != default_file]
    name = config.get("run") or (files[-1].stem if files else "custom")
    if not NAME.fullmatch(name):
        raise ConfigError(f"this run's name {name!r} (the config file's name) is not a plain "
                          "folder name; name the run with `run: <name>` in the config.")
    return name


def custom_file(config: dict, dataset: str) -> str:
    """A custom dataset's own file, which must exist when the workflow plans its jobs."""
    path = dataset_spec(config, dataset)["path"]
    if not Path(path).is_file():
        where = "" if Path(path).is_absolute() else f" (relative to {os.getcwd()})"
        raise ConfigError(f"datasets.{dataset}.path: {path}{where} does not exist or is not a "
                          "file. Fix the dataset's `path:`, or remove the dataset.")
    return path


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


def candidate_spec(config: dict, dataset: str, model: str, candidate: str) -> tuple[str, dict]:
    """(class name, parameters) of one reading candidate of a model on a dataset: the model's
    spec with the candidate's overrides (recbench/protocol/reading_selection.py)."""
    candidates = reading_selection.selection(config, model) or {}
    if candidate not in candidates:
        raise ConfigError(f"{model!r} has no reading candidate {candidate!r} in the config "
                          f"(models.{model}.readings.candidates: {sorted(candidates)}).")
    cls_name, params = model_spec(config, dataset, model)
    return cls_name, studies.apply_overrides(params, candidates[candidate], candidate)


def model_spec(config: dict, dataset: str, model: str) -> tuple[str, dict]:
    """(registered class name, parameters) of a model label on a dataset.

    Parameters are the model entry's ``params`` updated by the dataset's ``model_params[label]``
    (nested dicts such as CREATE's ``graph`` merge key by key).
    A variant label ``BASE~key=value~...`` (an ablation point, see recbench/protocol/studies.py) is the
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
    return entry.get("class", model), studies.deep_merge(params, dataset_params)


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
    return uses_gpu(params_class(_entry(config, base).get("class", base)))


def built_params(cls_name: str, params: dict, label: str, note: str = ""):
    """The Params of the model class ``cls_name`` from the mapping ``params``, by
    ``make_params`` (as the job that fits it will build them), once per distinct mapping in
    this process: planning meets one mapping many times (a study point equal to its base, the
    rules' input functions asking for a study's points). A refusal names ``models.<label>``
    and, in parentheses, ``note`` (where the mapping came from). The Params returned are
    shared: read them, never change them."""
    params_cls = params_class(cls_name)
    key = (params_cls, repr(canonical(params)))
    if key not in _BUILT:
        try:
            _BUILT[key] = make_params(params_cls, params, label)
        except ConfigError as exc:
            if not note:
                raise
            raise ConfigError(f"{exc} ({note})") from exc
    return _BUILT[key]


def check(config: dict) -> None:
    """Fail at workflow start, before any job, on a config a schema cannot catch."""
    if not config.get("datasets"):
        raise ConfigError("config has no `datasets:`; add at least one (see config/config.yaml).")
    if not config.get("models"):
        raise ConfigError("config has no `models:`; add at least one (see config/config.yaml).")
    for model in config["models"]:
        reading_selection.check(config, model)
    ks = config.get("evaluation", {}).get("ks", [10, 100])
    if not {10, 100} <= set(ks):
        raise ConfigError(f"evaluation.ks is {ks}: it must include 10 and 100, the paper's "
                          "cut-offs, which every report reads; add others beside them.")
    for name, spec in config["datasets"].items():
        if name in RESERVED_NAMES:
            raise ConfigError(f"datasets.{name}: the name is reserved (results/{name}/ holds "
                              "reports); rename the dataset.")
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
            built_params(cls_name, params, model,
                         f"with datasets.{name}.model_params.{model}"
                         if model in (spec.get("model_params") or {}) else "")
            space = tuning.distributions(model_search(config, model), f"models.{model}.search")
            defaults = tuning.defaults_in_space(params, space, f"models.{model}.search")
            for key, value in defaults.items():  # every value of the space must be usable too
                for probe in _probes(space[key]):
                    built_params(cls_name, studies.apply_overrides(params, {key: probe}), model,
                                 f"{probe!r} is an end of models.{model}.search.{key}: "
                                 "narrow the search")
            # every reading candidate is a usable starting point of the same search
            for candidate_name, over in (reading_selection.selection(config, model) or {}).items():
                where = f"models.{model}.readings.candidates.{candidate_name}"
                candidate = studies.apply_overrides(params, over, where)
                built_params(cls_name, candidate, model, f"with {where}")
                tuning.defaults_in_space(candidate, space, where)
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
                built_params(cls_name, params, studies.parse_label(point.label)[0],
                             f"the point {point.label} of studies.{name} on {dataset}: "
                             "fix its grid or set")


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
    base = studies.study(config, name)["base"]
    cls_name, params = model_spec(config, dataset, base)
    # the base's full parameters, defaults included, so a point equal to the base shares its jobs
    resolved = {**dataclasses.asdict(built_params(cls_name, params, base)), **params}
    # a key the base tunes, or one its reading selection may set, stays in a point's label even
    # where it equals the config's value: the base's tuned (chosen) value may differ
    kept = set(model_search(config, base)) | reading_selection.candidate_keys(config, base)
    return studies.points(config, name, dataset, resolved, kept)


def _probes(dist) -> list:
    """The values at the edges of a search distribution (all choices of a categorical one)."""
    return list(getattr(dist, "choices", None) or (dist.low, dist.high))
