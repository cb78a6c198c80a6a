"""Snakemake entry point: evaluate one seed's saved model on the test users."""
from recbench.threads import limit_threads

# first: polars sizes its pool at import, torch and BLAS at first use
pools = limit_threads(snakemake.threads)

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from recbench import logs  # noqa: E402
from recbench.data.dataset import load_split  # noqa: E402
from recbench.protocol.runner import RunOptions, evaluate_saved, resolve_device  # noqa: E402

logs.setup(snakemake.log[0])
logging.getLogger("threads").info("thread pools: %s", pools)
evaluation = snakemake.params.evaluation
evaluate_saved(
    load_split(Path(snakemake.input.split[0]).parent),
    snakemake.input.model,
    Path(snakemake.output.metrics).parent,
    RunOptions(
        device=resolve_device(snakemake.params.device),
        label=snakemake.wildcards.model,
        filter_seen=evaluation["filter_seen"],
        eval_batch_size=evaluation["batch_size"],
    ),
    ks=tuple(evaluation["ks"]),
)
