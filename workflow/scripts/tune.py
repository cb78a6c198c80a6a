"""Snakemake entry point: the tuning study of a (dataset, model) on the validation split."""
from recbench.threads import limit_threads

# first: polars sizes its pool at import, torch and BLAS at first use
pools = limit_threads(snakemake.threads)

import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from recbench import logs  # noqa: E402
from recbench.data.dataset import load_split  # noqa: E402
from recbench.io import write_json  # noqa: E402
from recbench.registry import params_class  # noqa: E402
from recbench.protocol.reading_selection import WINNER, read_choice, same_params  # noqa: E402
from recbench.protocol.runner import (RunOptions, job_tracker, resolve_device,  # noqa: E402
                                      validate_params)
from recbench.protocol.studies import apply_overrides  # noqa: E402
from recbench.protocol.tuning import (TRIAL_CHECKPOINT, finish_study, run_study, search_order,  # noqa: E402
                             select_best)

logs.setup(snakemake.log[0])
logging.getLogger("threads").info("thread pools: %s", pools)
wc, tuning, evaluation = snakemake.wildcards, snakemake.params.tuning, snakemake.params.evaluation
model_class, params = snakemake.params.spec
# the sampler's draws in the model's parameter order, not the config's (canonical: sorted)
search = search_order(snakemake.params.search, params_class(model_class))
if snakemake.input.base:  # an ablation variant: the base's tuned parameters, then the overrides
    base = json.loads(Path(snakemake.input.base[0]).read_text())
    params = apply_overrides(base["params"], snakemake.params.overrides, wc.model)
winner = None
if snakemake.params.reading:  # the reading chosen on validation: tune that bundle
    chosen = snakemake.params.reading
    winner = read_choice(snakemake.input.reading[0])
    assert winner["chosen"] == chosen["chosen"], "the selection changed under the study"
    params = apply_overrides(params, chosen["overrides"], wc.model)
    logging.getLogger("tune").info("reading %s chosen on validation: %s", chosen["chosen"],
                                   chosen["overrides"])
data = load_split(Path(snakemake.input.split[0]).parent)
device = resolve_device(snakemake.params.device)
# the config's `tracking:` (recbench/tracking.py): the study a parent run, each trial a child
tracker = job_tracker(snakemake)
study_run = None


def objective(trial_params, workdir):
    if winner is not None and same_params(trial_params, winner["params"]):
        # the winning candidate's fit is this very trial (same params, seed, data and budget)
        logging.getLogger("tune").info("the chosen candidate's fit is this trial: reused")
        shutil.copytree(Path(snakemake.input.reading[0]) / WINNER, workdir, dirs_exist_ok=True)
        return winner["value"], winner["facts"]
    name = f"{wc.dataset}/{wc.model}/{Path(workdir).name}"
    with tracker.run(name, parent=study_run, tags={"trial": Path(workdir).name}) as run:
        options = RunOptions(seed=tuning["seed"], device=device, label=wc.model, workdir=workdir,
                             filter_seen=evaluation["filter_seen"],
                             eval_batch_size=evaluation["batch_size"],
                             # a killed trial resumes from it; not a setting of the study (config)
                             checkpoint_dir=workdir / TRIAL_CHECKPOINT,
                             checkpoint_every=snakemake.config["checkpoint_every"], track=run)
        return validate_params(data, model_class, trial_params, options)


with tracker.run(f"{wc.dataset}/{wc.model}/tuning", params=params) as study_run:
    records = run_study(
        snakemake.params.trials, objective, params, search,
        out=snakemake.output.study, seed=tuning["seed"], startup_trials=tuning["startup_trials"],
        settings={"model_class": model_class, "evaluation": evaluation},
        inputs=[*snakemake.input.split, *snakemake.input.base, *snakemake.input.reading],
    )
    best = select_best(records, model_class)
    study_run.log_metrics({"best_valid_ndcg@10": best["valid_ndcg@10"],
                           "best_trial": best["best_trial"]})
logging.getLogger("tune").info(
    "best trial %d of %d: valid NDCG@10 %.4f (defaults: %s), best epoch %s, tuned %s",
    best["best_trial"], len(records), best["valid_ndcg@10"], best["default_valid_ndcg@10"],
    best["best_epoch"], best["tuned"])
write_json(best, snakemake.output.best)
finish_study(snakemake.output.study)  # last: until then a killed job leaves the study to resume
