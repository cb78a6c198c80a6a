"""Snakemake entry point: manifest.json, the provenance of the run."""
import json
from pathlib import Path

from recbench import logs
from recbench.io import write_json
from recbench.provenance import manifest
from recbench.protocol.reading_selection import chosen_by_dataset

logs.setup(snakemake.log[0])
record = manifest(snakemake.config, snakemake.params.datasets, snakemake.input.benchmarks,
                  snakemake.config["seeds"], prepare_reports=snakemake.params.prepared)
# the device each training job ran on (on a cluster, not the node writing this file)
record["job_devices"] = {
    str(Path(f).parent.relative_to("results")): json.loads(Path(f).read_text()).get("device_name")
    for f in snakemake.input.metrics
}
# the reading each model that selects one was given on each dataset, chosen on validation
record["readings"] = {
    d: {m: {"chosen": r["chosen"], "overrides": r["overrides"], "valid_ndcg@10": r["value"],
            "n_candidates": r["n_candidates"]} for m, r in models.items()}
    for d, models in chosen_by_dataset(snakemake.input.selections).items()
}
write_json(record, snakemake.output[0])
