"""Snakemake entry point: retrain one seed with the tuned parameters and evaluate on the test users."""
import json
from pathlib import Path

import torch

from recbench import logs
from recbench.config import resolve_device
from recbench.data.dataset import load_split
from recbench.runner import train_and_evaluate
from recbench.tuning import retrain_params

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
best = json.loads(Path(snakemake.input.best).read_text())
train_and_evaluate(
    load_split(Path(snakemake.input.split[0]).parent),
    best["model_class"],
    retrain_params(best),
    seed=int(snakemake.wildcards.seed),
    outdir=Path(snakemake.output.metrics).parent,
    workdir=snakemake.output.training,
    device=resolve_device(snakemake.params.device),
    label=snakemake.wildcards.model,
    batch_size=snakemake.params.evaluation["batch_size"],
    filter_seen=snakemake.params.evaluation["filter_seen"],
)
