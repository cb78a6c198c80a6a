"""Snakemake entry point: fit one model with one seed and evaluate it on the test users."""
from pathlib import Path

import torch

from recbench import logs
from recbench.config import resolve_device
from recbench.data.dataset import load_split
from recbench.runner import train_and_evaluate

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
model_class, params = snakemake.params.spec
train_and_evaluate(
    load_split(Path(snakemake.input[0]).parent),
    model_class,
    params,
    seed=int(snakemake.wildcards.seed),
    outdir=Path(snakemake.output.metrics).parent,
    device=resolve_device(snakemake.params.device),
    label=snakemake.wildcards.model,
    batch_size=snakemake.params.evaluation["batch_size"],
    filter_seen=snakemake.params.evaluation["filter_seen"],
)
