"""Snakemake entry point: canonical parquet -> indexed train/test/validation split."""
import json
import logging
from pathlib import Path

from recbench import logs
from recbench.data.split import split_to_folder
from recbench.io import write_json

logs.setup(snakemake.log[0])
# prepare's rows read, invalid, dropped and duplicate, beside the split's own counts
prepare_report = json.loads(Path(snakemake.input.report).read_text())
summary = split_to_folder(snakemake.input.log, snakemake.params.split,
                          Path(snakemake.output[0]).parent, {"prepare": prepare_report})
write_json(summary, snakemake.output.summary)
logging.getLogger("split").info("%s: %s", snakemake.wildcards.dataset, summary)
