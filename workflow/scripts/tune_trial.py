"""Snakemake entry point: one tuning trial of a (dataset, model) on the validation split."""
import json
from pathlib import Path

import torch

from recbench import logs
from recbench.config import resolve_device
from recbench.data.dataset import load_split
from recbench.runner import validate_params
from recbench.studies import apply_overrides
from recbench.tuning import run_trial, study_key

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
wc, tuning, evaluation = snakemake.wildcards, snakemake.params.tuning, snakemake.params.evaluation
model_class, params = snakemake.params.spec
if snakemake.input.base:  # an ablation variant: the base's tuned parameters, then the overrides
    base = json.loads(Path(snakemake.input.base[0]).read_text())
    params = apply_overrides(base["params"], snakemake.params.overrides, wc.model)
out = Path(snakemake.output[0])
data = load_split(Path(snakemake.input.split[0]).parent)
device = resolve_device(snakemake.params.device)


def objective(trial_params):
    return validate_params(data, model_class, trial_params, seed=tuning["seed"],
                           workdir=out.parent / out.stem, device=device, label=wc.model,
                           batch_size=evaluation["batch_size"],
                           filter_seen=evaluation["filter_seen"])


# the study is keyed on everything a trial depends on: a changed config, split or code starts a
# new study, so a rerun job never reads back a trial of the old setting from optuna.db
key = study_key(model_class, params, snakemake.params.search,
                {k: v for k, v in tuning.items() if k != "trials"}, evaluation,
                files=snakemake.input.split)
run_trial(int(wc.trial), objective, params, snakemake.params.search,
          storage=out.parent / "optuna.db", study_name=f"{wc.dataset}/{wc.model}", out=out,
          seed=tuning["seed"], startup_trials=tuning["startup_trials"], key=key)
