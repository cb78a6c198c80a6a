"""Snakemake entry point: canonical parquet -> indexed train/test/validation split."""
import json
import logging
from pathlib import Path

import polars as pl

from recbench import logs
from recbench.data.dataset import save_split
from recbench.data.split import index_split, make_split
from recbench.io import write_json

logs.setup(snakemake.log[0])
splitter = make_split(snakemake.params.split)
indexed = index_split(splitter.split(pl.read_parquet(snakemake.input.log)))
# prepare's rows read, invalid, dropped and duplicate, beside the split's own counts
indexed["summary"]["prepare"] = json.loads(Path(snakemake.input.report).read_text())
save_split(indexed, Path(snakemake.output[0]).parent)
write_json(indexed["summary"], snakemake.output.summary)
logging.getLogger("split").info("%s: %s", snakemake.wildcards.dataset, indexed["summary"])
