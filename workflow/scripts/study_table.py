"""Snakemake entry point: Table 4 or 5 from the per-seed metrics of an ablation study."""
from recbench import logs
from recbench.io import write_csv, write_text
from recbench.reports import collect, render_table4, render_table5, summarise

logs.setup(snakemake.log[0])
summary = summarise(collect(snakemake.input.metrics))
write_csv(summary, snakemake.output.csv)
table = snakemake.wildcards.table
if table == "table4":
    text = render_table4(summary, snakemake.params.points, snakemake.params.paper_names)
else:
    text = render_table5(summary, snakemake.params.points)
write_text(text, snakemake.output.md)
