"""Snakemake entry point: results/readings.md, readings.csv and figures/readings.png."""
from pathlib import Path

from recbench import logs
from recbench.reporting import figures
from recbench.evaluation import protocol_name
from recbench.io import write_csv, write_text
from recbench.protocol.reading_selection import chosen_by_dataset
from recbench.reporting.readings import readings_table, render_readings
from recbench.protocol.verdicts import Rules

logs.setup(snakemake.log[0])
p, out = snakemake.params, snakemake.output
protocol = protocol_name(p.evaluation["filter_seen"])
sig = p.significance
root = Path(snakemake.input.best[0]).parents[2]  # results/<dataset>/<label>/best_params.json
table = readings_table(dict(p.points), root, p.seeds, reference=sig["reference"],
                       protocol=protocol, test=sig["test"], correction=sig["correction"])
write_csv(table, out.csv)
write_text(render_readings(table, base=p.base, reference=sig["reference"], protocol=protocol,
                           alpha=sig["alpha"], paper_names=p.paper_names,
                           rules=Rules.from_config(p.reproduction),
                           readings=chosen_by_dataset(snakemake.input.selections)), out.md)
figures.readings(table, out.png)
