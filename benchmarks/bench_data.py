"""Prepare + split time for a large download-free log (goal: 1,000,000 rows in under 10 s).

    python benchmarks/bench_data.py [--rows 1000000]

Writes a random log as a custom-dataset parquet, then times the real path: parse it as a custom
dataset (``prepare``), the global temporal split, indexing, and saving the split files.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from recbench.data.dataset import save_split
from recbench.data.prepare import prepare
from recbench.data.split import GlobalTemporalSplit, index_split
from recbench.io import write_parquet


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=None, help="default: rows / 30")
    ap.add_argument("--items", type=int, default=None, help="default: rows / 50")
    args = ap.parse_args()
    users, items = args.users or args.rows // 30, args.items or args.rows // 50

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = pl.DataFrame({"uid": rng.integers(0, users, args.rows),
                            "iid": (rng.zipf(1.3, args.rows) % items),
                            "ts": rng.integers(0, 10**9, args.rows)})
        write_parquet(log, tmp / "log.parquet")
        spec = {"path": str(tmp / "log.parquet"),
                "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}
        t0 = time.perf_counter()
        df = prepare("bench", spec, spec["path"])
        write_parquet(df, tmp / "prepared.parquet")
        t1 = time.perf_counter()
        indexed = index_split(GlobalTemporalSplit().split(pl.read_parquet(tmp / "prepared.parquet")))
        save_split(indexed, tmp / "split")
        t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = t2 - t0
    print(f"rows={args.rows:,} users={users:,} items={items:,}")
    print(f"prepare: {t1 - t0:.2f} s   split+index+save: {t2 - t1:.2f} s   total: {total:.2f} s "
          f"(goal < 10 s for 1M rows: {'OK' if total < 10 or args.rows != 1_000_000 else 'MISSED'})")
    print(f"peak RSS of the process: {peak_mib:,.0f} MiB")
    print(f"test users: {indexed['summary']['test_users']:,}  "
          f"validation users: {indexed['summary']['validation_users']:,}")


if __name__ == "__main__":
    main()
