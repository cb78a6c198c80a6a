"""Snakemake entry point: results/table3.md, the LOOM evaluation setup."""
from recbench import logs
from recbench.io import write_csv, write_text
from recbench.protocol.reading_selection import chosen_by_dataset
from recbench.reporting.common import collect, per_user_spread, summarise
from recbench.reporting.table3 import render_table3
from recbench.protocol.verdicts import Rules

logs.setup(snakemake.log[0])
t3 = snakemake.params.table3
summary = summarise(collect(snakemake.input.metrics),
                    spread=per_user_spread(snakemake.input.per_user))
write_csv(summary, snakemake.output.csv)
write_text(render_table3(summary, t3["datasets"], t3.get("bridge") or {}, t3["models"],
                         Rules.from_config(snakemake.params.reproduction),
                         chosen_by_dataset(snakemake.input.selections)), snakemake.output.md)
