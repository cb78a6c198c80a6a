"""Snakemake entry point: evaluate one seed's saved model on the test users."""
from recbench.threads import limit_threads

# first: polars sizes its pool at import, torch and BLAS at first use
pools = limit_threads(snakemake.threads)

import contextlib  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from recbench import logs  # noqa: E402
from recbench.data.dataset import load_split  # noqa: E402
from recbench.protocol.runner import (RunOptions, evaluate_saved, job_tracker,  # noqa: E402
                                      resolve_device)

logs.setup(snakemake.log[0])
logging.getLogger("threads").info("thread pools: %s", pools)
evaluation = snakemake.params.evaluation
wc, tracker = snakemake.wildcards, job_tracker(snakemake)
# the test metrics join the tracked run of the fit they score (its newest train job), or a run
# of their own when the fit was not tracked
fit = tracker.find({"job": "train"})
with (contextlib.nullcontext(fit) if fit is not None
      else tracker.run(f"{wc.dataset}/{wc.model}/seed{wc.seed}")) as run:
    evaluate_saved(
        load_split(Path(snakemake.input.split[0]).parent),
        snakemake.input.model,
        Path(snakemake.output.metrics).parent,
        RunOptions(
            device=resolve_device(snakemake.params.device),
            label=wc.model,
            filter_seen=evaluation["filter_seen"],
            eval_batch_size=evaluation["batch_size"],
            track=run,
        ),
        ks=tuple(evaluation["ks"]),
    )
