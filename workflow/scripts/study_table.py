"""Snakemake entry point: Table 4 or 5 from the per-seed metrics of an ablation study."""
from recbench import logs
from recbench.io import write_csv, write_text
from recbench.protocol.reading_selection import chosen_by_dataset
from recbench.reporting.common import collect, per_user_spread, summarise
from recbench.reporting.studies import render_table4, render_table5
from recbench.protocol.verdicts import Rules

logs.setup(snakemake.log[0])
summary = summarise(collect(snakemake.input.metrics),
                    spread=per_user_spread(snakemake.input.per_user))
write_csv(summary, snakemake.output.csv)
rules = Rules.from_config(snakemake.params.reproduction)
points, paper_names = dict(snakemake.params.points), snakemake.params.paper_names
readings = chosen_by_dataset(snakemake.input.selections)
if snakemake.wildcards.table == "table4":
    text = render_table4(summary, points, paper_names, rules, readings)
else:
    text = render_table5(summary, points, paper_names, rules, readings)
write_text(text, snakemake.output.md)
