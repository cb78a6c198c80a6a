"""A job's thread budget: every pool a tuning or training job can start follows its ``threads``.

Snakemake gives a script job OMP_NUM_THREADS and the BLAS variables, but polars reads
POLARS_MAX_THREADS when it is imported and sizes its pool to the machine otherwise, torch's
inter-op pool takes every core, and a library loaded before the variables were set keeps its own
count. ``limit_threads`` sets all of them, whatever the shell or the parent process says; a job
calls it first, before numpy, torch or polars are imported:

    from recbench.threads import limit_threads

    limit_threads(snakemake.threads)

``THREAD_ENV`` lists the variables, which ``benchmarks/bench_pipeline.py --default-run`` removes
from the environment of the run it times (a researcher's clean shell).
"""

from __future__ import annotations

import os
import sys

#: environment variables of thread pools: OpenMP, the BLAS libraries, numexpr, polars (rayon)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "POLARS_MAX_THREADS",
              "RAYON_NUM_THREADS")


def limit_threads(n: int) -> dict:
    """Give every thread pool of this process ``n`` threads; return what each now has.

    Raises RuntimeError when polars was imported before (its pool is fixed at import), so a job
    that calls this too late fails instead of running with the machine's cores."""
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    if "polars" in sys.modules and os.environ.get("POLARS_MAX_THREADS") != str(n):
        raise RuntimeError("limit_threads must run before polars is imported (its thread pool is "
                           "sized at import); call it first in the job's script.")
    os.environ.update({name: str(n) for name in THREAD_ENV})
    import polars as pl
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        torch.set_num_interop_threads(n)  # only before any inter-op work: first thing in a job
    threadpool_limits(n)  # OpenMP and BLAS libraries already loaded (numpy's, torch's, ...)
    return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "polars": pl.thread_pool_size(),
            "threadpools": sorted({(p["internal_api"], p["num_threads"])
                                   for p in threadpool_info()})}
