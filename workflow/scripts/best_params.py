"""Snakemake entry point: pick the best tuning trial into best_params.json."""
import logging

from recbench import logs
from recbench.io import write_json
from recbench.tuning import select_best

logs.setup(snakemake.log[0])
best = select_best(snakemake.input, snakemake.params.spec[0])
logging.getLogger("best_params").info(
    "best trial %d of %d: valid NDCG@10 %.4f (defaults: %s), best epoch %s, tuned %s",
    best["best_trial"], len(best["trials"]), best["valid_ndcg@10"],
    best["default_valid_ndcg@10"], best["best_epoch"], best["tuned"])
write_json(best, snakemake.output[0])
