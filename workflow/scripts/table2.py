"""Snakemake entry point: aggregate per-seed metrics into results/table2.md and table2.csv."""
from recbench import logs
from recbench.evaluation import protocol_name
from recbench.io import write_csv, write_text
from recbench.protocol.reading_selection import chosen_by_dataset
from recbench.reporting.common import add_readings, add_significance, add_verdicts, collect, per_user_spread, significance, summarise
from recbench.reporting.table2 import render_table2
from recbench.protocol.verdicts import Rules

logs.setup(snakemake.log[0])
sig = snakemake.params.significance
configured = protocol_name(snakemake.params.evaluation["filter_seen"])
summary = add_significance(
    summarise(collect(snakemake.input.metrics, both=True, configured=configured),
              snakemake.params.paper_names, per_user_spread(snakemake.input.per_user, configured)),
    significance(snakemake.input.per_user, sig["reference"], sig["test"], configured=configured,
                 correction=sig.get("correction", "holm")),
    alpha=sig["alpha"],
)
summary = add_verdicts(summary, Rules.from_config(snakemake.params.reproduction))
readings = chosen_by_dataset(snakemake.input.selections)
write_csv(add_readings(summary, readings), snakemake.output.csv)
write_text(render_table2(summary, snakemake.params.datasets, snakemake.params.models, readings),
           snakemake.output.md)
