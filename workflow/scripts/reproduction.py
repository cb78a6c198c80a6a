"""Snakemake entry point: results/reproduction.md, every Table 2 cell against the paper's."""
import pandas as pd

from recbench import logs
from recbench.io import write_text
from recbench.reports import render_reproduction

logs.setup(snakemake.log[0])
summary = pd.read_csv(snakemake.input.csv)
write_text(render_reproduction(summary, snakemake.params.datasets, snakemake.params.models),
           snakemake.output.md)
