"""Snakemake entry point: download and verify a raw file, or generate the synthetic log."""
from pathlib import Path

from recbench import logs
from recbench.data import synthetic
from recbench.data.download import download
from recbench.data.sources import source_of
from recbench.io import write_parquet

logs.setup(snakemake.log[0])
name, spec, out = snakemake.wildcards.dataset, snakemake.params.spec, Path(snakemake.output[0])
source = source_of(name, spec)
if source.name == "synthetic":
    write_parquet(synthetic.generate(synthetic.config_from_params(spec.get("params"))), out)
else:
    remote = source.remote(spec)
    download(remote.url, out, md5=remote.md5, size=remote.size, fmt=remote.fmt)
