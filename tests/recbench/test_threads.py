"""recbench.threads: a job's thread pools follow its budget, whatever the environment says."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recbench.threads import THREAD_ENV

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("n", [1, 2])
def test_every_pool_follows_the_budget_whatever_the_shell_says(n):
    """The shell says 7 threads everywhere; the job's budget wins in each pool: torch's intra-
    and inter-op pools, polars' (sized at import) and every OpenMP/BLAS library loaded."""
    out = run("from recbench.threads import limit_threads; print(limit_threads(%d))" % n,
              **{name: "7" for name in THREAD_ENV})
    pools = ast.literal_eval(out.strip())
    assert pools["torch"] == pools["torch_interop"] == pools["polars"] == n
    assert pools["torch_kernels"] == "AVX2"  # the same kernels on every x86-64 CPU
    assert pools["threadpools"] and {k for _, k in pools["threadpools"]} == {n}


def test_too_late_after_polars_is_an_error():
    code = ("import polars\nfrom recbench.threads import limit_threads\n"
            "try:\n    limit_threads(1)\nexcept RuntimeError as e:\n    print('refused:', e)")
    assert "refused: limit_threads must run before polars is imported" in run(
        code, POLARS_MAX_THREADS="")
