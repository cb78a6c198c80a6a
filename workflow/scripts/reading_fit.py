"""Snakemake entry point: one reading candidate of a model on the validation split (no test file)."""
from recbench.threads import limit_threads

# first: polars sizes its pool at import, torch and BLAS at first use
pools = limit_threads(snakemake.threads)

import logging  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from recbench import logs  # noqa: E402
from recbench.data.dataset import load_split  # noqa: E402
from recbench.errors import TrainingError  # noqa: E402
from recbench.io import write_json  # noqa: E402
from recbench.protocol.reading_selection import RECORD  # noqa: E402
from recbench.protocol.runner import RunOptions, resolve_device, validate_params  # noqa: E402

logs.setup(snakemake.log[0])
logging.getLogger("threads").info("thread pools: %s", pools)
wc, evaluation = snakemake.wildcards, snakemake.params.evaluation
model_class, params = snakemake.params.spec
out = Path(snakemake.output[0])
# written beside the output, so that Snakemake's removal of a killed job's outputs spares the
# checkpoint; renamed into place once the record is written
work = Path(snakemake.params.partial)
if work.exists():
    for path in work.iterdir():  # a killed attempt's files, but its checkpoint
        if path.name != "checkpoint":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
work.mkdir(parents=True, exist_ok=True)
record = {"candidate": wc.candidate, "overrides": snakemake.params.overrides,
          "model_class": model_class, "params": params}
t0 = time.perf_counter()
try:
    value, facts = validate_params(
        load_split(Path(snakemake.input.split[0]).parent, test=False), model_class, params,
        RunOptions(seed=snakemake.params.seed, device=resolve_device(snakemake.params.device),
                   label=f"{wc.model}[{wc.candidate}]", workdir=work,
                   filter_seen=evaluation["filter_seen"],
                   eval_batch_size=evaluation["batch_size"], checkpoint_dir=work / "checkpoint",
                   checkpoint_every=snakemake.config["checkpoint_every"]))
except TrainingError as err:  # a diverging reading is an outcome: it cannot win
    logging.getLogger("reading").error("candidate %s failed: %s", wc.candidate, err)
    record.update(value=None, error=str(err))
else:
    record.update(value=value, facts=facts)
record["seconds"] = time.perf_counter() - t0
write_json(record, work / RECORD)
if out.exists():
    out.rmdir()  # an empty folder made by the workflow engine
work.rename(out)
