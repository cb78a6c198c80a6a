"""Hyperparameter tuning on the validation split with Optuna (TPE), one job per study.

The paper's protocol (Section 4.2): tune on the validation split, retrain with the best
parameters on the whole training part, test. Here:

- a model's search space sits next to its defaults in the config (``models.<label>.search``)::

      search:
        lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # float range (log scale)
        n_layers: {low: 1, high: 3}                    # int range: both bounds are ints
        dim: [32, 64, 128]                             # categorical
        graph.graph_last_n: [20, 50, 100]              # dotted keys reach nested dicts

- a (dataset, model) study is one job (rule ``tune``, ``run_study``): trials 0, 1, ... run one
  after another (TPE learns from the finished ones), trial 0 always the config's defaults, so
  tuning never ends below them on validation. The job's declared output is the study folder
  (``optuna.db``, ``trial<k>.json`` and, for neural models, ``trial<k>/history.csv`` per trial)
  and ``best_params.json``.
- the study runs in ``<study>.partial`` and is renamed to ``<study>`` when every trial has
  finished and best_params.json is written (``finish_study``). Snakemake removes a failed job's outputs, so the partial folder, which it does not
  know about, is what lets an interrupted study resume: a rerun job reads the finished trials back
  from Optuna's SQLite storage and continues at the first unfinished one; a trial left RUNNING by
  a killed job is marked FAIL and asked again. The TPE sampler of trial k is seeded with
  ``seed * 1000 + k``, so a resumed study suggests exactly what an uninterrupted one would; the
  killed attempt's files are removed but its ``checkpoint/`` (``TRIAL_CHECKPOINT``), from which
  the objective resumes the trial where it was killed. A partial study of other
  settings, or older than the job's inputs, is discarded, never resumed.
- a trial fits on the training part before T_valid with early stopping on the validation users,
  and records its validation NDCG@10 and, for neural models, the best epoch: the retraining on
  the whole training part runs exactly that many epochs (``retrain_params``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import TrialState

from recbench.errors import ConfigError, TrainingError
from recbench.io import write_json
from recbench.protocol.studies import apply_overrides, get_nested

log = logging.getLogger(__name__)

#: (trial parameters, folder for the trial's files) -> (validation NDCG@10, facts to keep)
Objective = Callable[[dict, Path], tuple[float, dict]]


def search_order(search: dict | None, params_cls) -> dict:
    """``search`` with its keys in the order the model declares its parameters (the fields of
    ``params_cls``; a dotted key by its first part), ties and undeclared keys by name.

    The order of a study's space is the order in which the sampler draws from its random
    stream, so it decides the suggested values: it must not be the config's key order, which
    carries no meaning (``recbench.canonical``) and arrives sorted.
    """
    import dataclasses

    fields = [f.name for f in dataclasses.fields(params_cls)]
    rank = {name: i for i, name in enumerate(fields)}
    return {k: (search or {})[k] for k in sorted(
        search or {}, key=lambda k: (rank.get(k.split(".")[0], len(fields)), k))}


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


PARTIAL_SUFFIX = ".partial"
#: the folder of a trial's workdir that a killed attempt leaves to the next: the objective's
#: checkpoint (``recbench.protocol.runner.validate_params``), so a rerun resumes the trial mid-training
TRIAL_CHECKPOINT = "checkpoint"


def _study(storage: Path, sampler_seed: int, startup_trials: int) -> optuna.Study:
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup_trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{storage}", study_name="study",
                               direction="maximize", sampler=sampler, load_if_exists=True)


def _open_partial(work: Path, settings: dict, inputs: Sequence[str | Path]) -> None:
    """Keep ``work`` (an interrupted study) only if it was run with ``settings`` after every
    input was written; otherwise start it afresh."""
    storage = work / "optuna.db"
    if storage.exists():
        attrs = optuna.load_study(study_name="study", storage=f"sqlite:///{storage}").user_attrs
        newer = [str(f) for f in inputs if Path(f).stat().st_mtime > attrs.get("created", 0)]
        if attrs.get("settings") != settings or newer:
            why = f"inputs {newer} are newer" if newer else "its settings differ from this job's"
            log.warning("discarding the interrupted study in %s: %s", work, why)
            shutil.rmtree(work)
        else:
            log.info("resuming the interrupted study in %s", work)
    elif work.exists():
        shutil.rmtree(work)  # killed before its storage existed
    if not storage.exists():
        work.mkdir(parents=True)
        study = _study(storage, 0, 1)
        study.set_user_attr("settings", settings)
        study.set_user_attr("created", time.time())


def run_study(
    n_trials: int,
    objective: Objective,
    params: dict,
    search: dict | None,
    *,
    out: str | Path,
    seed: int = 0,
    startup_trials: int = 5,
    settings: dict | None = None,
    inputs: Sequence[str | Path] = (),
) -> list[dict]:
    """Run trials 0 .. ``n_trials - 1`` of a study in ``<out>.partial`` (``finish_study`` renames
    it ``out``).

    ``objective(trial_params, workdir)`` fits and validates a model with the full parameters of
    the trial (``params`` with the suggested values applied), writing its files (history.csv)
    to ``workdir``, and returns (value, facts). ``settings`` (JSON-able: everything a trial's
    outcome depends on besides ``inputs``) decides whether an interrupted study may be resumed.
    Returns the trial records (also written as ``trial<k>.json``).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} already holds a study; remove it (Snakemake does so before "
                            "it reruns the job) to tune again")
    space = distributions(search)
    defaults = defaults_in_space(params, space, "search")
    work = out.with_name(out.name + PARTIAL_SUFFIX)
    settings = json.loads(json.dumps({"params": params, "search": search or {}, "seed": seed,
                                      "startup_trials": startup_trials, **(settings or {})}))
    _open_partial(work, settings, inputs)
    return [_trial(k, objective, params, space, defaults, work, seed, startup_trials)
            for k in range(n_trials)]


def finish_study(out: str | Path) -> None:
    """Rename the finished ``<out>.partial`` to ``out``: call it after writing every other output
    of the job, so that a job killed before its end still leaves the study to resume."""
    out = Path(out)
    if out.exists():
        out.rmdir()  # an empty folder (e.g. made by the workflow engine)
    os.replace(out.with_name(out.name + PARTIAL_SUFFIX), out)


def _trial(k: int, objective: Objective, params: dict, space: dict, defaults: dict, work: Path,
           seed: int, startup_trials: int) -> dict:
    """Run (or read back) trial ``k`` of the study in ``work``; write ``trial<k>.json``."""
    study = _study(work / "optuna.db", seed * 1000 + k, startup_trials)
    trials = study.get_trials(deepcopy=False)
    for stale in trials:
        if stale.state == TrialState.RUNNING:
            log.warning("trial %d was left running by a killed job: marked failed",
                        stale.user_attrs.get("job", stale.number))
            study.tell(stale.number, state=TrialState.FAIL)
    done = [t for t in trials if t.user_attrs.get("job") == k and (
        t.state == TrialState.COMPLETE or "error" in t.user_attrs)]
    workdir = work / f"trial{k}"
    if done:
        log.info("trial %d finished before the job was interrupted: read back", k)
        record = _record(k, done[0], workdir)
    else:
        if workdir.exists():  # the files of a killed attempt, but its checkpoint
            for path in workdir.iterdir():
                if path.is_dir() and path.name != TRIAL_CHECKPOINT:
                    shutil.rmtree(path)
                elif not path.is_dir():
                    path.unlink()
        if k == 0 and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.enqueue_trial(defaults, skip_if_exists=False)
        trial = study.ask(space)
        trial.set_user_attr("job", k)
        suggested = dict(trial.params)
        trial_params = apply_overrides(params, suggested)
        trial.set_user_attr("full_params", trial_params)
        log.info("trial %d: %s", k, suggested or "(the defaults; nothing to search)")
        workdir.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        try:
            value, facts = objective(trial_params, workdir)
        except TrainingError as err:  # a diverging setting is an outcome, not a crash
            log.error("trial %d failed: %s", k, err)
            trial.set_user_attr("error", str(err))
            study.tell(trial, state=TrialState.FAIL)
        else:
            if not math.isfinite(value):
                raise TrainingError(f"trial {k}: the objective returned {value}")
            trial.set_user_attr("facts", facts)
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            study.tell(trial, value)
        record = _record(k, study.trials[trial.number], workdir)
    if not done or not (work / f"trial{k}.json").exists():  # a finished trial's file is kept
        write_json(record, work / f"trial{k}.json")
    return record


def _record(k: int, trial: optuna.trial.FrozenTrial, workdir: Path) -> dict:
    history = workdir / "history.csv"
    record = {"trial": k, "optuna_number": trial.number, "params": dict(trial.params),
              "full_params": trial.user_attrs["full_params"], "value": trial.value,
              "seconds": trial.user_attrs.get("seconds"),
              # relative to the study folder (the job's declared output)
              "history": f"{workdir.name}/{history.name}" if history.exists() else None,
              **trial.user_attrs.get("facts", {})}
    if "error" in trial.user_attrs:
        record["error"] = trial.user_attrs["error"]
    return record


def select_best(trials: list[dict], model_class: str) -> dict:
    """The best of a study's trial records (highest validation NDCG@10; ties: the earlier trial)
    as best_params.json."""
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
        "history": best.get("history"),  # in the study folder: Figure 2 plots it
        "valid_ndcg@10": best["value"],
        "default_valid_ndcg@10": next((t["value"] for t in trials if t["trial"] == 0), None),
        "trials": [{"trial": t["trial"], "value": t.get("value"), "params": t["params"]}
                   for t in trials],
    }


def retrain_params(best: dict) -> dict:
    """Parameters of the final fit on the whole training part: a neural model trains exactly
    the best epoch count found on validation (no validation, so no early stopping). The trial's
    ``best_epoch`` is the model's own (``model.best_epoch``), in the units of its ``epochs``
    parameter: CREATE's counts joint epochs, so the retraining runs its warm-up and then exactly
    that many joint epochs."""
    params = dict(best["params"])
    if best.get("best_epoch") is not None:
        params["epochs"] = int(best["best_epoch"])
    return params
