"""Snakemake entry point: results/reading_selection.md, every reading candidate and the winner."""
from recbench import logs
from recbench.io import write_csv, write_text
from recbench.protocol.reading_selection import read_choice
from recbench.reporting.reading_selection import render_selection, selection_frame

logs.setup(snakemake.log[0])
records = [read_choice(f) for f in snakemake.input.selections]
write_csv(selection_frame(records), snakemake.output.csv)
write_text(render_selection(records), snakemake.output.md)
