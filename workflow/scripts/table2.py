"""Snakemake entry point: aggregate per-seed metrics into results/table2.md and table2.csv."""
from recbench import logs
from recbench.io import write_csv, write_text
from recbench.reports import collect, render_table2, summarise

logs.setup(snakemake.log[0])
summary = summarise(collect(snakemake.input.metrics), snakemake.params.paper_names)
write_csv(summary, snakemake.output.csv)
write_text(render_table2(summary, snakemake.params.datasets, snakemake.params.models),
           snakemake.output.md)
