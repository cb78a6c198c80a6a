"""Snakemake entry point: raw file -> canonical parquet (user, item, timestamp) and its report."""
from recbench import logs
from recbench.data.prepare import prepare
from recbench.io import write_json, write_parquet

logs.setup(snakemake.log[0])
df, report = prepare(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.input[0])
write_parquet(df, snakemake.output.log)
write_json(report, snakemake.output.report)
