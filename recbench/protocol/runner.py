"""The two kinds of training job of the protocol (paper Section 4.2).

- ``validate_params``: one tuning trial, fit on the training part before T_valid (early stopping
  on the validation users for neural models), return validation NDCG@10 and the best epoch;
- ``fit_final``: the final fit of one seed on the whole training part with the tuned
  parameters (``recbench.protocol.tuning.retrain_params``: a fixed epoch count, no validation), saved as
  a model folder (``recbench.artefacts``);
- ``evaluate_saved``: that saved model evaluated on the test users (``train_and_evaluate``
  does both in one call).

Every entry point takes one ``RunOptions``: the seed, the device, the evaluation protocol and
batch, where the model's files go, and ``checkpoint_dir``, where a neural model's fit checkpoints
every ``checkpoint_every`` epochs and on SIGTERM (``recbench.checkpoints``) and resumes from (the
folder is removed once the job's outputs are written).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recbench.artefacts import load, save
from recbench.checkpoints import DEFAULT_EVERY, Checkpoints
from recbench.data.dataset import SplitData
from recbench.errors import ConfigError
from recbench.evaluation import KS, evaluate, metric_names
from recbench.io import write_json, write_parquet
from recbench.models import build_model
from recbench import __version__
from recbench.protocol import studies
from recbench.provenance import git_state
from recbench.tracking import NULL, Run, Tracker, tracker
from recbench.training import NeuralRecommender

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """The config's ``device``: ``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} but no CUDA GPU is visible; use `device: auto` "
                          "or cpu.")
    return device


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model, for the record of where a job ran."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from recbench.provenance import cpu_model

    return cpu_model()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class RunOptions:
    """How a job fits and scores a model, the same for every entry point.

    ``filter_seen`` is the configured evaluation protocol (``evaluation.filter_seen``), which a
    neural model's early stopping and a tuning trial select on; ``eval_batch_size`` the
    evaluator's histories per batch; ``workdir`` where the model writes its own files (a neural
    model's history.csv); ``checkpoint_dir`` where a neural fit checkpoints and resumes from;
    ``track`` the tracked run (``recbench.tracking``) that gets the fit's parameters, its
    per-epoch history and its metrics (the default logs nothing).
    """

    seed: int = 0
    device: str = "cpu"
    label: str = ""
    workdir: str | Path | None = None
    filter_seen: bool = False
    eval_batch_size: int = 1024
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int | None = DEFAULT_EVERY
    track: Run = field(default_factory=Run)


def _built(model_class: str, params: dict, options: RunOptions):
    """The model, seeded, with its workdir made and its checkpoints attached."""
    if options.workdir is not None:
        Path(options.workdir).mkdir(parents=True, exist_ok=True)
    seed_everything(options.seed)
    model = build_model(model_class, params, seed=options.seed, device=options.device,
                        workdir=options.workdir, label=options.label or model_class,
                        filter_seen=options.filter_seen)
    if isinstance(model, NeuralRecommender):
        model.on_epoch = options.track.log_epoch
        if options.checkpoint_dir is not None:
            model.checkpoints = Checkpoints(Path(options.checkpoint_dir), options.checkpoint_every)
    if dataclasses.is_dataclass(model.params):
        options.track.log_params(dataclasses.asdict(model.params))
    return model


def _rounded(metrics: dict) -> dict:
    return {k: round(metrics[k], 4) for k in metric_names()}


def fit_final(data: SplitData, model_class: str, params: dict, options: RunOptions, *,
              model_dir: str | Path | None = None):
    """Fit ``model_class`` with ``params`` on the whole training part (no validation, no early
    stopping) and save it to ``model_dir`` (``recbench.artefacts``; None: not saved). Its
    checkpoints are removed once the model is saved. Returns the fitted model."""
    label = options.label or model_class
    model = _built(model_class, params, options)
    log.info("fit %s (%s) seed=%d device=%s params=%s", label, model_class, options.seed,
             options.device, params)
    t0 = time.perf_counter()
    model.fit(data.train)
    model.fit_facts = {"fit_seconds": time.perf_counter() - t0, "seed": options.seed,
                       "model_class": model_class, "params": params,
                       "device": str(options.device), "device_name": device_name(options.device)}
    options.track.log_metrics({"fit_seconds": model.fit_facts["fit_seconds"],
                               "epochs_trained": getattr(model, "epochs_trained", None)})
    options.track.set_tags({"device": options.device,
                            "device_name": model.fit_facts["device_name"]})
    if model_dir is not None:
        save(model, model_dir, data, facts=model.fit_facts)
        log.info("saved %s to %s", label, model_dir)
        options.track.set_tags({"model_dir": Path(model_dir).resolve()})
    if options.checkpoint_dir is not None:
        shutil.rmtree(options.checkpoint_dir, ignore_errors=True)
    return model


def evaluate_model(model, data: SplitData, outdir: str | Path, options: RunOptions, *,
                   facts: dict, ks: tuple[int, ...] = KS) -> dict:
    """Evaluate a fitted ``model`` on the test users; write metrics.json (the metrics and the
    fit's ``facts``) and per_user.parquet to ``outdir``."""
    outdir = Path(outdir)
    t0 = time.perf_counter()
    metrics, per_user = evaluate(model, data.test, ks=ks, batch_size=options.eval_batch_size,
                                 filter_seen=options.filter_seen, device=options.device)
    eval_s = time.perf_counter() - t0
    log.info("%s seed=%d: %s %s (fit %.1fs, eval %.1fs)", options.label or model.registry_name,
             model.seed, metrics["protocol"], _rounded(metrics), facts["fit_seconds"], eval_s)
    options.track.log_metrics({"test": metrics, "eval_seconds": eval_s})
    write_parquet(per_user, outdir / "per_user.parquet")
    write_json({**metrics, **facts, "eval_seconds": eval_s, "eval_device": str(options.device),
                "test_users": len(data.test)}, outdir / "metrics.json")
    return metrics


def evaluate_saved(data: SplitData, model_dir: str | Path, outdir: str | Path,
                   options: RunOptions, *, ks: tuple[int, ...] = KS) -> dict:
    """Load the model saved in ``model_dir`` and evaluate it on ``data``'s test users (a model
    fitted on another catalogue is refused): metrics.json and per_user.parquet in ``outdir``."""
    model = load(model_dir, device=options.device, data=data)
    return evaluate_model(model, data, outdir, options, facts=model.meta["facts"], ks=ks)


def train_and_evaluate(data: SplitData, model_class: str, params: dict, options: RunOptions, *,
                       outdir: str | Path, model_dir: str | Path | None = None
                       ) -> dict[str, float]:
    """``fit_final`` then ``evaluate_model`` in one call (the workflow runs them as two jobs,
    train and evaluate, with the saved model between them)."""
    model = fit_final(data, model_class, params, options, model_dir=model_dir)
    return evaluate_model(model, data, outdir, options, facts=model.fit_facts)


def validate_params(data: SplitData, model_class: str, params: dict,
                    options: RunOptions) -> tuple[float, dict]:
    """One tuning trial: (validation NDCG@10, facts) of ``params`` on the validation view; a
    neural model's checkpoints go to ``options.checkpoint_dir`` (removed at the end).

    The NDCG@10 is the configured protocol's (``options.filter_seen``), the one tuning selects
    on; early stopping selects on it too.
    """
    tuning = data.for_tuning()  # train = log before T_valid, test = the validation users
    model = _built(model_class, params, options)
    t0 = time.perf_counter()
    model.fit(tuning.train, tuning.test)
    metrics, _ = evaluate(model, tuning.test, batch_size=options.eval_batch_size,
                          filter_seen=options.filter_seen, device=options.device)
    facts = {"valid_metrics": metrics, "fit_seconds": time.perf_counter() - t0,
             "best_epoch": getattr(model, "best_epoch", None),
             "epochs_trained": getattr(model, "epochs_trained", None)}
    options.track.log_metrics({"valid": metrics, "fit_seconds": facts["fit_seconds"],
                               "best_epoch": facts["best_epoch"],
                               "epochs_trained": facts["epochs_trained"]})
    log.info("%s trial: valid %s %s, best epoch %s", options.label or model_class,
             metrics["protocol"], _rounded(metrics), facts["best_epoch"])
    if options.checkpoint_dir is not None:
        shutil.rmtree(options.checkpoint_dir, ignore_errors=True)
    return metrics["ndcg@10"], facts


def job_tracker(smk) -> Tracker:
    """The tracker of a Snakemake job (``smk``: a script's ``snakemake`` object), from the
    config's ``tracking:``, with the job's tags: the run's name, rule and wildcards (dataset,
    model, seed), the code's commit and version, and for a study's point its study and point."""
    settings = smk.config.get("tracking") or {}
    if settings.get("backend", "none") == "none":
        return NULL
    wildcards = dict(smk.wildcards.items())
    label = wildcards.get("model", "")
    base, overrides = studies.parse_label(label) if label else ("", {})
    tags = {"run": settings.get("run", "default"), "job": smk.rule,
            "wildcards": json.dumps(wildcards, sort_keys=True), "create_bench": __version__,
            **{k: wildcards[k] for k in ("dataset", "model", "seed") if k in wildcards}}
    state = git_state(Path(__file__).resolve().parents[2])
    tags.update(git_commit=state["commit"], git_dirty=state["dirty"])
    if overrides:  # a study's point: which studies sweep these keys of this base
        swept = {name for name, spec in (smk.config.get("studies") or {}).items()
                 if spec.get("base") == base and set(overrides) <= set(spec.get("grid") or {})
                 | {k for v in (spec.get("variants") or {}).values() for k in v}
                 | set(spec.get("set") or {})}
        tags.update(point=label, study=",".join(sorted(swept)))
    return tracker(settings, tags)
