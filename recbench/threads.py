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

It also pins torch's CPU kernels to one instruction set, ``CPU_KERNELS`` (AVX2, which every
x86-64 CPU of the last decade has): torch picks its vectorised kernels by the CPU it runs on,
and its AVX-512 and AVX2 kernels round differently, so the same seeds gave weights up to 7e-4
apart on an AVX-512 machine and an AVX2 one (every weight of SASRec, BERT4Rec, MRGSRec and
CREATE; recbench/reporting/compare.py has the measurement). Pinned, a CPU run of a neural model
repeats bit for bit on any such CPU, which is what lets CI compare its cells exactly. MKL, torch's
BLAS here, gave the same bits under AVX-512, AVX2 and SSE4.2. A CPU without AVX2 falls back to
its best; ``ATEN_CPU_CAPABILITY`` set in the environment wins.
"""

from __future__ import annotations

import os
import sys

#: environment variables of thread pools: OpenMP, the BLAS libraries, numexpr, polars (rayon)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "POLARS_MAX_THREADS",
              "RAYON_NUM_THREADS")


#: torch's CPU kernels in every job (ATEN_CPU_CAPABILITY), the same on every x86-64 CPU
CPU_KERNELS = "avx2"


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
    # read by torch at its first CPU operation, so set before any
    os.environ.setdefault("ATEN_CPU_CAPABILITY", CPU_KERNELS)
    import polars as pl
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        torch.set_num_interop_threads(n)  # only before any inter-op work: first thing in a job
    threadpool_limits(n)  # OpenMP and BLAS libraries already loaded (numpy's, torch's, ...)
    return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "torch_kernels": torch.backends.cpu.get_cpu_capability(),
            "polars": pl.thread_pool_size(),
            "threadpools": sorted({(p["internal_api"], p["num_threads"])
                                   for p in threadpool_info()})}
