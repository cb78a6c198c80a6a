"""Snakemake entry point: one of Figures 2-5 (PNG plus the CSV of its values)."""
import json
from pathlib import Path

import pandas as pd

from recbench import logs
from recbench.errors import DataError
from recbench.protocol.verdicts import Rules
from recbench.reporting import figures
from recbench.reporting.common import collect, per_user_spread

logs.setup(snakemake.log[0])
name = snakemake.wildcards.figure
rules = Rules.from_config(snakemake.params.reproduction)
out = snakemake.output
if name == "fig2_training_curves":
    histories = {}
    for study, f in zip(map(Path, snakemake.input.studies), map(Path, snakemake.input.best)):
        best = json.loads(f.read_text())
        if not best.get("history"):
            raise DataError(f"{f}: the best trial has no per-epoch history; Figure 2 needs the "
                            "history that neural models write: is the study's base a neural model?")
        histories[f.parent.parent.name] = [pd.read_csv(study / best["history"])]
    figures.training_curves(histories, snakemake.params.paper_names, out.png, out.csv, rules)
else:
    figures.sweep(name, collect(snakemake.input.metrics), dict(snakemake.params.points),
                  snakemake.params.paper_names, out.png, out.csv,
                  per_user_spread(snakemake.input.per_user), rules)
