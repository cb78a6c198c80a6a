"""Snakemake entry point: canonical parquet -> indexed train/test/validation split."""
import logging
from pathlib import Path

import polars as pl

from recbench import logs
from recbench.data.dataset import save_split
from recbench.data.split import index_split, make_split
from recbench.io import write_json

logs.setup(snakemake.log[0])
splitter = make_split(snakemake.params.split)
indexed = index_split(splitter.split(pl.read_parquet(snakemake.input[0])))
save_split(indexed, Path(snakemake.output[0]).parent)
write_json(indexed["summary"], snakemake.output.summary)
logging.getLogger("split").info("%s: %s", snakemake.wildcards.dataset, indexed["summary"])
