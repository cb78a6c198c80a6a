"""Snakemake entry point: results/reproduction.md, every Table 2 cell against the paper's, the
paper's claims and the power to detect its Gain."""
import pandas as pd

from recbench import logs
from recbench.io import write_text
from recbench.protocol.reading_selection import chosen_by_dataset
from recbench.reporting.reproduction import render_reproduction, reproduction_claims
from recbench.protocol.verdicts import Rules

logs.setup(snakemake.log[0])
rules = Rules.from_config(snakemake.params.reproduction)
summary = pd.read_csv(snakemake.input.csv)
claims = reproduction_claims(snakemake.input.per_user, summary, snakemake.params.paper_names, rules)
write_text(render_reproduction(summary, snakemake.params.datasets, snakemake.params.models, claims,
                               rules, chosen_by_dataset(snakemake.input.selections)),
           snakemake.output.md)
