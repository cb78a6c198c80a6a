"""Snakemake entry point: retrain one seed with the tuned parameters and save the model."""
from recbench.threads import limit_threads

# first: polars sizes its pool at import, torch and BLAS at first use
pools = limit_threads(snakemake.threads)

import json  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from recbench import logs  # noqa: E402
from recbench.data.dataset import load_split  # noqa: E402
from recbench.protocol.runner import RunOptions, fit_final, job_tracker, resolve_device  # noqa: E402
from recbench.protocol.tuning import retrain_params  # noqa: E402

logs.setup(snakemake.log[0])
logging.getLogger("threads").info("thread pools: %s", pools)
best = json.loads(Path(snakemake.input.best).read_text())
wc = snakemake.wildcards
with job_tracker(snakemake).run(f"{wc.dataset}/{wc.model}/seed{wc.seed}") as run:
    fit_final(
        load_split(Path(snakemake.input.split[0]).parent),
        best["model_class"],
        retrain_params(best),
        RunOptions(
            seed=int(wc.seed),
            device=resolve_device(snakemake.params.device),
            label=wc.model,
            workdir=snakemake.output.training,
            # undeclared, so a killed job's checkpoint survives Snakemake's removal of its
            # outputs; checkpoint_every read from the config, not params: changing it reruns no job
            checkpoint_dir=snakemake.params.checkpoint,
            checkpoint_every=snakemake.config["checkpoint_every"],
            track=run,  # the config's `tracking:` (recbench/tracking.py); none by default
        ),
        model_dir=snakemake.output.model,
    )
