"""Snakemake entry point: manifest.json, the provenance of the run."""
import json
from pathlib import Path

from recbench import logs
from recbench.io import write_json
from recbench.provenance import manifest

logs.setup(snakemake.log[0])
record = manifest(snakemake.config, snakemake.params.datasets, snakemake.input.benchmarks,
                  snakemake.config["seeds"], prepare_reports=snakemake.params.prepared)
# the device each training job ran on (on a cluster, not the node writing this file)
record["job_devices"] = {
    str(Path(f).parent.relative_to("results")): json.loads(Path(f).read_text()).get("device_name")
    for f in snakemake.input.metrics
}
write_json(record, snakemake.output[0])
