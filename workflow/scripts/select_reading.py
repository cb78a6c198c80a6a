"""Snakemake entry point: a model's reading on a dataset, chosen on the candidates' validation
scores alone (its inputs hold no test data)."""
import json
import logging
from pathlib import Path

from recbench import logs
from recbench.evaluation import protocol_name
from recbench.protocol.reading_selection import RECORD, choice_record, write_choice

logs.setup(snakemake.log[0])
wc = snakemake.wildcards
folders = [Path(f) for f in snakemake.input.candidates]  # in the candidates' order
records = [json.loads((f / RECORD).read_text()) for f in folders]
order = list(snakemake.params.candidates)
assert [r["candidate"] for r in records] == order, "candidate folders out of the config's order"
record = choice_record(wc.dataset, wc.model, records,
                       protocol_name(snakemake.params.evaluation["filter_seen"]))
for c in record["candidates"]:
    logging.getLogger("reading").info(
        "%s %-28s validation NDCG@10 %s", "*" if c["chosen"] else " ", c["candidate"],
        "failed" if c["value"] is None else f"{100 * c['value']:.2f} %")
write_choice(snakemake.output[0], record, folders[order.index(record["chosen"])])
