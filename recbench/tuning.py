"""Hyperparameter tuning on the validation split with Optuna (TPE), one trial per job.

The paper's protocol (Section 4.2): tune on the validation split, retrain with the best
parameters on the whole training part, test. Here:

- a model's search space sits next to its defaults in the config (``models.<label>.search``)::

      search:
        lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # float range (log scale)
        n_layers: {low: 1, high: 3}                    # int range: both bounds are ints
        dim: [32, 64, 128]                             # categorical
        graph.graph_last_n: [20, 50, 100]              # dotted keys reach nested dicts

- trial k is its own job (rule ``tune_trial``) and runs after trial k-1, so a cluster spreads the
  (dataset, model) chains over nodes and an interrupted tuning resumes at the first unfinished
  trial. Trial 0 is always the config's defaults, so tuning never ends below them on validation.
- the study lives in Optuna's SQLite storage next to the trial files; a trial that finished in the
  storage but whose job died before writing its file is read back, not rerun; a trial left
  RUNNING by a killed job is marked FAIL. The TPE sampler of trial k is seeded with
  ``seed * 1000 + k``, so a resumed run suggests exactly what an uninterrupted one would.
- a trial fits on the training part before T_valid with early stopping on the validation users,
  and records its validation NDCG@10 and, for neural models, the best epoch: the retraining on
  the whole training part runs exactly that many epochs (``retrain_params``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import TrialState

from recbench.errors import ConfigError, TrainingError
from recbench.io import write_json
from recbench.provenance import canonical_json, sha256_file, source_fingerprint
from recbench.studies import apply_overrides, get_nested

log = logging.getLogger(__name__)

#: what an objective returns: (validation NDCG@10, extra facts to keep with the trial)
Objective = Callable[[dict], tuple[float, dict]]


def distributions(search: dict | None, where: str = "search") -> dict[str, BaseDistribution]:
    """Optuna distributions from a config search space; a bad entry names its key."""
    out = {}
    for key, spec in (search or {}).items():
        if isinstance(spec, list):
            if not spec:
                raise ConfigError(f"{where}.{key}: an empty list of choices")
            out[key] = CategoricalDistribution(spec)
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec):
            low, high, use_log = spec["low"], spec["high"], bool(spec.get("log", False))
            if not low < high:
                raise ConfigError(f"{where}.{key}: low ({low}) must be below high ({high})")
            if use_log and low <= 0:
                raise ConfigError(f"{where}.{key}: a log scale needs low > 0, got {low}")
            if isinstance(low, int) and isinstance(high, int) and not spec.get("float", False):
                out[key] = IntDistribution(low, high, log=use_log)
            else:
                out[key] = FloatDistribution(float(low), float(high), log=use_log)
        else:
            raise ConfigError(f"{where}.{key}: give a list of choices or {{low:, high:, log:}}, "
                              f"got {spec!r}")
    return out


def defaults_in_space(params: dict, space: dict[str, BaseDistribution], where: str) -> dict:
    """The config's values of the searched keys; each must lie inside its distribution."""
    values = {}
    for key, dist in space.items():
        value = get_nested(params, key)
        if value is None and not isinstance(dist, CategoricalDistribution):
            raise ConfigError(f"{where}.{key}: the search needs a default value in `params:` "
                              "(trial 0 runs the defaults)")
        if isinstance(dist, CategoricalDistribution):
            ok = value in dist.choices
        else:
            ok = dist.low <= value <= dist.high
        if not ok:
            raise ConfigError(f"{where}.{key}: the default {value!r} lies outside the search "
                              f"space {dist}; widen the space or change the default")
        values[key] = value
    return values


def _study(storage: Path, name: str, sampler_seed: int, startup_trials: int) -> optuna.Study:
    storage.parent.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup_trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{storage}", study_name=name,
                               direction="maximize", sampler=sampler, load_if_exists=True)


def run_trial(
    k: int,
    objective: Objective,
    params: dict,
    search: dict | None,
    *,
    storage: str | Path,
    study_name: str,
    out: str | Path,
    seed: int = 0,
    startup_trials: int = 5,
    key: str = "",
) -> dict:
    """Run (or read back) trial ``k`` of a study and write its record to ``out`` (JSON).

    ``objective(trial_params)`` fits and validates a model with the full parameters of the trial
    (``params`` with the suggested values applied) and returns (value, facts). ``key``
    (``study_key``) names the study together with ``study_name``: a trial is read back only from a
    study of the same parameters, search space, data and code, never from a stale one.
    """
    space = distributions(search)
    defaults = defaults_in_space(params, space, "search")
    name = f"{study_name}@{key}" if key else study_name
    study = _study(Path(storage), name, seed * 1000 + k, startup_trials)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        if stale.state == TrialState.RUNNING:
            log.warning("trial %d was left running by a killed job: marked failed", stale.number)
            study.tell(stale.number, state=TrialState.FAIL)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("job") == k]
    if done:
        log.info("trial %d finished in the study before its job died: read back", k)
        record = _record(k, done[0])
    else:
        if k == 0:
            study.enqueue_trial(defaults, skip_if_exists=False)
        trial = study.ask(space)
        trial.set_user_attr("job", k)
        suggested = dict(trial.params)
        trial_params = apply_overrides(params, suggested)
        trial.set_user_attr("full_params", trial_params)
        log.info("trial %d: %s", k, suggested or "(the defaults; nothing to search)")
        t0 = time.perf_counter()
        try:
            value, facts = objective(trial_params)
        except TrainingError as err:  # a diverging setting is an outcome, not a crash
            log.error("trial %d failed: %s", k, err)
            trial.set_user_attr("error", str(err))
            study.tell(trial, state=TrialState.FAIL)
            record = {"trial": k, "params": suggested, "full_params": trial_params, "value": None,
                      "error": str(err)}
        else:
            if not math.isfinite(value):
                raise TrainingError(f"trial {k}: the objective returned {value}")
            trial.set_user_attr("facts", facts)
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            study.tell(trial, value)
            record = _record(k, study.trials[trial.number])
    write_json(record, out)
    return record


def study_key(*parts, files: Sequence[str | Path] = ()) -> str:
    """A fingerprint of everything a trial's outcome depends on: ``parts`` (parameters, search
    space, tuning and evaluation settings; JSON-able), the content of ``files`` (the split) and
    the project's source code. A config, data or code change starts a new study in the same
    storage, so that a rerun job never reads back a trial of the old setting."""
    h = hashlib.sha256(canonical_json(list(parts)).encode())
    for f in files:
        h.update(sha256_file(f).encode())
    h.update(source_fingerprint().encode())
    return h.hexdigest()[:16]


def _record(k: int, trial: optuna.trial.FrozenTrial) -> dict:
    return {"trial": k, "optuna_number": trial.number, "params": dict(trial.params),
            "full_params": trial.user_attrs["full_params"], "value": trial.value,
            "seconds": trial.user_attrs.get("seconds"), **trial.user_attrs.get("facts", {})}


def select_best(trial_files: list[str | Path], model_class: str) -> dict:
    """The best trial (highest validation NDCG@10; ties: the earlier trial) as best_params.json."""
    trials = [json.loads(Path(f).read_text()) for f in trial_files]
    ok = [t for t in trials if t.get("value") is not None]
    if not ok:
        raise TrainingError(f"every tuning trial failed ({[t.get('error') for t in trials]}); "
                            "check the search space and the log of trial 0 (the defaults)")
    best = max(ok, key=lambda t: (t["value"], -t["trial"]))
    return {
        "model_class": model_class,
        "params": best["full_params"],
        "tuned": best["params"],
        "best_trial": best["trial"],
        "best_epoch": best.get("best_epoch"),
        "valid_ndcg@10": best["value"],
        "default_valid_ndcg@10": next((t["value"] for t in trials if t["trial"] == 0), None),
        "trials": [{"trial": t["trial"], "value": t.get("value"), "params": t["params"]}
                   for t in trials],
    }


def retrain_params(best: dict) -> dict:
    """Parameters of the final fit on the whole training part: a neural model trains exactly
    the best epoch count found on validation (no validation, so no early stopping)."""
    params = dict(best["params"])
    if best.get("best_epoch") is not None:
        params["epochs"] = int(best["best_epoch"])
    return params
