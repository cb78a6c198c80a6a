"""Snakemake entry point: raw file -> canonical parquet (user, item, timestamp) and its report."""
from recbench import logs
from recbench.data.prepare import prepare_to
from recbench.io import write_json

logs.setup(snakemake.log[0])
report = prepare_to(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.input[0],
                    snakemake.output.log)
write_json(report, snakemake.output.report)
